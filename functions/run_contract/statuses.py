"""Step Functions execution statuses, as the parts of a run read them."""

from __future__ import annotations

RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
TIMED_OUT = "TIMED_OUT"
ABORTED = "ABORTED"
# Every status an execution ends in; the execution-status rule fires on the failed ones.
TERMINAL_STATUSES = (SUCCEEDED, FAILED, TIMED_OUT, ABORTED)
FAILED_STATUSES = (FAILED, TIMED_OUT, ABORTED)
