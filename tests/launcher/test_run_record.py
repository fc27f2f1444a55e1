"""The launcher's stop writes a minimal run.json when the agent wrote none, and never lets that
get in the way of terminating; the sweeper publishes InstancesPastLifetime."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from run_contract.run_record import check_record, new_record
from tests.launcher.conftest import RUN_RECORDS_BUCKET as BUCKET
from tests.launcher.conftest import Invoke, Workflow, instance_of

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

RUN = {"instance_types": ["g4dn.xlarge"], "model_prefix": "models/current/", "parameters": {}}


def stop_event(
    workflow: Workflow, instance: dict[str, Any] | None, error: dict[str, str] | None
) -> dict[str, Any]:
    return {
        "action": "stop",
        "execution_arn": workflow.execution_arn,
        "instance": instance,
        "run": RUN,
        "error": error,
        "results": {"bucket": BUCKET, "prefix": f"runs/{workflow.execution_name}/"},
    }


def record(s3: Any, workflow: Workflow) -> dict[str, Any]:
    key = f"runs/{workflow.execution_name}/run.json"
    parsed: dict[str, Any] = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return parsed


def emf_metrics(output: str) -> dict[str, float]:
    """Metric name -> value from the Powertools EMF lines the handler printed."""
    found: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith('{"_aws"'):
            document = json.loads(line)
            for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = document[metric["Name"]]
                found[metric["Name"]] = value[0] if isinstance(value, list) else value
    return found


def test_a_run_whose_agent_died_gets_a_failed_record_with_its_error_and_instance(
    invoke: Invoke, start_event: dict[str, Any], workflow: Workflow, s3: Any
) -> None:
    started = invoke(start_event)
    error = {"Error": "States.HeartbeatTimeout", "Cause": "no heartbeat for 300 s"}

    result = invoke(stop_event(workflow, started, error))

    assert result["terminated"] == [started["instance_id"]]
    written = record(s3, workflow)
    assert written["written_by"] == "launcher"
    assert written["status"] == "FAILED"
    assert written["error"] == {
        "error": "States.HeartbeatTimeout",
        "cause": "no heartbeat for 300 s",
    }
    assert written["instance"] == {
        "instance_id": started["instance_id"],
        "instance_type": started["instance_type"],
        "availability_zone": started["availability_zone"],
    }
    assert written["input"] == RUN
    assert written["execution_name"] == workflow.execution_name
    assert written["lifetime_seconds"] >= 0
    assert written["cost"] is None


def test_a_run_whose_start_failed_gets_a_record_without_an_instance(
    invoke: Invoke, workflow: Workflow, s3: Any
) -> None:
    error = {"Error": "InsufficientCapacityEverywhere", "Cause": "g4dn.xlarge in subnet-1: ..."}

    invoke(stop_event(workflow, None, error))

    written = record(s3, workflow)
    assert written["status"] == "FAILED"
    assert written["instance"] == {}
    assert written["lifetime_seconds"] is None


def test_the_agents_record_is_never_overwritten(
    invoke: Invoke, start_event: dict[str, Any], workflow: Workflow, s3: Any
) -> None:
    started = invoke(start_event)
    agents = {"written_by": "agent", "status": "SUCCEEDED"}
    s3.put_object(
        Bucket=BUCKET,
        Key=f"runs/{workflow.execution_name}/run.json",
        Body=json.dumps(agents).encode(),
    )

    invoke(stop_event(workflow, started, None))

    assert record(s3, workflow) == agents


def agents_success_record(workflow: Workflow, instance: dict[str, Any]) -> dict[str, Any]:
    return new_record(
        written_by="agent",
        execution_name=workflow.execution_name,
        execution_arn=workflow.execution_arn,
        status="SUCCEEDED",
        error=None,
        run_input=RUN,
        instance={k: instance[k] for k in ("instance_id", "instance_type", "availability_zone")},
        timings={"model_run": 61.0},
        lifetime_seconds=300.0,
        model=None,
        output={
            "bucket": BUCKET,
            "prefix": f"runs/{workflow.execution_name}/",
            "manifest_key": f"runs/{workflow.execution_name}/_manifest.json",
        },
        cost=None,
        cost_note="test",
    )


def put_json(s3: Any, key: str, body: dict[str, Any]) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(body).encode())


def test_a_succeeded_record_the_workflows_error_contradicts_is_corrected_and_its_manifest_goes(
    invoke: Invoke,
    start_event: dict[str, Any],
    workflow: Workflow,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = invoke(start_event)
    prefix = f"runs/{workflow.execution_name}/"
    put_json(s3, prefix + "run.json", agents_success_record(workflow, started))
    put_json(s3, prefix + "_manifest.json", {"files": []})
    capsys.readouterr()
    error = {"Error": "States.Timeout", "Cause": "SendTaskSuccess came after the heartbeat"}

    invoke(stop_event(workflow, started, error))

    fixed = record(s3, workflow)
    check_record(fixed)
    assert fixed["status"] == "FAILED"
    assert fixed["error"] == {"error": "States.Timeout", "cause": error["Cause"]}
    assert fixed["output"] is None
    assert fixed["correction"]["by"] == "launcher"
    assert fixed["correction"]["status_was"] == "SUCCEEDED"
    assert fixed["timings"] == {"model_run": 61.0}  # what the agent measured is kept
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    assert [o["Key"] for o in listed["Contents"]] == [prefix + "run.json"]
    assert emf_metrics(capsys.readouterr().out)["RunRecordsCorrected"] == 1


def test_a_failed_record_of_the_agent_is_kept_as_it_wrote_it(
    invoke: Invoke, start_event: dict[str, Any], workflow: Workflow, s3: Any
) -> None:
    started = invoke(start_event)
    agents = agents_success_record(workflow, started)
    agents.update(status="FAILED", output=None, error={"error": "ModelCommandFailed", "cause": ""})
    put_json(s3, f"runs/{workflow.execution_name}/run.json", agents)

    invoke(stop_event(workflow, started, {"Error": "ModelCommandFailed", "Cause": "exit 2"}))

    assert record(s3, workflow) == agents


def test_a_minimal_success_record_names_the_manifest_only_when_it_exists(
    invoke: Invoke, start_event: dict[str, Any], workflow: Workflow, s3: Any
) -> None:
    started = invoke(start_event)

    invoke(stop_event(workflow, started, None))

    assert record(s3, workflow)["output"] is None


def test_a_record_that_cannot_be_written_does_not_stop_the_termination(
    invoke: Invoke, start_event: dict[str, Any], workflow: Workflow, ec2: EC2Client
) -> None:
    # No bucket at all: the PUT fails, the instance must still be terminated.
    started = invoke(start_event)

    result = invoke(stop_event(workflow, started, {"Error": "ModelCommandFailed", "Cause": ""}))

    assert result == {"terminated": [started["instance_id"]], "already_gone": []}
    assert instance_of(ec2, started["instance_id"])["State"]["Name"] == "terminated"


def test_a_stop_event_without_results_writes_no_record(
    invoke: Invoke, start_event: dict[str, Any], workflow: Workflow, s3: Any
) -> None:
    started = invoke(start_event)

    invoke({"action": "stop", "execution_arn": workflow.execution_arn, "instance": started})

    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")
    assert listed.get("KeyCount", 0) == 0


def test_stop_refuses_results_outside_the_runs_prefix(invoke: Invoke, workflow: Workflow) -> None:
    from launcher.errors import EventValidationError

    event = stop_event(workflow, None, None)
    event["results"]["prefix"] = "models/current/"

    with pytest.raises(EventValidationError, match=r"results\.prefix"):
        invoke(event)


def test_stop_publishes_whether_it_wrote_a_record(
    invoke: Invoke,
    start_event: dict[str, Any],
    workflow: Workflow,
    s3: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = invoke(start_event)
    capsys.readouterr()

    invoke(stop_event(workflow, started, {"Error": "States.Timeout", "Cause": ""}))

    assert emf_metrics(capsys.readouterr().out)["RunRecordsWritten"] == 1


def test_the_sweeper_counts_the_instances_past_their_lifetime(
    invoke: Invoke,
    start_event: dict[str, Any],
    ec2: EC2Client,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = invoke(start_event)
    from launcher import app

    later = datetime.now(UTC) + timedelta(hours=3)  # lifetime in the fixture's env: 2 h

    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return later

    monkeypatch.setattr(app, "datetime", Clock)
    capsys.readouterr()

    result = invoke({"action": "sweep"})

    assert result["terminated"] == [started["instance_id"]]
    assert emf_metrics(capsys.readouterr().out)["InstancesPastLifetime"] == 1


def test_the_sweeper_publishes_zero_when_every_instance_is_young(
    invoke: Invoke, start_event: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    invoke(start_event)
    capsys.readouterr()

    invoke({"action": "sweep"})

    assert emf_metrics(capsys.readouterr().out)["InstancesPastLifetime"] == 0
