"""``gpurun run`` and ``status`` against the full local AWS, and run.json as the real agent and
the real launcher write it there."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from local_aws.local_run import LocalRun
from local_aws.server import LocalAws
from tests.conftest import MakeRun
from tests.gpurun.cli_helpers import Result, gpurun

pytestmark = pytest.mark.slow

# Short limits, as the failure matrix uses: a failing case ends within a minute.
SETTINGS: dict[str, Any] = {
    "heartbeat_timeout_seconds": 6,
    "activity_timeout_seconds": 40,
    "execution_timeout_seconds": 60,
    "max_runtime_seconds": 20,
}
UPTIME_SECONDS = 180.0


@pytest.fixture
def deployed(
    make_run: MakeRun, local_aws: LocalAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., LocalRun]:
    """The stack in the local AWS with the CLI's clients pointed at it."""
    for name, value in local_aws.child_env({}).items():
        monkeypatch.setenv(name, value)
    uptime = tmp_path / "uptime"
    uptime.write_text(f"{UPTIME_SECONDS} 0.0\n", encoding="ascii")

    def deploy(**options: Any) -> LocalRun:
        # The host's /proc/uptime and /var/log are not the emulated instance's.
        options["config_overrides"] = {
            "heartbeat_interval_seconds": 1,
            "metrics": {"file": str(tmp_path / "metrics.log"), "uptime_file": str(uptime)},
        }
        return make_run(settings=SETTINGS, **options)

    return deploy


def cli(run: LocalRun, aws: LocalAws, *argv: str) -> Result:
    return gpurun(
        *argv,
        "--endpoint-url",
        aws.endpoint_url,
        "--region",
        aws.region,
        "--state-machine-arn",
        run.deployed.state_machine_arn,
        "--bucket",
        run.deployed.bucket_name,
    )


def run_record(run: LocalRun, aws: LocalAws, name: str) -> dict[str, Any]:
    body = aws.client("s3").get_object(
        Bucket=run.deployed.bucket_name, Key=f"runs/{name}/run.json"
    )["Body"]
    record: dict[str, Any] = json.loads(body.read())
    return record


def test_run_follows_a_local_weekly_run_to_success_and_the_agent_writes_run_json(
    deployed: Callable[..., LocalRun], local_aws: LocalAws, tmp_path: Path
) -> None:
    run = deployed()

    result = cli(
        run, local_aws, "run", "--name", "ops-happy", "--poll-seconds", "0.5", "--timeout", "90"
    )

    assert result.code == 0, result.out + result.err
    assert result.out.splitlines()[-1] == "ops-happy: SUCCEEDED"
    assert "the agent took the task" in result.out
    record = run_record(run, local_aws, "ops-happy")
    assert (record["written_by"], record["status"]) == ("agent", "SUCCEEDED")
    assert record["model"]["version"].startswith("sha256:")
    assert record["output"]["manifest_key"] == "runs/ops-happy/_manifest.json"
    assert record["lifetime_seconds"] == UPTIME_SECONDS
    assert record["cost"]["hourly_usd"] > 0
    (line,) = [json.loads(x) for x in (tmp_path / "metrics.log").read_text().splitlines()]
    assert line["ExecutionName"] == "ops-happy"
    assert line["RunSucceeded"] == 1.0

    rows = cli(run, local_aws, "status", "--json").json()
    assert rows[0]["name"] == "ops-happy"
    assert rows[0]["cost_source"] == "run.json"


def test_a_failing_model_gets_a_failed_run_json_from_the_agent(
    deployed: Callable[..., LocalRun], local_aws: LocalAws
) -> None:
    run = deployed(model_command=["sh", "-c", "exit 3"])

    result = cli(
        run, local_aws, "run", "--name", "ops-fail", "--poll-seconds", "0.5", "--timeout", "90"
    )

    assert result.code == 1, result.out + result.err
    record = run_record(run, local_aws, "ops-fail")
    assert (record["written_by"], record["status"]) == ("agent", "FAILED")
    assert record["error"]["error"] == "ModelCommandFailed"


def test_a_refused_start_gets_a_minimal_run_json_from_the_launcher(
    deployed: Callable[..., LocalRun], local_aws: LocalAws
) -> None:
    run = deployed()

    result = cli(
        run,
        local_aws,
        "run",
        "--name",
        "ops-refused",
        "--poll-seconds",
        "0.5",
        "--timeout",
        "60",
        "--set",
        "max_runtime_seconds=0",
    )

    assert result.code == 1, result.out + result.err
    record = run_record(run, local_aws, "ops-refused")
    assert (record["written_by"], record["status"]) == ("launcher", "FAILED")
    assert record["error"]["error"] == "EventValidationError"
    assert record["instance"] == {}
    assert record["input"]["max_runtime_seconds"] == 0
