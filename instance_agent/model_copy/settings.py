"""How to copy: every copy setting, defined once: its default, its bounds, its refusal message.

The engine takes the settings in its own units (bytes, streams, seconds) as :class:`CopySettings`.
The agent's configuration file (``copy.*`` in ``instance_agent.config``) gives sizes in MiB and
KiB and converts units only: its defaults are these, and it checks its values with
:func:`refusal`, so both refuse the same values with the same message, each in its own units.
Standard library only: the configuration imports it at boot.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

KiB = 1024
MiB = 1024 * KiB
# Bigger parts mean fewer requests and less per-part overhead; on loopback 64 MiB beat 8-32 MiB.
# Parts are streamed, so their size no longer costs memory.
DEFAULT_PART_SIZE = 64 * MiB
MIN_PART_SIZE = 64 * KiB
MAX_PART_SIZE = 1024 * MiB
# Bytes received, checksummed and written at a time: small enough to still be in the CPU cache
# when checksummed and written, big enough that the per-slice Python is negligible.
DEFAULT_SLICE_SIZE = 1 * MiB
MIN_SLICE_SIZE = 64 * KiB
MAX_SLICE_SIZE = 64 * MiB
# Streams chosen from the CPU count when max_concurrency is None (see plan.plan_copy).
MIN_CONCURRENCY = 2
MAX_CONCURRENCY = 64
MAX_CONCURRENCY_SETTING = 256
TRANSPORTS = ("auto", "http", "boto3")


class Bounds:
    """What one setting accepts, in the engine's unit (bytes, streams, seconds).

    A plain class, not a dataclass: this module is imported at boot, and every dataclass costs
    its generated methods' compilation at import.
    """

    __slots__ = ("above_low", "high", "integer", "low", "none_means", "unit")

    def __init__(
        self,
        low: float,
        high: float | None = None,
        *,
        unit: str = "",
        integer: bool = True,
        above_low: bool = False,
        none_means: str | None = None,
    ) -> None:
        self.low = low
        self.high = high
        self.unit = unit  # the engine's unit as messages name it: "bytes", "seconds"
        self.integer = integer
        self.above_low = above_low  # strictly more than ``low``
        self.none_means = none_means  # what None chooses; None: None is refused

    def accepts(self, value: object, scale: int) -> bool:
        number = (int,) if self.integer else (int, float)
        if not isinstance(value, number) or isinstance(value, bool):
            return False
        engine_value = value * scale
        low_ok = engine_value > self.low if self.above_low else engine_value >= self.low
        return low_ok and (self.high is None or engine_value <= self.high)

    def describe(self, scale: int, unit: str | None) -> str:
        unit = self.unit if unit is None else unit
        if self.high is not None:
            low, high = int(-(-self.low // scale)), int(self.high // scale)
            return f"{low} to {high}" + (f" {unit}" if unit else "")
        kind = "an integer" if self.integer else f"a number of {unit}"
        return f"{kind} {'>' if self.above_low else '>='} {self.low:g}"


_SECONDS = Bounds(0, unit="seconds", integer=False, above_low=True)
BOUNDS = {
    "part_size": Bounds(
        MIN_PART_SIZE, MAX_PART_SIZE, unit="bytes", none_means="choose from the model size"
    ),
    "max_concurrency": Bounds(1, MAX_CONCURRENCY_SETTING, none_means="choose from the CPU count"),
    "slice_size": Bounds(MIN_SLICE_SIZE, MAX_SLICE_SIZE, unit="bytes"),
    "part_retries": Bounds(0),
    "retry_base_seconds": _SECONDS,
    "retry_max_seconds": _SECONDS,
    "progress_interval_seconds": _SECONDS,
}


def accepted(name: str, *, scale: int = 1, unit: str | None = None) -> str:
    """What setting ``name`` accepts, in units of ``scale`` engine units named ``unit``
    (e.g. ``"1 to 1024 MiB"``); the transports for ``transport``."""
    if name == "transport":
        return f"one of {', '.join(TRANSPORTS)}"
    return BOUNDS[name].describe(scale, unit)


def refusal(
    name: str,
    value: object,
    *,
    key: str | None = None,
    scale: int = 1,
    unit: str | None = None,
    none: str = "None",
) -> str | None:
    """Why ``value`` is refused for setting ``name``, or None when it is accepted.

    ``value`` is in units of ``scale`` engine units, named ``unit`` (the configuration's
    ``part_size_mb`` is ``scale=MiB, unit="MiB"``); the message names ``key`` (default: ``name``)
    and calls None ``none`` (the configuration's JSON says ``null``).
    """
    if name == "transport":
        ok = value in TRANSPORTS
        alternative = ""
    else:
        bounds = BOUNDS[name]
        ok = (value is None and bounds.none_means is not None) or bounds.accepts(value, scale)
        alternative = f", or {none} to {bounds.none_means}" if bounds.none_means else ""
    if ok:
        return None
    return f"{key or name} is {value!r}: give {accepted(name, scale=scale, unit=unit)}{alternative}"


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
    progress_interval_seconds: float = 5.0

    def __post_init__(self) -> None:
        for spec in fields(self):
            message = refusal(spec.name, getattr(self, spec.name))
            if message:
                raise ValueError(message)
