"""What the launcher confirms with Step Functions before it acts, instead of trusting its event.

``start`` launches only for an execution that exists, is RUNNING and belongs to the state machine
the event names; ``cleanup`` terminates only for an execution that has really ended. A refusal is
an EventValidationError naming the field that disagrees with Step Functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from launcher.aws_errors import error_code, transient_errors_raised_as_launcher_errors
from launcher.errors import EventValidationError
from launcher.events import quote
from run_contract.statuses import RUNNING, TERMINAL_STATUSES

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

_DOES_NOT_EXIST = frozenset({"ExecutionDoesNotExist"})


def describe(sfn: SFNClient, execution_arn: str) -> dict[str, Any]:
    """DescribeExecution, or EventValidationError when Step Functions knows no such execution."""
    try:
        with transient_errors_raised_as_launcher_errors("DescribeExecution"):
            return dict(sfn.describe_execution(executionArn=execution_arn))
    except ClientError as error:
        if error_code(error) in _DOES_NOT_EXIST:
            raise EventValidationError(
                [
                    (
                        "execution_arn",
                        f"{quote(execution_arn)} is not an execution Step Functions "
                        "knows; pass $$.Execution.Id",
                    )
                ]
            ) from None
        raise


def confirm_running(
    sfn: SFNClient, execution_arn: str, state_machine_arn: str, own_state_machine_arn: str
) -> None:
    """The execution exists, is RUNNING, and is one of ``state_machine_arn`` (the event's,
    unqualified), which must be the launcher's own (``STATE_MACHINE_ARN``)."""
    if state_machine_arn != own_state_machine_arn:
        raise EventValidationError(
            [
                (
                    "state_machine_arn",
                    f"{quote(state_machine_arn)} is not the state machine this launcher serves",
                )
            ]
        )
    execution = describe(sfn, execution_arn)
    if execution["stateMachineArn"] != state_machine_arn:
        raise EventValidationError(
            [
                (
                    "state_machine_arn",
                    f"the execution belongs to {quote(execution['stateMachineArn'])}, "
                    "not this state machine",
                )
            ]
        )
    if execution["status"] != RUNNING:
        raise EventValidationError(
            [
                (
                    "execution_arn",
                    f"the execution is {execution['status']}, not RUNNING: nothing is "
                    "launched for an execution that is over",
                )
            ]
        )


def confirm_ended(sfn: SFNClient, execution_arn: str, claimed_status: str) -> str:
    """The execution's real final status; refuses when it is still RUNNING."""
    status = str(describe(sfn, execution_arn)["status"])
    if status not in TERMINAL_STATUSES:
        raise EventValidationError(
            [
                (
                    "status",
                    f"the event says {claimed_status} but the execution is {status}: "
                    "a running execution's instance is never cleaned up",
                )
            ]
        )
    return status
