"""The one place where moto's gaps are patched, so the workflow runs locally as on AWS.

Pinned to moto 5.2.5 (``version``): every patch was written against that version's source and
``apply_moto_workarounds()`` refuses to run on any other version. One module per gap:

- ``activities``: activity tasks, GetActivityTask, SendTask*, timeouts counted from the take;
- ``fail_states``: a Fail state re-raising a ``States.*`` error name;
- ``executions``: generated execution names; the error and stop date of ended executions;
- ``lambda_runtime``: Python functions run from their deployed code, one process per invocation,
  their output shipped to CloudWatch Logs;
- ``patches``: applies them all; ``server``: moto's server in this process, patched.

Usage, in-process::

    apply_moto_workarounds(activity_poll_seconds=1)
    with mock_aws(config=MOTO_CONFIG): ...

or as a server other processes talk to: ``start_moto_server()``.
"""

from local_aws.moto_workarounds.activities import AWS_ACTIVITY_POLL_SECONDS, TaskTimedOutError
from local_aws.moto_workarounds.lambda_runtime import FakeLambdaContext
from local_aws.moto_workarounds.patches import apply_moto_workarounds, moto_workarounds_applied
from local_aws.moto_workarounds.server import MOTO_CONFIG, LocalMotoServer, start_moto_server
from local_aws.moto_workarounds.version import (
    PINNED_MOTO_VERSION,
    MotoVersionError,
    check_moto_version,
)

__all__ = [
    "AWS_ACTIVITY_POLL_SECONDS",
    "MOTO_CONFIG",
    "PINNED_MOTO_VERSION",
    "FakeLambdaContext",
    "LocalMotoServer",
    "MotoVersionError",
    "TaskTimedOutError",
    "apply_moto_workarounds",
    "check_moto_version",
    "moto_workarounds_applied",
    "start_moto_server",
]
