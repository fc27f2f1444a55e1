"""Child processes: started in their own session, measured with wait4, stopped by PID.

Every process the benchmark starts goes through one ``ProcessGuard``; leaving its ``with`` block
(normally, on an exception, on Ctrl-C or on SIGTERM) stops each child still alive by its PID
(SIGTERM to its process group, SIGKILL after a grace period). Nothing is stopped by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType

GRACE_SECONDS = 5.0


class ChildFailedError(RuntimeError):
    """A measured child exited non-zero or ran past its timeout."""


@dataclass(frozen=True)
class Measurement:
    """One run of one child: wall time, the child's own CPU time, and its peak memory."""

    wall_s: float
    user_s: float
    sys_s: float
    max_rss_kib: int
    stdout: str

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


class ProcessGuard:
    """Tracks the children it starts and stops every live one, by PID, when the block ends."""

    def __init__(self) -> None:
        self._live: dict[int, subprocess.Popen[bytes]] = {}
        self._previous_sigterm: object = None

    def __enter__(self) -> ProcessGuard:
        # SIGTERM (e.g. from `timeout` or CI) must unwind like Ctrl-C so the children are stopped.
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_all()
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)  # type: ignore[arg-type]

    @property
    def live_pids(self) -> list[int]:
        return sorted(self._live)

    def start(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdout: Path | None = None,
        stderr: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in a new session (its own process group, out of reach of Ctrl-C)."""
        out = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
        err = open(stderr, "wb") if stderr else subprocess.DEVNULL  # noqa: SIM115
        try:
            process = subprocess.Popen(
                list(argv),
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        finally:
            for handle in (out, err):
                if not isinstance(handle, int):
                    handle.close()
        self._live[process.pid] = process
        return process

    def forget(self, process: subprocess.Popen[bytes]) -> None:
        """The child was reaped elsewhere (wait4); stop tracking it."""
        self._live.pop(process.pid, None)

    def stop(self, process: subprocess.Popen[bytes], grace: float = GRACE_SECONDS) -> None:
        """SIGTERM the child's process group (its PID); SIGKILL it if alive after ``grace`` s."""
        if process.returncode is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        # Helpers the child left in its group (e.g. nginx workers) go with it.
        _signal_group(process.pid, signal.SIGKILL)
        self.forget(process)

    def stop_all(self) -> None:
        for process in list(self._live.values()):
            self.stop(process)

    def run_measured(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None,
        timeout: float,
        log_dir: Path,
        label: str,
    ) -> Measurement:
        """Run ``argv`` to completion; its rusage comes from wait4 on its own PID.

        Output goes to files in ``log_dir`` (a pipe could fill up and stall the child). A child
        still running after ``timeout`` seconds is stopped and reported as failed.
        """
        stdout_path = log_dir / f"{label}.stdout"
        stderr_path = log_dir / f"{label}.stderr"
        timed_out = threading.Event()
        started = time.perf_counter()
        process = self.start(argv, env=env, stdout=stdout_path, stderr=stderr_path)

        def expire() -> None:
            timed_out.set()
            _signal_group(process.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            _pid, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        self.stop(process, grace=0)  # reaped already: only stragglers in its group remain
        stdout = stdout_path.read_text(errors="replace")
        if timed_out.is_set():
            raise ChildFailedError(f"{label}: still running after {timeout:.0f} s (see --timeout)")
        if process.returncode != 0:
            tail = stderr_path.read_text(errors="replace").strip()[-2000:]
            raise ChildFailedError(
                f"{label}: exited with {process.returncode}: {' '.join(argv)}\n{tail}"
            )
        return Measurement(
            wall_s=wall,
            user_s=usage.ru_utime,
            sys_s=usage.ru_stime,
            max_rss_kib=usage.ru_maxrss,
            stdout=stdout,
        )


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
