"""The serial console of a VM: every line with the moment it arrived, and the boot's milestones.

The guest's journal is forwarded to the serial console (the image's journald setting), so one
stream carries the kernel, systemd, cloud-init, the bootstrap and the agent's own log. Each line
is stamped on arrival (seconds since QEMU started); a milestone is the first line matching its
pattern.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

# (milestone, pattern): in the order a good boot reaches them.
MILESTONES: tuple[tuple[str, str], ...] = (
    ("kernel", r"Linux version \d"),
    ("cloud_init_local", r"running 'init-local'"),
    ("image_layer_ready", r"vm-image: image layer ready"),
    ("cloud_init_network", r"running 'init' at"),
    ("deadline_armed", r"hard deadline armed"),
    ("cloud_init_config", r"running 'modules:config'"),
    ("cloud_init_final", r"running 'modules:final'"),
    ("artifact_download_failed", r"could not download s3://"),
    ("bootstrap_failed", r"instance-agent bootstrap failed"),
    ("agent_service_started", r"instance-agent-bootstrap: instance-agent\.service started"),
    ("agent_start", r"instance-agent\[\d+\]: .*instance_agent"),
    ("instance_store_found", r"instance-store disks: "),
    ("raid_created", r"running: mdadm --create"),
    ("mkfs", r"running: mkfs\.xfs"),
    ("mounted", r"running: mount |already mounted|reusing its mount"),
    ("copy_started", r"model copy: s3://"),
    ("copy_done", r"model copy done"),
    ("task_received", r"task received after"),
    ("run_succeeded", r"run succeeded"),
    ("run_failed", r"run failed"),
    ("results_uploaded", r"results: \d+ file\(s\)"),
    ("agent_shutdown", r"shutting down the instance"),
    ("agent_killed", r"instance-agent\.service: Main process exited, code=killed"),
    ("exec_stop_post", r"[Ss]hutdown scheduled|instance-agent stopped \("),
    ("deadline_fired", r"hard deadline of \d+ minutes? reached"),
    ("powering_down", r"System is powering down|Reached target .*[Pp]ower"),
    ("power_down", r"reboot: Power down"),
)
_COMPILED = tuple((name, re.compile(pattern)) for name, pattern in MILESTONES)


@dataclasses.dataclass(frozen=True)
class ConsoleLine:
    at: float
    """Seconds since QEMU started."""
    text: str


def first_milestones(lines: list[ConsoleLine]) -> dict[str, ConsoleLine]:
    """Each milestone's first line."""
    found: dict[str, ConsoleLine] = {}
    for line in lines:
        for name, pattern in _COMPILED:
            if name not in found and pattern.search(line.text):
                found[name] = line
    return found


class ConsoleReader:
    """Reads QEMU's serial output (its stdout) line by line into a log file and memory."""

    def __init__(
        self,
        stream: IO[bytes],
        log_path: Path,
        *,
        clock: Callable[[], float],
        on_line: Callable[[ConsoleLine], None] = lambda _line: None,
    ) -> None:
        self.lines: list[ConsoleLine] = []
        self._stream = stream
        self._log_path = log_path
        self._clock = clock
        self._on_line = on_line
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="vm-console", daemon=True)

    def start(self) -> ConsoleReader:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def snapshot(self) -> list[ConsoleLine]:
        with self._lock:
            return list(self.lines)

    def _read(self) -> None:
        with self._log_path.open("ab") as log:
            for raw in iter(self._stream.readline, b""):
                log.write(raw)
                log.flush()
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                line = ConsoleLine(round(self._clock(), 2), text)
                with self._lock:
                    self.lines.append(line)
                self._on_line(line)
        self._stream.close()
