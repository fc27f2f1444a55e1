"""start refuses while another execution of the state machine is RUNNING."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from launcher.errors import RunAlreadyInProgress
from tests.launcher.conftest import CallLog, Invoke, Workflow

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


def _start_other(sfn: SFNClient, workflow: Workflow, name: str) -> str:
    return sfn.start_execution(stateMachineArn=workflow.state_machine_arn, name=name)[
        "executionArn"
    ]


def test_start_is_refused_naming_the_other_running_execution(
    invoke: Invoke, start_event: dict[str, Any], sfn: SFNClient, workflow: Workflow
) -> None:
    other = _start_other(sfn, workflow, "manual-from-console")
    with pytest.raises(RunAlreadyInProgress, match=other) as refused:
        invoke(start_event)
    assert refused.value.running == [other]


def test_a_refused_start_launches_nothing(
    invoke: Invoke,
    start_event: dict[str, Any],
    sfn: SFNClient,
    workflow: Workflow,
    aws_calls: CallLog,
) -> None:
    _start_other(sfn, workflow, "manual-from-console")
    with pytest.raises(RunAlreadyInProgress):
        invoke(start_event)
    assert aws_calls.operations("ec2") == []


def test_an_execution_that_already_ended_does_not_block_the_start(
    invoke: Invoke, start_event: dict[str, Any], sfn: SFNClient, workflow: Workflow
) -> None:
    other = _start_other(sfn, workflow, "last-week")
    sfn.stop_execution(executionArn=other)
    assert invoke(start_event)["reused"] is False


def test_the_lock_looks_only_at_running_executions_of_this_state_machine(
    invoke: Invoke, start_event: dict[str, Any], aws_calls: CallLog, workflow: Workflow
) -> None:
    invoke(start_event)
    [request] = aws_calls.params("ListExecutions")
    assert request == {"stateMachineArn": workflow.state_machine_arn, "statusFilter": "RUNNING"}


def test_executions_of_another_state_machine_do_not_block_the_start(
    invoke: Invoke, start_event: dict[str, Any], sfn: SFNClient, workflow: Workflow
) -> None:
    machine = sfn.create_state_machine(
        name="another-workflow",
        definition='{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}',
        roleArn="arn:aws:iam::123456789012:role/another",
    )["stateMachineArn"]
    sfn.start_execution(stateMachineArn=machine, name="busy")
    assert invoke(start_event)["instance_id"].startswith("i-")
