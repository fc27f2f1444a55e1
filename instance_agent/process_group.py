"""Ending a process group as a whole: SIGTERM, a grace period, then SIGKILL.

The model runs as the leader of a session (and process group) of its own, so everything it
starts without asking for a new session is in the group, even after the model itself exits and
its children are re-parented. Membership is read from /proc: a zombie, whose parent has not
reaped it yet, is already gone (on a machine whose PID 1 never reaps, zombies stay forever and
would otherwise look alive). Where /proc is missing, ``killpg(pgid, 0)`` answers instead.

The caller keeps the group's pid pinned while it ends the group: while the leader is an unreaped
zombie, or any member lives, the kernel cannot hand the number to another process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger("instance_agent.model")

_PROC = Path("/proc")
_POLL_SECONDS = 0.05
# After SIGKILL a process only has to be scheduled to die; one stuck in the kernel (a GPU driver
# call, say) can take longer, and the run must not hang on it.
_AFTER_SIGKILL_SECONDS = 5.0


def live_members(pgid: int) -> list[int]:
    """The pids of the group's processes that still run (zombies excluded)."""
    if not _PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # it ended while we looked
        # Fields after the command name (which may hold spaces and parentheses): state ppid pgrp.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return sorted(members)


def _signal(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _wait_until_empty(pgid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if not live_members(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)


def end_group(pgid: int, grace_seconds: float) -> None:
    """SIGTERM every live member of ``pgid``, SIGKILL what is left ``grace_seconds`` later.

    Returns at once when the group has no live member, and as soon as it has none left.
    """
    if not live_members(pgid):
        return
    _signal(pgid, signal.SIGTERM)
    if _wait_until_empty(pgid, grace_seconds):
        return
    left = live_members(pgid)
    log.warning(
        "process(es) %s ignored SIGTERM for %g s: sending SIGKILL",
        ", ".join(map(str, left)),
        grace_seconds,
    )
    _signal(pgid, signal.SIGKILL)
    if not _wait_until_empty(pgid, _AFTER_SIGKILL_SECONDS):
        log.error(
            "process(es) %s still there %g s after SIGKILL (stuck in the kernel?); going on",
            ", ".join(map(str, live_members(pgid))),
            _AFTER_SIGKILL_SECONDS,
        )
