"""The shutdown command: run once, never raising."""

from __future__ import annotations

import sys
from pathlib import Path

from instance_agent.shutdown import Shutdown


def test_the_command_runs_once_however_often_it_is_called(tmp_path: Path) -> None:
    marker = tmp_path / "calls"
    shutdown = Shutdown([sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x')"])
    shutdown("first")
    shutdown("second")
    assert marker.read_text() == "x"


def test_a_missing_shutdown_program_is_logged_not_raised(tmp_path: Path) -> None:
    shutdown = Shutdown([str(tmp_path / "no-such-shutdown")])
    shutdown("test")
    assert shutdown.done


def test_a_failing_shutdown_command_is_logged_not_raised() -> None:
    shutdown = Shutdown([sys.executable, "-c", "raise SystemExit(1)"])
    shutdown("test")
    assert shutdown.done
