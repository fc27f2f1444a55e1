"""How to copy: the settings of the copy engine, with their defaults and bounds.

Standard library only, so that it costs nothing to import before the copy starts.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024
# Bigger parts mean fewer requests and less per-part overhead; on loopback 64 MiB beat 8-32 MiB.
# Parts are streamed, so their size no longer costs memory.
DEFAULT_PART_SIZE = 64 * MiB
# Bytes received, checksummed and written at a time: small enough to still be in the CPU cache
# when checksummed and written, big enough that the per-slice Python is negligible.
DEFAULT_SLICE_SIZE = 1 * MiB
MIN_SLICE_SIZE = 64 * 1024
MAX_SLICE_SIZE = 64 * MiB
MIN_CONCURRENCY = 2
MAX_CONCURRENCY = 64
MAX_CONCURRENCY_SETTING = 256
TRANSPORTS = ("auto", "http", "boto3")


@dataclass(frozen=True)
class CopySettings:
    """How to copy. ``None`` means chosen from the model's size and ``os.cpu_count()``."""

    part_size: int | None = None
    max_concurrency: int | None = None
    slice_size: int = DEFAULT_SLICE_SIZE
    # "http": GETs on the workers' own connections to URLs botocore presigns; "boto3": GETs
    # through the client; "auto": "http" unless the client cannot be bypassed (see lean_http).
    transport: str = "auto"
    part_retries: int = 5
    retry_base_seconds: float = 0.2
    retry_max_seconds: float = 5.0
    progress_interval_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.part_size is not None and (
            not _is_int(self.part_size) or not MiB // 16 <= self.part_size <= 1024 * MiB
        ):
            raise ValueError(
                f"part_size is {self.part_size!r}: give bytes between {MiB // 16} and "
                f"{1024 * MiB}, or None to choose from the model size"
            )
        if self.max_concurrency is not None and (
            not _is_int(self.max_concurrency)
            or not 1 <= self.max_concurrency <= MAX_CONCURRENCY_SETTING
        ):
            raise ValueError(
                f"max_concurrency is {self.max_concurrency!r}: give 1 to "
                f"{MAX_CONCURRENCY_SETTING}, or None to choose from the CPU count"
            )
        if not _is_int(self.slice_size) or not MIN_SLICE_SIZE <= self.slice_size <= MAX_SLICE_SIZE:
            raise ValueError(
                f"slice_size is {self.slice_size!r}: give bytes between {MIN_SLICE_SIZE} and "
                f"{MAX_SLICE_SIZE}"
            )
        if self.transport not in TRANSPORTS:
            raise ValueError(
                f"transport is {self.transport!r}: give one of {', '.join(TRANSPORTS)}"
            )
        if not _is_int(self.part_retries) or self.part_retries < 0:
            raise ValueError(f"part_retries is {self.part_retries!r}: give an integer >= 0")
        for name in ("retry_base_seconds", "retry_max_seconds", "progress_interval_seconds"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} is {value!r}: give a number of seconds >= 0")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
