"""``gpurun run`` and ``status`` against the full local AWS, and run.json as the real agent and
the real launcher write it there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local_aws.local_run import LocalRun
from local_aws.server import LocalAws
from tests.ops.cli_helpers import Result, gpurun
from tests.ops.local.conftest import UPTIME_SECONDS, MakeRun

pytestmark = pytest.mark.slow


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
    make_run: MakeRun, ops_aws: LocalAws, tmp_path: Path
) -> None:
    run = make_run()

    result = cli(
        run, ops_aws, "run", "--name", "ops-happy", "--poll-seconds", "0.5", "--timeout", "90"
    )

    assert result.code == 0, result.out + result.err
    assert result.out.splitlines()[-1] == "ops-happy: SUCCEEDED"
    assert "the agent took the task" in result.out
    record = run_record(run, ops_aws, "ops-happy")
    assert (record["written_by"], record["status"]) == ("agent", "SUCCEEDED")
    assert record["model"]["version"].startswith("sha256:")
    assert record["output"]["manifest_key"] == "runs/ops-happy/_manifest.json"
    assert record["lifetime_seconds"] == UPTIME_SECONDS
    assert record["cost"]["hourly_usd"] > 0
    (line,) = [json.loads(x) for x in (tmp_path / "metrics.log").read_text().splitlines()]
    assert line["ExecutionName"] == "ops-happy"
    assert line["RunSucceeded"] == 1.0

    rows = cli(run, ops_aws, "status", "--json").json()
    assert rows[0]["name"] == "ops-happy"
    assert rows[0]["cost_source"] == "run.json"


def test_a_failing_model_gets_a_failed_run_json_from_the_agent(
    make_run: MakeRun, ops_aws: LocalAws
) -> None:
    run = make_run(model_command=["sh", "-c", "exit 3"])

    result = cli(
        run, ops_aws, "run", "--name", "ops-fail", "--poll-seconds", "0.5", "--timeout", "90"
    )

    assert result.code == 1, result.out + result.err
    record = run_record(run, ops_aws, "ops-fail")
    assert (record["written_by"], record["status"]) == ("agent", "FAILED")
    assert record["error"]["error"] == "ModelCommandFailed"


def test_a_refused_start_gets_a_minimal_run_json_from_the_launcher(
    make_run: MakeRun, ops_aws: LocalAws
) -> None:
    run = make_run()

    result = cli(
        run,
        ops_aws,
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
    record = run_record(run, ops_aws, "ops-refused")
    assert (record["written_by"], record["status"]) == ("launcher", "FAILED")
    assert record["error"]["error"] == "EventValidationError"
    assert record["instance"] == {}
    assert record["input"]["max_runtime_seconds"] == 0
