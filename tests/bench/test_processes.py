"""Children: measured by wait4 on their own PID, stopped by PID whatever happens."""

import os
import sys
import time
from pathlib import Path

import pytest

from bench.processes import ChildFailedError, ProcessGuard

BUSY = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except OSError:
        return False
    return state != "Z"


def test_measurement_counts_the_childs_own_cpu_seconds(tmp_path: Path) -> None:
    with ProcessGuard() as guard:
        m = guard.run_measured(
            [sys.executable, "-c", BUSY], env=None, timeout=30, log_dir=tmp_path, label="busy"
        )
    assert m.cpu_s >= 0.3
    assert m.wall_s >= m.user_s * 0.5
    assert m.max_rss_kib > 1000


def test_measurement_keeps_the_childs_stdout(tmp_path: Path) -> None:
    with ProcessGuard() as guard:
        m = guard.run_measured(
            [sys.executable, "-c", "print('42')"],
            env=None,
            timeout=30,
            log_dir=tmp_path,
            label="out",
        )
    assert m.stdout == "42\n"


def test_a_failing_child_is_reported_with_its_exit_code_and_stderr(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; sys.exit('disk full')"]
    with (
        ProcessGuard() as guard,
        pytest.raises(ChildFailedError, match=r"(?s)exited with 1.*disk full"),
    ):
        guard.run_measured(argv, env=None, timeout=30, log_dir=tmp_path, label="fails")


def test_a_child_past_its_timeout_is_killed_and_reported(tmp_path: Path) -> None:
    started = time.monotonic()
    with ProcessGuard() as guard, pytest.raises(ChildFailedError, match="still running after"):
        guard.run_measured(["sleep", "30"], env=None, timeout=0.3, log_dir=tmp_path, label="slow")
    assert time.monotonic() - started < 5
    assert guard.live_pids == []


def test_children_left_running_are_stopped_when_the_block_ends() -> None:
    with ProcessGuard() as guard:
        process = guard.start(["sleep", "30"])
        assert _alive(process.pid)
    assert not _alive(process.pid)
    assert guard.live_pids == []


def test_children_are_stopped_when_the_block_ends_with_an_error() -> None:
    started: list[int] = []

    def fail_while_a_child_runs() -> None:
        with ProcessGuard() as guard:
            started.append(guard.start(["sleep", "30"]).pid)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_while_a_child_runs()
    assert not _alive(started[0])


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period() -> None:
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(30)"
    with ProcessGuard() as guard:
        process = guard.start([sys.executable, "-c", code])
        time.sleep(0.3)
        guard.stop(process, grace=0.2)
    assert not _alive(process.pid)


def test_children_run_in_their_own_process_group_out_of_reach_of_ctrl_c() -> None:
    with ProcessGuard() as guard:
        process = guard.start(["sleep", "30"])
        assert os.getpgid(process.pid) == process.pid != os.getpgid(0)
