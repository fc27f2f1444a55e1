"""Reading the agent's profile (``--profile``): where its threads spent their time.

cProfile's ``tottime`` of a C function (``readinto``, ``pwrite``, the CRC, a lock's ``acquire``)
is the wall time the calling threads spent inside it, waiting included, summed over threads.
That is what tells network wait from checksum cost from disk writes from idle workers.
"""

from __future__ import annotations

import pstats
from pathlib import Path
from typing import Any


def top_functions(path: Path, limit: int = 15) -> list[dict[str, Any]]:
    """The ``limit`` functions with the most ``tottime``, summed over every profiled thread."""
    stats = pstats.Stats(str(path))
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = name if filename == "~" else f"{Path(filename).name}:{line}({name})"
        rows.append({"function": where, "calls": calls, "tottime_s": tottime, "cumtime_s": cumtime})
    rows.sort(key=lambda row: row["tottime_s"], reverse=True)
    return rows[:limit]


def render_profile(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'tottime s':>10}  {'cumtime s':>10}  {'calls':>8}  function"]
    lines += [
        f"{r['tottime_s']:>10.3f}  {r['cumtime_s']:>10.3f}  {r['calls']:>8}  {r['function']}"
        for r in rows
    ]
    return "\n".join(lines)
