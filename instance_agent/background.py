"""A boot-time job on a thread of its own (the image pull, the warm read): started while the model
copies and the agent waits for its task, waited for (or abandoned) later."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

_T = TypeVar("_T")


class BackgroundJob(Generic[_T]):
    """Runs ``work(cancel)`` on a daemon thread; ``wait`` returns its result or raises its error.

    ``seconds`` is the job's own duration (start to end), whether it succeeded or failed.
    """

    def __init__(self, name: str, work: Callable[[threading.Event], _T]) -> None:
        self.name = name
        self.cancel = threading.Event()
        self.result: _T | None = None
        self.error: BaseException | None = None
        self.seconds: float | None = None
        self._work = work
        self._started = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> BackgroundJob[_T]:
        self._started = time.monotonic()
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self.seconds is not None

    def _run(self) -> None:
        try:
            self.result = self._work(self.cancel)
        except BaseException as exc:
            self.error = exc
        finally:
            self.seconds = round(time.monotonic() - self._started, 3)

    def wait(self, abort: threading.Event, on_abort: Callable[[], BaseException]) -> _T | None:
        """Block until the job ends; ``abort`` set first cancels it and raises ``on_abort()``."""
        while self._thread.is_alive():
            if abort.is_set():
                self.stop()
                raise on_abort()
            self._thread.join(0.2)
        if self.error is not None:
            raise self.error
        return self.result

    def wait_at_most(
        self, seconds: float, abort: threading.Event, on_abort: Callable[[], BaseException]
    ) -> bool:
        """Wait up to ``seconds`` for the job (its error is not raised); whether it ended."""
        deadline = time.monotonic() + seconds
        while self._thread.is_alive() and time.monotonic() < deadline:
            if abort.is_set():
                self.stop()
                raise on_abort()
            self._thread.join(min(0.2, max(0.0, deadline - time.monotonic())))
        return not self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self.cancel.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
