"""Warming the root volume: read listed files once at boot, while the model copies.

An EBS volume restored from a snapshot (every root volume: the AMI is a snapshot) fetches each
block from S3 on its first read, at a few MB/s. The model's imports (PyTorch, CUDA libraries)
would pay that on the model's clock; reading them here, in parallel and while the agent waits
for its task and copies the model, pays it before. Reading is all it takes: the blocks stay
fetched, and the page cache keeps what fits.

Warming is an optimisation, never a reason to fail a run: a missing or unreadable path is
logged and skipped.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger("instance_agent.warm")

_BLOCK = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class WarmReport:
    files: int
    bytes: int
    seconds: float
    skipped: int
    cancelled: bool

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


def files_under(paths: Sequence[str]) -> Iterator[Path]:
    """Every regular file of ``paths`` (directories recursively; symlinks not followed)."""
    for raw in paths:
        path = Path(raw)
        if path.is_symlink():
            continue
        if path.is_file():
            yield path
        elif path.is_dir():
            for directory, _dirs, names in os.walk(path):
                for name in names:
                    child = Path(directory) / name
                    if not child.is_symlink() and child.is_file():
                        yield child
        else:
            log.warning("warm: %s does not exist; skipped", path)


def _read(path: Path, cancel: threading.Event) -> int:
    """Read the whole file into one reused buffer; the bytes read."""
    buffer = bytearray(_BLOCK)
    total = 0
    try:
        with path.open("rb", buffering=0) as stream:
            while not cancel.is_set():
                count = stream.readinto(buffer)
                if not count:
                    break
                total += count
    except OSError as exc:
        log.warning("warm: cannot read %s: %s", path, exc)
        return -1
    return total


def warm_paths(paths: Sequence[str], max_concurrency: int, cancel: threading.Event) -> WarmReport:
    """Read every file of ``paths`` with ``max_concurrency`` readers; stops early on ``cancel``."""
    started = time.monotonic()
    files = done_bytes = skipped = 0
    with ThreadPoolExecutor(max_concurrency, thread_name_prefix="warm") as pool:
        for count in pool.map(lambda p: _read(p, cancel), files_under(paths)):
            if count < 0:
                skipped += 1
            else:
                files += 1
                done_bytes += count
    report = WarmReport(
        files, done_bytes, round(time.monotonic() - started, 3), skipped, cancel.is_set()
    )
    log.info(
        "warm %s: %d file(s), %d bytes in %.1f s (%.1f MB/s), %d skipped",
        "cancelled" if report.cancelled else "done",
        report.files,
        report.bytes,
        report.seconds,
        report.mb_per_s,
        report.skipped,
    )
    return report
