"""Byte sizes on the command line: ``2GiB``, ``512MiB``, ``1.5GB`` or a plain byte count."""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def parse_size(text: str, option: str) -> int:
    """The number of bytes ``text`` names; errors name ``option`` and show accepted forms."""
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"{option}: {text!r} is not a size; use a byte count or a number with one of the "
            "units KiB, MiB, GiB, TiB, kB, MB, GB (e.g. 2GiB, 512MiB)"
        )
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < 1:
        raise ValueError(f"{option}: {text!r} is less than one byte; give a positive size")
    return size


def format_size(size: int) -> str:
    """A short human form: whole binary units when exact, else MiB with one decimal."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size / 1024**2:.1f} MiB"
