"""stop: terminate the run's instance and any other it owns; refuse instances not ours."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from launcher.errors import ForeignInstanceError
from tests.launcher.conftest import (
    PROJECT,
    CallLog,
    Invoke,
    Network,
    Template,
    Workflow,
    instance_of,
    launch_tagged,
)

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

OTHER_EXECUTION = (
    "arn:aws:states:eu-west-1:123456789012:execution:scheduled-gpu-model:weekly-2024-12-31"
)


def _state(ec2: EC2Client, instance_id: str) -> str:
    return str(instance_of(ec2, instance_id)["State"]["Name"])


def _stop_event(workflow: Workflow, instance_id: str | None) -> dict[str, Any]:
    instance = None if instance_id is None else {"instance_id": instance_id}
    return {"action": "stop", "execution_arn": workflow.execution_arn, "instance": instance}


def test_stop_terminates_the_started_instance(
    invoke: Invoke, start_event: dict[str, Any], workflow: Workflow, ec2: EC2Client
) -> None:
    started = invoke(start_event)
    result = invoke(
        {"action": "stop", "execution_arn": workflow.execution_arn, "instance": started}
    )
    assert result == {"terminated": [started["instance_id"]], "already_gone": []}
    assert _state(ec2, started["instance_id"]) == "terminated"


def test_stop_of_an_already_terminated_instance_succeeds(
    invoke: Invoke, start_event: dict[str, Any], workflow: Workflow, ec2: EC2Client
) -> None:
    instance_id = invoke(start_event)["instance_id"]
    ec2.terminate_instances(InstanceIds=[instance_id])
    result = invoke(_stop_event(workflow, instance_id))
    assert result == {"terminated": [], "already_gone": [instance_id]}


def test_stop_twice_succeeds_both_times(
    invoke: Invoke, start_event: dict[str, Any], workflow: Workflow
) -> None:
    instance_id = invoke(start_event)["instance_id"]
    assert invoke(_stop_event(workflow, instance_id))["terminated"] == [instance_id]
    assert invoke(_stop_event(workflow, instance_id))["already_gone"] == [instance_id]


def test_stop_of_an_unknown_instance_succeeds(
    invoke: Invoke, workflow: Workflow, launch_template: Template
) -> None:
    result = invoke(_stop_event(workflow, "i-0123456789abcdef0"))
    assert result == {"terminated": [], "already_gone": ["i-0123456789abcdef0"]}


def test_stop_without_an_instance_terminates_what_the_execution_launched(
    invoke: Invoke,
    workflow: Workflow,
    ec2: EC2Client,
    launch_template: Template,
    network: Network,
) -> None:
    # A start that launched, then crashed before returning: the workflow has instance null.
    orphan = launch_tagged(
        ec2,
        launch_template,
        network.subnet_ids[0],
        {"Project": PROJECT, "StepFunctionsExecution": workflow.execution_arn},
    )
    result = invoke(_stop_event(workflow, None))
    assert result == {"terminated": [orphan], "already_gone": []}
    assert _state(ec2, orphan) == "terminated"


def test_stop_also_terminates_other_instances_of_the_same_execution(
    *,
    invoke: Invoke,
    start_event: dict[str, Any],
    workflow: Workflow,
    ec2: EC2Client,
    launch_template: Template,
    network: Network,
) -> None:
    started = invoke(start_event)["instance_id"]
    orphan = launch_tagged(
        ec2,
        launch_template,
        network.subnet_ids[1],
        {"Project": PROJECT, "StepFunctionsExecution": workflow.execution_arn},
    )
    result = invoke(_stop_event(workflow, started))
    assert sorted(result["terminated"]) == sorted([started, orphan])
    assert {_state(ec2, started), _state(ec2, orphan)} == {"terminated"}


def test_stop_leaves_other_executions_instances_alone(
    *,
    invoke: Invoke,
    start_event: dict[str, Any],
    workflow: Workflow,
    ec2: EC2Client,
    launch_template: Template,
    network: Network,
) -> None:
    started = invoke(start_event)["instance_id"]
    other = launch_tagged(
        ec2,
        launch_template,
        network.subnet_ids[0],
        {"Project": PROJECT, "StepFunctionsExecution": OTHER_EXECUTION},
    )
    invoke(_stop_event(workflow, started))
    assert _state(ec2, other) == "running"


@pytest.mark.parametrize(
    "tags",
    [
        {},
        {"Project": "someone-elses-project"},
        {
            "Project": "scheduled-gpu-model",
            "StepFunctionsExecution": "arn:aws:states:eu-west-1:123456789012:execution:"
            "scheduled-gpu-model:another-run",
        },
    ],
    ids=["no-project-tag", "other-project", "other-execution"],
)
def test_stop_refuses_a_foreign_instance_and_leaves_it_running(
    *,
    tags: dict[str, str],
    invoke: Invoke,
    workflow: Workflow,
    ec2: EC2Client,
    launch_template: Template,
    network: Network,
    aws_calls: CallLog,
) -> None:
    foreign = launch_tagged(ec2, launch_template, network.subnet_ids[0], tags)
    with pytest.raises(ForeignInstanceError, match=foreign):
        invoke(_stop_event(workflow, foreign))
    assert _state(ec2, foreign) == "running"
    assert "TerminateInstances" not in aws_calls.operations("ec2")


def test_a_foreign_instance_does_not_keep_the_runs_own_instance_alive(
    *,
    invoke: Invoke,
    start_event: dict[str, Any],
    workflow: Workflow,
    ec2: EC2Client,
    launch_template: Template,
    network: Network,
) -> None:
    own = invoke(start_event)["instance_id"]
    foreign = launch_tagged(ec2, launch_template, network.subnet_ids[0], {})
    with pytest.raises(ForeignInstanceError):
        invoke(_stop_event(workflow, foreign))
    assert _state(ec2, own) == "terminated"
    assert _state(ec2, foreign) == "running"


def test_stop_publishes_the_number_terminated(
    invoke: Invoke,
    start_event: dict[str, Any],
    workflow: Workflow,
    capsys: pytest.CaptureFixture[str],
) -> None:
    instance_id = invoke(start_event)["instance_id"]
    capsys.readouterr()
    invoke(_stop_event(workflow, instance_id))
    emf = [line for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert len(emf) == 1
    assert '"InstancesTerminated":[1.0]' in emf[0]
