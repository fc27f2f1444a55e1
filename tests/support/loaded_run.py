"""Run a command with every core kept busy by spinning processes: the suite must stay green on a
loaded machine (it waits for events, never for fixed times).

    python -m tests.support.loaded_run [--spinners N] [--log FILE] -- make test

Each spinner is a `sh -c 'while :; do :; done'` in its own process group, started before the
command and killed after it, whatever its outcome. The exit status is the command's; the last line
printed (and appended to --log) records it with the wall time and the load averages seen.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path


def _spin(count: int) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(["sh", "-c", "while :; do :; done"], start_new_session=True)
        for _ in range(count)
    ]


def _stop(spinners: Sequence[subprocess.Popen[bytes]]) -> None:
    for spinner in spinners:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(spinner.pid, signal.SIGKILL)
        spinner.wait()


def _run(command: Sequence[str]) -> int:
    return subprocess.call(list(command))


class _LoadSampler:
    """The 1-minute load average every few seconds, so the record shows the machine was loaded."""

    def __init__(self, every: float = 5.0) -> None:
        self.samples: list[float] = []
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.samples.append(os.getloadavg()[0])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--spinners", type=int, default=os.cpu_count() or 2, help="busy processes (default: cores)"
    )
    parser.add_argument("--log", type=Path, help="append the result line to this file")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --, e.g. -- make test")
    if args.spinners < 1:
        parser.error("--spinners must be at least 1")

    started = time.monotonic()
    spinners = _spin(args.spinners)
    try:
        with _LoadSampler() as load:
            returncode = _run(command)
    finally:
        _stop(spinners)
    seconds = time.monotonic() - started
    peak = max(load.samples, default=os.getloadavg()[0])
    mean = sum(load.samples) / len(load.samples) if load.samples else peak
    line = (
        f"loaded-run rc={returncode} seconds={seconds:.0f} spinners={args.spinners} "
        f"cores={os.cpu_count()} load1_mean={mean:.1f} load1_peak={peak:.1f} "
        f"command={' '.join(command)!r} at={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
    )
    print(line, flush=True)
    if args.log:
        with args.log.open("a", encoding="utf-8") as log:
            log.write(line + "\n")
    return returncode


if __name__ == "__main__":
    sys.exit(main())
