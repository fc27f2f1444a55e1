"""Log lines to stdout (journald) in one plain, greppable format, plus a tail for failure causes.

Format: ``2026-11-26T15:18:30Z INFO instance_agent.model: <line>``; the model's own output comes
through the ``instance_agent.model`` logger, so ``grep instance_agent.model`` shows just that.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "instance-agent"


class UTCFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))


class TailHandler(logging.Handler):
    """Keeps the last ``lines`` formatted records for SendTaskFailure's cause."""

    def __init__(self, lines: int) -> None:
        super().__init__()
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._tail_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a bad format string must not break the run
            text = str(record.msg)
        with self._tail_lock:
            self._lines.append(text)

    def text(self) -> str:
        with self._tail_lock:
            return "\n".join(self._lines)


def setup_logging(tail_lines: int = 200) -> TailHandler:
    """stdout handler (line-buffered for journald) and the tail; returns the tail."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    formatter = UTCFormatter(FORMAT)
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    stdout = logging.StreamHandler(sys.stdout)
    tail = TailHandler(tail_lines)
    handlers: tuple[logging.Handler, ...] = (stdout, tail)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.set_name(_HANDLER_NAME)  # so a second set-up replaces, not duplicates
        root.addHandler(handler)
    # botocore logs every retry at DEBUG/INFO; keep journald for our own lines.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    return tail
