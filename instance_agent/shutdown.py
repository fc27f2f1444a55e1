"""Ending the instance: the agent's own net, run on every exit path exactly once."""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Sequence

log = logging.getLogger("instance_agent.shutdown")


class Shutdown:
    """Runs the configured shutdown command once; never raises (it is the last thing we do)."""

    def __init__(self, command: Sequence[str], timeout_seconds: float = 60.0) -> None:
        self.command = list(command)
        self.timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        self.done = False

    def __call__(self, reason: str) -> None:
        with self._lock:
            if self.done:
                return
            self.done = True
        log.warning("shutting down the instance (%s): %s", reason, " ".join(self.command))
        for handler in logging.getLogger().handlers:
            handler.flush()
        try:
            completed = subprocess.run(
                self.command, check=False, timeout=self.timeout_seconds, capture_output=True
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            # The workflow's StopInstance and the hard deadline armed at boot remain.
            log.error(  # noqa: TRY400 - the reason fits on one line; no traceback needed
                "shutdown command failed: %s; the other nets will end the instance", exc
            )
            return
        if completed.returncode != 0:
            log.error(
                "shutdown command exited with code %d: %s",
                completed.returncode,
                completed.stderr.decode("utf-8", "replace").strip(),
            )
