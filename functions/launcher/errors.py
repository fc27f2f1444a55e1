"""The launcher's errors.

Step Functions sees an exception's class name as the error name (the ASL retries and catches on
it), so these class names are part of the contract in docs/design.md: never rename them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class LauncherError(Exception):
    """Base class of every error the launcher raises on purpose."""


class EventValidationError(LauncherError):
    """The event does not match the contract; nothing was called on AWS."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        self.fields = [field for field, _ in self.problems]
        listed = "; ".join(f"{field}: {message}" for field, message in self.problems)
        super().__init__(
            f"Invalid launcher event ({len(self.problems)} problem(s)); fix the event or the "
            f"state machine that built it: {listed}"
        )


class LauncherConfigurationError(LauncherError):
    """An environment variable Terraform sets on the function is missing or malformed."""


class RunAlreadyInProgress(LauncherError):
    """Another execution of the state machine is running: one run at a time."""

    def __init__(self, execution_arn: str, running: Sequence[str]) -> None:
        self.running = list(running)
        super().__init__(
            f"Execution {execution_arn} was not started because another execution of the same "
            f"state machine is RUNNING: {', '.join(self.running)}. Wait for it to finish or stop "
            "it (aws stepfunctions stop-execution --execution-arn <arn>), then start again."
        )


@dataclass(frozen=True)
class LaunchAttempt:
    """One instance type / subnet pair that RunInstances refused for lack of capacity."""

    instance_type: str
    subnet_id: str
    error_code: str
    message: str


class InsufficientCapacityEverywhere(LauncherError):
    """Every instance type / subnet pair was refused for lack of capacity or quota."""

    def __init__(self, attempts: Sequence[LaunchAttempt]) -> None:
        self.attempts = list(attempts)
        tried = "; ".join(
            f"{a.instance_type} in {a.subnet_id}: {a.error_code}" for a in self.attempts
        )
        super().__init__(
            f"No instance could be launched after {len(self.attempts)} attempt(s) ({tried}). "
            "Retry later, or add instance types or subnets in other availability zones to "
            "run.instance_types / run.subnet_ids; for VcpuLimitExceeded or InstanceLimitExceeded "
            "request a higher On-Demand quota in Service Quotas."
        )


class ForeignInstanceError(LauncherError):
    """The instance is not this run's (no project tag, or another execution's), so the launcher
    leaves it alone."""

    def __init__(
        self, instance_id: str, project: str, found: str | None, *, execution: str | None = None
    ) -> None:
        self.instance_id = instance_id
        if execution is not None:
            shown = f"the tag of another execution ({execution[-80:]!r})"
            owner = "by this execution"
        else:
            shown = "no Project tag" if found is None else f"Project={found[:80]!r}"
            owner = f"by this project's launcher (Project={project!r})"
        super().__init__(
            f"Instance {instance_id} has {shown}: it was not started {owner}, so it was left "
            "alone. Check the instance id passed to the stop action."
        )


class LauncherTransientError(LauncherError):
    """EC2 or Step Functions throttled or failed on its side; the ASL retries this error."""
