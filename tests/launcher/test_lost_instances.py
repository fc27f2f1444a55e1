"""instance_lost: a run's instance vanished, so its execution fails now, by the way its history
allows (fail the pending task, or stop the execution), and never for an instance not its own or
a run that had already ended. EC2 is moto's; Step Functions is a scripted fake whose history
says where the run is."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from launcher import clients
from tests.launcher.conftest import PROJECT, Invoke, Network, Template, launch_tagged

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:scheduled-gpu-model:week-49"


@dataclass
class ScriptedSfn:
    """describe_execution, the history (oldest first, as AWS serves it by default) and the
    activity queue of one execution."""

    status: str = "RUNNING"
    history: list[str] = field(default_factory=list)
    pending_input: dict[str, Any] | None = None
    failed_tasks: list[dict[str, str]] = field(default_factory=list)
    stopped: list[dict[str, str]] = field(default_factory=list)

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803 - boto3's
        return {"executionArn": executionArn, "status": self.status}

    def get_paginator(self, name: str) -> Any:
        assert name == "get_execution_history"
        events = [{"type": kind} for kind in self.history]

        class Pages:
            def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
                assert "reverseOrder" not in kwargs
                return [{"events": events}]

        return Pages()

    def get_activity_task(self, **_: Any) -> dict[str, Any]:
        if self.pending_input is None:
            return {}
        task_input, self.pending_input = self.pending_input, None
        return {"taskToken": "token-1", "input": json.dumps(task_input)}

    def send_task_failure(self, **kwargs: str) -> None:
        self.failed_tasks.append(kwargs)

    def stop_execution(self, **kwargs: str) -> None:
        self.stopped.append(kwargs)


@pytest.fixture
def sfn_script(aws: None, monkeypatch: pytest.MonkeyPatch) -> ScriptedSfn:
    script = ScriptedSfn()
    monkeypatch.setattr(clients, "sfn_client", script)
    monkeypatch.setattr(clients, "poll_sfn_client", script)
    return script


@pytest.fixture
def run_instance(ec2: EC2Client, launch_template: Template, network: Network) -> str:
    tags = {"Project": PROJECT, "StepFunctionsExecution": EXECUTION}
    instance_id = launch_tagged(ec2, launch_template, network.subnet_ids[0], tags)
    ec2.terminate_instances(InstanceIds=[instance_id])
    return instance_id


def lost(instance_id: str, state: str = "terminated") -> dict[str, Any]:
    return {"action": "instance_lost", "instance_id": instance_id, "state": state}


def test_a_task_no_worker_took_is_failed_with_instance_lost(
    invoke: Invoke, sfn_script: ScriptedSfn, run_instance: str
) -> None:
    sfn_script.history = ["ExecutionStarted", "TaskSucceeded", "ActivityScheduled"]
    sfn_script.pending_input = {"execution_arn": EXECUTION, "instance_id": run_instance}

    result = invoke(lost(run_instance, "shutting-down"))

    assert result["outcome"] == "failed_task"
    (failure,) = sfn_script.failed_tasks
    assert failure["error"] == "InstanceLost"
    assert f"Instance {run_instance} went shutting-down" in failure["cause"]
    assert "before the agent took the run's task" in failure["cause"]
    assert sfn_script.stopped == []


def test_a_task_the_agent_held_stops_the_execution_with_instance_lost(
    invoke: Invoke, sfn_script: ScriptedSfn, run_instance: str
) -> None:
    sfn_script.history = ["ActivityScheduled", "ActivityStarted"]

    result = invoke(lost(run_instance))

    assert result == {
        "outcome": "stopped_execution",
        "reason": "the instance was lost while the agent held the run's task",
        "execution_arn": EXECUTION,
    }
    (stop,) = sfn_script.stopped
    assert stop["executionArn"] == EXECUTION
    assert stop["error"] == "InstanceLost"
    assert sfn_script.failed_tasks == []


def test_an_instance_lost_before_the_task_was_scheduled_stops_the_execution(
    invoke: Invoke, sfn_script: ScriptedSfn, run_instance: str
) -> None:
    sfn_script.history = ["ExecutionStarted", "TaskScheduled"]

    assert invoke(lost(run_instance))["outcome"] == "stopped_execution"
    assert "before the run began" in sfn_script.stopped[0]["cause"]


@pytest.mark.parametrize("ended", ["ActivitySucceeded", "ActivityFailed", "ActivityTimedOut"])
def test_the_expected_end_of_a_run_that_reported_is_left_alone(
    ended: str, invoke: Invoke, sfn_script: ScriptedSfn, run_instance: str
) -> None:
    sfn_script.history = ["ActivityScheduled", "ActivityStarted", ended, "TaskScheduled"]

    assert invoke(lost(run_instance))["outcome"] == "ignored"
    assert sfn_script.stopped == sfn_script.failed_tasks == []


def test_an_execution_that_is_over_is_left_alone(
    invoke: Invoke, sfn_script: ScriptedSfn, run_instance: str
) -> None:
    sfn_script.status = "SUCCEEDED"

    result = invoke(lost(run_instance))

    assert result["outcome"] == "ignored"
    assert result["reason"] == "the execution is already SUCCEEDED"


@pytest.mark.parametrize("tags", [{}, {"Project": "another-project"}])
def test_an_instance_of_another_project_is_left_alone(
    *,
    tags: dict[str, str],
    invoke: Invoke,
    sfn_script: ScriptedSfn,
    ec2: EC2Client,
    launch_template: Template,
    network: Network,
) -> None:
    sfn_script.history = ["ActivityScheduled"]
    sfn_script.pending_input = {"execution_arn": EXECUTION}
    other = launch_tagged(ec2, launch_template, network.subnet_ids[0], tags)

    assert invoke(lost(other))["reason"] == "not an instance of this project"
    assert sfn_script.failed_tasks == []
    assert sfn_script.pending_input is not None  # the task was not taken


def test_a_task_already_taken_by_the_time_of_the_poll_stops_the_execution(
    invoke: Invoke, sfn_script: ScriptedSfn, run_instance: str
) -> None:
    sfn_script.history = ["ActivityScheduled"]  # the history lags: a worker took it meanwhile

    assert invoke(lost(run_instance))["outcome"] == "stopped_execution"
