"""Bytes and rate of a long transfer (publish-model's checksum and upload).

On a terminal, one bar redrawn in place; otherwise a plain line every few seconds; with
``--json``, one JSON object a line. Every stage ends with a line of its own at 100 %, so a log
shows that it finished and how fast. Calls may come from several threads (the upload's).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 30
TERMINAL_REDRAW_SECONDS = 0.1
PLAIN_LINE_SECONDS = 5.0


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


class TransferProgress:
    """``progress(stage, n, total)``: ``n`` more bytes of ``total`` done in ``stage``."""

    def __init__(
        self,
        out: TextIO,
        *,
        json_lines: bool,
        terminal: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out
        self._json = json_lines
        self._terminal = out.isatty() if terminal is None else terminal
        self._clock = clock
        self._lock = threading.Lock()
        self._stage: str | None = None
        self._done = 0
        self._started = 0.0
        self._shown_at = 0.0

    def __call__(self, stage: str, n: int, total: int) -> None:
        with self._lock:
            now = self._clock()
            if stage != self._stage:
                self._stage, self._done, self._started, self._shown_at = stage, 0, now, now
            self._done += n
            finished = self._done >= total
            every = TERMINAL_REDRAW_SECONDS if self._terminal and not self._json else None
            if finished or now - self._shown_at >= (every or PLAIN_LINE_SECONDS):
                self._shown_at = now
                self._show(stage, total, now, finished)

    def _show(self, stage: str, total: int, now: float, finished: bool) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = self._done / elapsed
        percent = 100.0 * self._done / total if total else 100.0
        if self._json:
            event = {
                "event": "progress",
                "stage": stage,
                "bytes": self._done,
                "total_bytes": total,
                "bytes_per_second": round(rate),
            }
            self._out.write(json.dumps(event) + "\n")
        elif self._terminal:
            filled = int(BAR_WIDTH * percent / 100)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            self._out.write(
                f"\r{stage:<8} [{bar}] {percent:5.1f}% {human_bytes(self._done)} of "
                f"{human_bytes(total)}, {human_bytes(rate)}/s" + ("\n" if finished else "")
            )
        else:
            self._out.write(
                f"{stage:<8} {human_bytes(self._done)} of {human_bytes(total)} "
                f"({percent:.0f}%), {human_bytes(rate)}/s\n"
            )
        self._out.flush()
