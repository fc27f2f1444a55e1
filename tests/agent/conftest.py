"""Shared fixtures for the agent's tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

BASE_CONFIG: dict[str, Any] = {
    "region": "eu-west-1",
    "activity_arn": "arn:aws:states:eu-west-1:123456789012:activity:weekly-run",
    "model": {"bucket": "models-bucket", "prefix": "models/current/"},
    "storage": {"mount_point": "/mnt/model-store", "allow_root_volume_fallback": False},
    "heartbeat_interval_seconds": 60,
    "task_wait_seconds": 1800,
    "run": {"command": ["python3", "/opt/model/score.py"], "container_image": None},
    "max_runtime_seconds": 3600,
}


@pytest.fixture
def base_config(tmp_path: Path) -> dict[str, Any]:
    import copy

    config = copy.deepcopy(BASE_CONFIG)
    # The run's metrics line goes to a test directory, never to the machine's /var/log.
    config["metrics"] = {"file": str(tmp_path / "run-metrics.log")}
    return config
