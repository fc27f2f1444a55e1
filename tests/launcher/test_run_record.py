"""The launcher's stop writes a minimal run.json when the agent wrote none, and never lets that
get in the way of terminating; the sweeper publishes InstancesPastLifetime."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

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
