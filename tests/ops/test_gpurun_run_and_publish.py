"""``gpurun run`` following the real weekly-run state machine to its end in moto (the launcher's
real handler, an agent played by a thread), and ``gpurun publish-model``."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from instance_agent.manifest import MANIFEST_NAME
from tests.ops.cli_helpers import gpurun
from tests.ops.conftest import REGION
from tests.workflow.test_weekly_run_asl import WeeklyRun, agent


def run_flags(weekly_run: WeeklyRun) -> list[str]:
    return ["--region", REGION, "--state-machine-arn", weekly_run.state_machine_arn]


def test_run_follows_a_successful_execution_phase_by_phase_and_exits_0(
    weekly_run: WeeklyRun,
) -> None:
    worker = agent(weekly_run, "succeed")

    result = gpurun("run", *run_flags(weekly_run), "--poll-seconds", "0.2", "--name", "manual-1")
    worker.join()

    assert result.code == 0, result.err
    instance_id = worker.task_input["instance_id"]
    lines = result.out.splitlines()
    assert lines[0] == "started manual-1"
    assert any("StartInstance" in line and f"instance {instance_id}" in line for line in lines)
    assert any("the agent took the task (agent)" in line for line in lines)
    assert any("model run done (copy_model 1.5s, run_model 20.0s)" in line for line in lines)
    assert any(f"terminated ['{instance_id}']" in line for line in lines)
    assert lines[-1] == "manual-1: SUCCEEDED"


def test_run_phases_come_in_the_order_they_happened(weekly_run: WeeklyRun) -> None:
    worker = agent(weekly_run, "succeed")

    result = gpurun("run", *run_flags(weekly_run), "--poll-seconds", "0.2", "--json")
    worker.join()

    entered = [p["phase"] for p in result.json()["progress"] if p["message"] == "entered"]
    assert entered == [
        "LoadRunDefaults",
        "ApplyDefaults",
        "StartInstance",
        "RunModel",
        "StopInstance",
        "DidTheRunFail",
        "RunSucceeded",
    ]


def test_run_of_a_failing_model_exits_1_with_the_agents_error(weekly_run: WeeklyRun) -> None:
    worker = agent(weekly_run, "fail")

    result = gpurun("run", *run_flags(weekly_run), "--poll-seconds", "0.2", "--json")
    worker.join()

    assert result.code == 1
    document = result.json()
    assert (document["status"], document["error"]) == ("FAILED", "ModelCommandFailed")


def test_run_passes_set_overrides_as_the_execution_input(weekly_run: WeeklyRun) -> None:
    worker = agent(weekly_run, "succeed")

    gpurun(
        "run",
        *run_flags(weekly_run),
        "--poll-seconds",
        "0.2",
        "--set",
        "max_runtime_seconds=120",
        "--set",
        "parameters.week=48",
    )
    worker.join()

    assert worker.task_input["max_runtime_seconds"] == 120
    assert worker.task_input["parameters"] == {"week": 48}


def test_run_refuses_an_unknown_key_before_starting_anything(weekly_run: WeeklyRun) -> None:
    result = gpurun("run", *run_flags(weekly_run), "--set", "instance_type=g5.xlarge")

    assert result.code == 2
    assert "instance_type: not a run parameter" in result.err
    executions = weekly_run.sfn.list_executions(stateMachineArn=weekly_run.state_machine_arn)
    assert executions["executions"] == []


def test_run_with_a_timeout_returns_5_while_the_execution_still_runs(
    weekly_run: WeeklyRun,
) -> None:
    result = gpurun("run", *run_flags(weekly_run), "--poll-seconds", "0.2", "--timeout", "0.5")

    assert result.code == 5
    arn = result.out.splitlines()[1].strip()
    weekly_run.sfn.stop_execution(executionArn=arn)


# ---- publish-model --------------------------------------------------------------------------


def test_publish_model_uploads_the_files_and_the_manifest(aws: None, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w" * 1000)

    result = gpurun("publish-model", str(model), "--region", REGION, "--bucket", "models", "--json")

    assert result.code == 0, result.err
    assert result.json()["files"] == 1
    manifest = json.loads(
        s3.get_object(Bucket="models", Key=f"models/current/{MANIFEST_NAME}")["Body"].read()
    )
    assert [f["path"] for f in manifest["files"]] == ["weights.bin"]


def test_publish_model_refuses_a_prefix_outside_models(aws: None, tmp_path: Path) -> None:
    result = gpurun(
        "publish-model", str(tmp_path), "--region", REGION, "--bucket", "b", "--prefix", "runs/x/"
    )

    assert result.code == 2
    assert "must start with models/" in result.err


def test_publish_model_of_a_missing_directory_says_so(aws: None, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})

    result = gpurun(
        "publish-model", str(tmp_path / "nope"), "--region", REGION, "--bucket", "models"
    )

    assert result.code == 2
    assert "does not exist" in result.err
