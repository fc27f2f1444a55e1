"""One run at a time: refuse to start while another execution of the state machine runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from launcher.aws_errors import transient_errors_raised_as_launcher_errors
from launcher.errors import RunAlreadyInProgress

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


def other_running_executions(
    sfn: SFNClient, state_machine_arn: str, execution_arn: str
) -> list[str]:
    """ARNs of the RUNNING executions of the state machine other than ``execution_arn``."""
    running: list[str] = []
    with transient_errors_raised_as_launcher_errors("ListExecutions"):
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=state_machine_arn, statusFilter="RUNNING"
        )
        for page in pages:
            running.extend(e["executionArn"] for e in page["executions"])
    return [arn for arn in running if arn != execution_arn]


def ensure_only_run(sfn: SFNClient, state_machine_arn: str, execution_arn: str) -> None:
    """Raise RunAlreadyInProgress naming the other RUNNING execution(s), if any.

    Two executions started in the same instant both see each other and both refuse: the safe
    side, since two runs must never share the activity queue.
    """
    others = other_running_executions(sfn, state_machine_arn, execution_arn)
    if others:
        raise RunAlreadyInProgress(execution_arn, others)
