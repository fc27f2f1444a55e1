"""Applying every patch of the package, once, on the pinned moto version only."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

import moto

from local_aws.moto_workarounds import activities, executions, fail_states, lambda_runtime
from local_aws.moto_workarounds.activities import AWS_ACTIVITY_POLL_SECONDS
from local_aws.moto_workarounds.version import check_moto_version

ALL_PATCHES: Final[list[tuple[type, str, Callable[..., Any]]]] = [
    *activities.PATCHES,
    *fail_states.PATCHES,
    *executions.PATCHES,
    *lambda_runtime.PATCHES,
]

_apply_lock = threading.Lock()


def apply_moto_workarounds(*, activity_poll_seconds: float = AWS_ACTIVITY_POLL_SECONDS) -> None:
    """Patch moto (idempotent); `activity_poll_seconds` is GetActivityTask's long-poll time."""
    check_moto_version(moto.__version__)
    if not 0 < activity_poll_seconds <= AWS_ACTIVITY_POLL_SECONDS:
        raise ValueError(
            f"activity_poll_seconds must be > 0 and <= {AWS_ACTIVITY_POLL_SECONDS} "
            f"(AWS's long-poll limit), got {activity_poll_seconds}"
        )
    with _apply_lock:
        activities.set_poll_seconds(activity_poll_seconds)
        for owner, name, replacement in ALL_PATCHES:
            setattr(owner, name, replacement)


def moto_workarounds_applied() -> bool:
    return all(getattr(owner, name) is patch for owner, name, patch in ALL_PATCHES)
