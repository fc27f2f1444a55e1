"""Killing a local instance's process tree: killed means gone, not merely signalled."""

from __future__ import annotations

import subprocess
import sys

from local_aws import process_tree

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def test_a_killed_tree_is_gone_when_wait_gone_returns() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, time; subprocess.Popen({SLEEPER!r}); time.sleep(600)",
        ],
        start_new_session=True,
    )
    try:
        # Wait (on the event, not a time) until the grandchild exists.
        while not process_tree.descendants(parent.pid):
            assert parent.poll() is None
        killed = process_tree.kill_tree(parent.pid)
        assert process_tree.wait_gone(killed, 30) == set()
        parent.wait(timeout=30)
        assert all(not process_tree.is_alive(pid) for pid in killed)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_wait_gone_returns_what_still_runs() -> None:
    sleeper = subprocess.Popen(SLEEPER)
    try:
        assert process_tree.wait_gone([sleeper.pid], 0.1) == {sleeper.pid}
    finally:
        sleeper.kill()
        sleeper.wait()
