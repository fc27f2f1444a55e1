"""The model's output, line by line into the log, from a pipe someone else may hold open.

A child the model started keeps a copy of the pipe's write end: the pipe reaches end-of-file only
when the last holder closes it, which a process that escaped the model's process group may never
do. So the reader waits on the pipe and on a wake-up pipe of its own: ``stop()`` makes it read
what is already in the pipe, log it, and end, whoever still holds the write end.

Lines are cut as Python's text mode cuts them (``\\n``, ``\\r\\n`` and ``\\r``, so a progress bar's
updates are lines too), decoded as UTF-8 with undecodable bytes replaced.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import logging
import os
import selectors
import threading
from collections.abc import Callable

_CHUNK = 65536
# A line longer than this (an endless progress bar without a newline) is logged in pieces.
_MAX_LINE_CHARS = 65536
# What stop() still reads from the pipe: all of it when the writers are gone, a bounded amount
# from a writer that is still going.
_DRAIN_LIMIT_BYTES = 4 * 1024 * 1024


class OutputLines:
    """Logs each line read from ``fd`` on ``out``, on a thread, until end-of-file or ``stop()``."""

    def __init__(
        self, fd: int, out: logging.Logger, on_first_line: Callable[[], None] | None = None
    ) -> None:
        self._fd = fd
        self._out = out
        # Called once, on the reader's thread, when the first line is logged: the moment the
        # model shows it is up (the last phase of the cold start).
        self._on_first_line = on_first_line
        self._wake_read, self._wake_write = os.pipe()
        self._decoder = io.IncrementalNewlineDecoder(
            codecs.getincrementaldecoder("utf-8")(errors="replace"), translate=True
        )
        self._partial = ""
        self._thread = threading.Thread(target=self._run, name="model-output", daemon=True)

    def start(self) -> None:
        os.set_blocking(self._fd, False)
        self._thread.start()

    def stop(self) -> None:
        """Log what the pipe holds now, then end the reader; returns when it has ended."""
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")
        self._thread.join()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _run(self) -> None:
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._fd, selectors.EVENT_READ)
                selector.register(self._wake_read, selectors.EVENT_READ)
                while True:
                    ready = {key.fd for key, _ in selector.select()}
                    if self._fd in ready and not self._read_available(_CHUNK):
                        break  # end-of-file: every writer is gone
                    if self._wake_read in ready:
                        self._read_available(_DRAIN_LIMIT_BYTES)
                        break
        except OSError as exc:
            self._out.warning("reading the model's output failed: %s", exc)
        finally:
            self._emit(self._decoder.decode(b"", final=True), final=True)

    def _read_available(self, limit: int) -> bool:
        """Log up to ``limit`` bytes that can be read without waiting; False at end-of-file."""
        read = 0
        while read < limit:
            try:
                chunk = os.read(self._fd, min(_CHUNK, limit - read))
            except BlockingIOError:
                return True
            if not chunk:
                return False
            read += len(chunk)
            self._emit(self._decoder.decode(chunk))
        return True

    def _emit(self, text: str, *, final: bool = False) -> None:
        *lines, self._partial = (self._partial + text).split("\n")
        while len(self._partial) > _MAX_LINE_CHARS:
            lines.append(self._partial[:_MAX_LINE_CHARS])
            self._partial = self._partial[_MAX_LINE_CHARS:]
        if final and self._partial:
            lines.append(self._partial)
            self._partial = ""
        if lines and self._on_first_line is not None:
            first, self._on_first_line = self._on_first_line, None
            first()
        for line in lines:
            self._out.info("%s", line)
