"""Killing a local instance: its agent and everything the agent started, like a power-off.

The agent runs the model in a session of its own (so it can time the model out as a group), so
killing the agent's process group would leave the model running. On EC2 a terminated instance
takes every process with it; here the whole tree under the agent is frozen (SIGSTOP, so nothing
can fork or escape while we look), then killed (SIGKILL). Linux's /proc gives the parent links;
elsewhere only the agent's process group is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

_PROC = Path("/proc")


def _parent_of(pid: int) -> int | None:
    try:
        stat = (_PROC / str(pid) / "stat").read_text(encoding="utf-8")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1])


def descendants(root_pid: int) -> set[int]:
    """Every live process below ``root_pid`` (not the root itself)."""
    if not _PROC.is_dir():
        return set()
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            parent = _parent_of(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    stack = [root_pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, waiting to be reaped, counts as gone)."""
    try:
        state = (_PROC / str(pid) / "stat").read_text(encoding="utf-8")
    except OSError:
        if _PROC.is_dir():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state[state.rindex(")") + 2] not in ("Z", "X")


def kill_tree(root_pid: int) -> set[int]:
    """SIGKILL ``root_pid``'s process group and every descendant; returns the pids killed."""
    frozen: set[int] = set()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(root_pid, signal.SIGSTOP)
    frozen.add(root_pid)
    while True:
        new = descendants(root_pid) - frozen
        # Also follow children of already-frozen processes that were reparented mid-walk.
        for pid in list(frozen):
            new |= descendants(pid) - frozen
        if not new:
            break
        for pid in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        frozen |= new
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(root_pid, signal.SIGKILL)
    for pid in frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return frozen


def wait_gone(pids: Iterable[int], timeout_seconds: float) -> set[int]:
    """Wait until none of ``pids`` runs (a SIGKILLed process still has to be scheduled to
    exit, which takes a while on a loaded machine); returns those still running at the end."""
    deadline = time.monotonic() + timeout_seconds
    remaining = {pid for pid in pids if is_alive(pid)}
    while remaining and time.monotonic() < deadline:
        time.sleep(0.02)
        remaining = {pid for pid in remaining if is_alive(pid)}
    return remaining
