"""The full local AWS for the operations tests: moto's server with the workarounds, the deployed
stack, the real launcher and the real agent per instance (local_aws.local_run.LocalRun)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local_aws.deployment import LocalSettings
from local_aws.local_run import LocalRun, cached_model
from local_aws.process_machine import DEMO_MODEL_COMMAND, InstanceOptions
from local_aws.server import LocalAws, local_aws_server

MakeRun = Callable[..., LocalRun]
# Short limits, as the failure matrix uses: a failing case ends within a minute.
SETTINGS: dict[str, Any] = {
    "heartbeat_timeout_seconds": 6,
    "activity_timeout_seconds": 40,
    "execution_timeout_seconds": 60,
    "max_runtime_seconds": 20,
}
UPTIME_SECONDS = 180.0


@pytest.fixture(scope="module")
def ops_aws() -> Iterator[LocalAws]:
    with local_aws_server(activity_poll_seconds=1) as aws:
        yield aws


@pytest.fixture(scope="session")
def ops_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory.mktemp("ops-model-cache"), padding_mib=1)


@pytest.fixture
def make_run(
    ops_aws: LocalAws, ops_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MakeRun]:
    """Deploys one case into the emptied emulator; the CLI's clients point at it."""
    for name, value in ops_aws.child_env({}).items():
        monkeypatch.setenv(name, value)
    uptime = tmp_path / "uptime"
    uptime.write_text(f"{UPTIME_SECONDS} 0.0\n", encoding="ascii")
    runs: list[LocalRun] = []

    def make(**options: Any) -> LocalRun:
        options.setdefault("model_command", DEMO_MODEL_COMMAND)
        # The host's /proc/uptime and /var/log are not the emulated instance's.
        options["config_overrides"] = {
            "heartbeat_interval_seconds": 1,
            "metrics": {"file": str(tmp_path / "metrics.log"), "uptime_file": str(uptime)},
            **options.get("config_overrides", {}),
        }
        run = LocalRun(
            ops_aws,
            settings=LocalSettings(**SETTINGS),
            work_dir=tmp_path,
            model_dir=ops_model,
            instance_options=InstanceOptions(**options),
        )
        runs.append(run)
        return run.__enter__()

    yield make
    try:
        for run in runs:
            run.stop()
    finally:
        ops_aws.reset()
