"""The command line's own errors: each message says what to do next."""

from __future__ import annotations


class GpurunError(Exception):
    """A problem the user can fix (a missing setting, a bad argument, a missing resource)."""


# Exit codes, documented in docs/operations.md.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMED_OUT = 3
EXIT_ABORTED = 4
EXIT_STILL_RUNNING = 5
# Ctrl-C, as a shell reports SIGINT (128 + 2); the run itself goes on.
EXIT_INTERRUPTED = 130

EXIT_BY_STATUS = {
    "SUCCEEDED": EXIT_OK,
    "FAILED": EXIT_FAILED,
    "TIMED_OUT": EXIT_TIMED_OUT,
    "ABORTED": EXIT_ABORTED,
    "RUNNING": EXIT_STILL_RUNNING,
}
