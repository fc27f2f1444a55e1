"""Turning runs into the summary: medians, throughput, ratios to the agent, the issue's targets,
the printed table and the JSON document.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Targets from issue 5, checked when the agent and the clients they name were measured.
AGENT_OVER_S5CMD = 1.3
AGENT_OVER_SLOWER_CEILING = 1.25


@dataclass(frozen=True)
class Run:
    """One timed run of one client."""

    round: int
    client: str
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_kib: int
    inner_s: float | None = None

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


@dataclass(frozen=True)
class Summary:
    """One client's runs reduced to the figures of the table."""

    client: str
    runs: int
    median_s: float
    min_s: float
    max_s: float
    mb_per_s: float
    cpu_s: float
    user_s: float
    sys_s: float
    max_rss_mib: float
    inner_median_s: float | None
    ratio: float | None  # median / baseline median: 2.0 means twice as long as the baseline

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarize(
    runs: Sequence[Run], *, size: int, clients: Sequence[str], baseline: str | None
) -> list[Summary]:
    """One summary per client, in ``clients`` order; ratios to ``baseline`` when it ran."""
    by_client: dict[str, list[Run]] = {name: [] for name in clients}
    for run in runs:
        by_client[run.client].append(run)
    medians = {
        name: statistics.median(r.wall_s for r in mine) for name, mine in by_client.items() if mine
    }
    base = medians.get(baseline) if baseline else None
    summaries = []
    for name, mine in by_client.items():
        if not mine:
            continue
        median = medians[name]
        inner = [r.inner_s for r in mine if r.inner_s is not None]
        summaries.append(
            Summary(
                client=name,
                runs=len(mine),
                median_s=median,
                min_s=min(r.wall_s for r in mine),
                max_s=max(r.wall_s for r in mine),
                mb_per_s=size / 1e6 / median,
                cpu_s=statistics.median(r.cpu_s for r in mine),
                user_s=statistics.median(r.user_s for r in mine),
                sys_s=statistics.median(r.sys_s for r in mine),
                max_rss_mib=max(r.max_rss_kib for r in mine) / 1024,
                inner_median_s=statistics.median(inner) if inner else None,
                ratio=median / base if base else None,
            )
        )
    return summaries


def check_targets(
    summaries: Sequence[Summary],
    *,
    agent: str,
    copy_clients: Sequence[str],
    ceilings: Sequence[str],
) -> list[dict[str, Any]]:
    """The issue's targets that this run can judge (each needs the clients it names)."""
    medians = {s.client: s.median_s for s in summaries}
    if agent not in medians:
        return []
    mine = medians[agent]
    targets: list[dict[str, Any]] = []
    if "s5cmd" in medians:
        speedup = medians["s5cmd"] / mine
        targets.append(
            {
                "target": f"agent at least {AGENT_OVER_S5CMD}x faster than s5cmd defaults",
                "measured": f"{speedup:.2f}x",
                "met": speedup >= AGENT_OVER_S5CMD,
            }
        )
    others = {c: medians[c] for c in copy_clients if c != agent and c in medians}
    if others:
        fastest = min(others, key=others.__getitem__)
        targets.append(
            {
                "target": "agent faster than every other client",
                "measured": f"agent {mine:.3f} s, fastest other {fastest} {others[fastest]:.3f} s",
                "met": mine < others[fastest],
            }
        )
    measured_ceilings = {c: medians[c] for c in ceilings if c in medians}
    if len(measured_ceilings) == len(ceilings) and ceilings:
        slower = max(measured_ceilings, key=measured_ceilings.__getitem__)
        ratio = mine / measured_ceilings[slower]
        targets.append(
            {
                "target": f"agent within {AGENT_OVER_SLOWER_CEILING}x the slower ceiling",
                "measured": f"{ratio:.2f}x {slower} ({measured_ceilings[slower]:.3f} s)",
                "met": ratio <= AGENT_OVER_SLOWER_CEILING,
            }
        )
    return targets


def render_table(summaries: Sequence[Summary], baseline: str | None) -> str:
    """The summary as aligned text, one line per client."""
    ratio_header = f"x {baseline}" if baseline else "ratio"
    headers = (
        "client",
        "median s",
        "min s",
        "max s",
        "MB/s",
        "CPU s",
        "user s",
        "sys s",
        "peak MiB",
        "in-proc s",
        ratio_header,
    )
    rows = [headers]
    for s in summaries:
        rows.append(
            (
                s.client,
                f"{s.median_s:.3f}",
                f"{s.min_s:.3f}",
                f"{s.max_s:.3f}",
                f"{s.mb_per_s:.0f}",
                f"{s.cpu_s:.2f}",
                f"{s.user_s:.2f}",
                f"{s.sys_s:.2f}",
                f"{s.max_rss_mib:.0f}",
                f"{s.inner_median_s:.3f}" if s.inner_median_s is not None else "-",
                f"{s.ratio:.2f}" if s.ratio is not None else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(summaries: Sequence[Summary], baseline: str | None) -> str:
    """The same table in Markdown, for BENCHMARKING.md."""
    header = (
        "| client | median s | min s | max s | MB/s | CPU s | peak MiB | "
        f"x {baseline or 'ratio'} |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    lines = [header]
    for s in summaries:
        ratio = f"{s.ratio:.2f}" if s.ratio is not None else "-"
        lines.append(
            f"| {s.client} | {s.median_s:.3f} | {s.min_s:.3f} | {s.max_s:.3f} | "
            f"{s.mb_per_s:.0f} | {s.cpu_s:.2f} | {s.max_rss_mib:.0f} | {ratio} |"
        )
    return "\n".join(lines)


def document(
    *,
    meta: Mapping[str, Any],
    summaries: Sequence[Summary],
    runs: Sequence[Run],
    targets: Sequence[Mapping[str, Any]],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON written to ``.bench/latest.json``."""
    return {
        "format_version": 1,
        **meta,
        "summary": [s.as_dict() for s in summaries],
        "targets": list(targets),
        "runs": [{**r.__dict__, "cpu_s": r.cpu_s} for r in runs],
        **extra,
    }
