"""A run's instance vanished (shutting-down or terminated by anything but the run's own end):
fail its execution now, instead of when the state machine's own timeout fires hours later.

The EventBridge rule on EC2 instance state changes sends every instance of the account here, so
only an instance with this project's tag counts, and only while its execution still waits on
it. What the execution's history shows decides how it fails:

- the model task is scheduled and no worker took it (the agent died before polling, the instance
  was terminated at boot): the launcher takes that task itself and fails it with
  ``InstanceLost``, so the workflow's Catch runs StopInstance and the execution FAILS with that
  error and a run record;
- the agent had taken the task, or the task is not scheduled yet: nobody else holds a token, so
  the execution is stopped (ABORTED) with error ``InstanceLost`` and the cause;
- the task already ended (the run reported, its instance powering off as it should), or the
  execution is over: nothing to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from launcher.aws_errors import transient_errors_raised_as_launcher_errors
from launcher.instances import describe_by_id, tag_value
from run_contract.error_names import INSTANCE_LOST_ERROR
from run_contract.statuses import RUNNING
from run_contract.tags import EXECUTION_TAG, PROJECT_TAG

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_stepfunctions import SFNClient

_TASK_ENDED = frozenset(
    {"ActivitySucceeded", "ActivityFailed", "ActivityTimedOut", "ActivityScheduleFailed"}
)
# A pending task is handed out at once; the long poll only runs when another worker took it in
# the meantime, so its 60 s must fit in the read timeout (and the function's own timeout).
POLL_CLIENT_CONFIG = Config(read_timeout=70, connect_timeout=5, retries={"total_max_attempts": 1})
WORKER_NAME = "launcher-instance-lost"


@dataclass(frozen=True)
class LostInstanceOutcome:
    """What the launcher did: ``failed_task``, ``stopped_execution`` or ``ignored``, and why."""

    outcome: str
    reason: str
    execution_arn: str | None = None

    def as_result(self) -> dict[str, str | None]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "execution_arn": self.execution_arn,
        }


def _activity_phase(sfn: SFNClient, execution_arn: str) -> str:
    """``ended``, ``started``, ``scheduled`` or ``none``: the model task's latest state.

    The history is read oldest first and the last activity event wins: a run has one model task
    and few events, and this does not depend on ``reverseOrder`` (which moto ignores).
    """
    phase = "none"
    with transient_errors_raised_as_launcher_errors("GetExecutionHistory"):
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
        for page in pages:
            for event in page["events"]:
                kind = event["type"]
                if kind in _TASK_ENDED:
                    phase = "ended"
                elif kind == "ActivityStarted":
                    phase = "started"
                elif kind == "ActivityScheduled":
                    phase = "scheduled"
    return phase


def _cause(instance_id: str, state: str, reason: str | None, when: str) -> str:
    said = f" (EC2: {reason[:300]})" if reason else ""
    return f"Instance {instance_id} went {state}{said} {when}; the run cannot finish on it."


def handle_lost_instance(
    *,
    ec2: EC2Client,
    sfn: SFNClient,
    poll_sfn: SFNClient,
    project: str,
    activity_arn: str,
    instance_id: str,
    state: str,
) -> LostInstanceOutcome:
    """Fail the execution that ``instance_id`` served, if it still waits on that instance."""
    instance = describe_by_id(ec2, instance_id)
    if instance is None or tag_value(instance, PROJECT_TAG) != project:
        return LostInstanceOutcome("ignored", "not an instance of this project")
    execution_arn = tag_value(instance, EXECUTION_TAG)
    if not execution_arn:
        return LostInstanceOutcome("ignored", "the instance names no execution")
    with transient_errors_raised_as_launcher_errors("DescribeExecution"):
        status = sfn.describe_execution(executionArn=execution_arn)["status"]
    if status != RUNNING:
        return LostInstanceOutcome("ignored", f"the execution is already {status}", execution_arn)
    reason = instance.get("StateReason", {}).get("Message")
    phase = _activity_phase(sfn, execution_arn)
    if phase == "ended":
        return LostInstanceOutcome(
            "ignored", "the model task had ended: the instance's expected end", execution_arn
        )
    if phase == "scheduled" and _fail_pending_task(
        poll_sfn,
        activity_arn,
        execution_arn,
        _cause(instance_id, state, reason, "before the agent took the run's task"),
    ):
        return LostInstanceOutcome("failed_task", "no worker had taken the task", execution_arn)
    # A scheduled task that was not pending any more had just been taken by the agent.
    when = "before the run began" if phase == "none" else "while the agent held the run's task"
    with transient_errors_raised_as_launcher_errors("StopExecution"):
        sfn.stop_execution(
            executionArn=execution_arn,
            error=INSTANCE_LOST_ERROR,
            cause=_cause(instance_id, state, reason, when),
        )
    return LostInstanceOutcome("stopped_execution", f"the instance was lost {when}", execution_arn)


def _fail_pending_task(
    poll_sfn: SFNClient, activity_arn: str, execution_arn: str, cause: str
) -> bool:
    """Take the execution's pending task and fail it; False if no task of it was pending."""
    with transient_errors_raised_as_launcher_errors("GetActivityTask"):
        task = poll_sfn.get_activity_task(activityArn=activity_arn, workerName=WORKER_NAME)
    token = task.get("taskToken")
    if not token:
        return False
    task_input: Any = json.loads(task.get("input") or "{}")
    if not isinstance(task_input, dict) or task_input.get("execution_arn") != execution_arn:
        # One run at a time makes this impossible; if it happens, that run's task is failed with
        # a cause saying so, rather than held by nobody until its heartbeat times out.
        cause = f"The launcher took this task by mistake while failing {execution_arn}: {cause}"
    with transient_errors_raised_as_launcher_errors("SendTaskFailure"):
        poll_sfn.send_task_failure(taskToken=token, error=INSTANCE_LOST_ERROR, cause=cause)
    return (
        task_input.get("execution_arn") == execution_arn if isinstance(task_input, dict) else False
    )
