"""Cancelling a run: StopExecution with a cause naming the operator, then waiting until the
run's instances are terminated.

Stopping an execution skips the workflow's own StopInstance; the nets outside it (the
EventBridge rule on the execution's end, docs/design.md "Safety nets") terminate the instance.
This module only watches EC2 for the instances tagged with the execution, so a cancel reports
what really happened to them.
"""

from __future__ import annotations

import dataclasses
import getpass
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from run_contract.tags import EXECUTION_TAG

GONE = frozenset({"terminated"})


def operator(sts: Any) -> str:
    """Who is cancelling: the local user and, when STS answers, the AWS identity."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown user"
    try:
        identity = str(sts.get_caller_identity()["Arn"])
    except (BotoCoreError, ClientError):
        return user
    return f"{user} ({identity})"


CANCELLED_ERROR = "CancelledByOperator"


def stop_execution(sfn: Any, execution_arn: str, who: str) -> str:
    """StopExecution with an error and a cause the history and the run's alarms show; returns
    the cause."""
    cause = f"cancelled by {who} with `gpurun cancel`"
    sfn.stop_execution(executionArn=execution_arn, error=CANCELLED_ERROR, cause=cause)
    return cause


def run_instances(ec2: Any, execution_arn: str) -> dict[str, str]:
    """{instance id: state} of every instance tagged with the execution."""
    found: dict[str, str] = {}
    for page in ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": f"tag:{EXECUTION_TAG}", "Values": [execution_arn]}]
    ):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                found[str(instance["InstanceId"])] = str(instance["State"]["Name"])
    return found


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The instances of a cancelled run when the wait ended."""

    instances: dict[str, str]

    @property
    def all_terminated(self) -> bool:
        return all(state in GONE for state in self.instances.values())

    @property
    def left(self) -> dict[str, str]:
        return {i: s for i, s in self.instances.items() if s not in GONE}


def wait_for_termination(
    ec2: Any,
    execution_arn: str,
    *,
    timeout_seconds: float,
    poll_seconds: float = 2.0,
    on_change: Callable[[dict[str, str]], None] = lambda _: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Watch the execution's instances until every one is terminated or the time is up."""
    deadline = clock() + timeout_seconds
    last: dict[str, str] | None = None
    while True:
        instances = run_instances(ec2, execution_arn)
        if instances != last:
            on_change(instances)
            last = instances
        outcome = Outcome(instances)
        if outcome.all_terminated or clock() >= deadline:
            return outcome
        sleep(poll_seconds)
