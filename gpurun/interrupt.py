"""Ctrl-C while following a run: stop at the loop's next pause, not inside an AWS call.

A KeyboardInterrupt raised at an arbitrary bytecode can land inside botocore or urllib3 between
a lock's acquire and its ``try`` (a connection pool, a credential refresh), and the interpreter
can then hang at exit on that lock. So the first Ctrl-C only asks the follow loop to stop: its
``sleep`` raises KeyboardInterrupt at once, and the call in flight (seconds at most) finishes
first. A second Ctrl-C raises at once, for a call that hangs.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[Callable[[float], None]]:
    """A ``sleep(seconds)`` for a polling loop that raises KeyboardInterrupt once Ctrl-C came."""
    requested = threading.Event()

    def sleep(seconds: float) -> None:
        if requested.wait(seconds):
            raise KeyboardInterrupt

    # Signal handlers can only be set from the main thread; elsewhere Ctrl-C cannot reach us.
    if threading.current_thread() is not threading.main_thread():
        yield sleep
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield sleep
    finally:
        signal.signal(signal.SIGINT, previous)
