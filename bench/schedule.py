"""The order of the timed runs: round-robin, rotated each round.

Runs alternate between clients (never all of one client, then all of the next), so a change in
the machine's load during the benchmark spreads over every client instead of landing on one.
Each round starts one client further along, so no client always runs first, right after the
untimed verification runs, or always right after the same neighbour.
"""

from __future__ import annotations

from collections.abc import Sequence


def round_robin(clients: Sequence[str], runs: int) -> list[tuple[int, str]]:
    """``(round, client)`` pairs: every client once per round, ``runs`` rounds."""
    if runs < 1:
        raise ValueError(f"--runs is {runs}; give at least 1")
    if not clients:
        raise ValueError("--clients selects no client; name at least one")
    count = len(clients)
    return [
        (round_index, clients[(round_index + position) % count])
        for round_index in range(runs)
        for position in range(count)
    ]
