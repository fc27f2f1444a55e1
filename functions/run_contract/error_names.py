"""The error names Step Functions sees, by who raises them (docs/design.md).

The launcher's are its exception class names; the agent's are its failures' ``error_name``;
the state machine's Retry and Catch match on them. tests/contracts pins all three to this list.
"""

from __future__ import annotations

# The agent's SendTaskFailure errors.
AGENT_ERRORS = (
    "WrongInstance",
    "NoInstanceStore",
    "ModelNotFound",
    "ModelChecksumMismatch",
    "ModelCopyFailed",
    "ImagePullFailed",
    "ModelEntryPointMissing",
    "ModelCommandFailed",
    "ModelRunTimedOut",
    "ResultsUploadFailed",
    "AgentConfigError",
    "AgentError",
)
# The launcher's exception classes, raised on purpose.
LAUNCHER_ERRORS = (
    "EventValidationError",
    "RunAlreadyInProgress",
    "InsufficientCapacityEverywhere",
    "ForeignInstanceError",
    "LauncherTransientError",
    "LauncherConfigurationError",
)
# The launcher's retryable error: the state machine retries it.
LAUNCHER_TRANSIENT_ERROR = "LauncherTransientError"
# What the launcher fails a run with when its instance vanished before the run could end
# (the EC2 state-change rule); a SendTaskFailure or StopExecution error, not an exception.
INSTANCE_LOST_ERROR = "InstanceLost"
# What the agent records in run.json (never sends: the task is gone) when its task ended
# before it could report, e.g. SendTaskSuccess after the heartbeat timed out.
TASK_LOST_ERROR = "TaskLost"
