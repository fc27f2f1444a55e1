"""Shared fixtures for the agent's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.instance_agent.fakes import BUCKET, World

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


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield World(tmp_path, s3)
