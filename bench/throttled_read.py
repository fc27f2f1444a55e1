"""Reading a file the way a volume restored from an EBS snapshot serves its first reads.

Such a volume fetches each block from S3 the first time it is read, at a few MB/s unless a
provisioned initialization rate (100-300 MiB/s) is paid for. Without a VM whose disk QEMU can
throttle, and with no writable blkio cgroup or device-mapper here, a token bucket stands in:
the file is read in snapshot-sized blocks (512 KiB) and each block waits until the configured
rate allows it, so the reader never gets ahead of ``rate * elapsed`` bytes. The file itself
comes from the page cache: the bucket is the only limit, as the snapshot's fetch is on EBS.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

SNAPSHOT_BLOCK_BYTES = 512 * 1024  # EBS snapshots are stored in 512 KiB blocks


@dataclasses.dataclass(frozen=True)
class ReadReport:
    bytes: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


def throttled_read(
    path: Path,
    bytes_per_second: float,
    *,
    block: int = SNAPSHOT_BLOCK_BYTES,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReadReport:
    """Read all of ``path`` no faster than ``bytes_per_second``; how long it took."""
    if bytes_per_second <= 0:
        raise ValueError(f"bytes_per_second must be > 0, got {bytes_per_second}")
    if block <= 0:
        raise ValueError(f"block must be > 0, got {block}")
    buffer = bytearray(block)
    total = 0
    started = clock()
    with path.open("rb", buffering=0) as stream:
        while True:
            # This block may arrive only once the rate has paid for everything before it.
            due = started + total / bytes_per_second
            wait = due - clock()
            if wait > 0:
                sleep(wait)
            count = stream.readinto(buffer)
            if not count:
                break
            total += count
    # The last block is paid for too: the read ends when its bytes could have arrived.
    wait = started + total / bytes_per_second - clock()
    if wait > 0:
        sleep(wait)
    return ReadReport(total, clock() - started)
