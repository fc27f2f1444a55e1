"""A VM run's timeline: host events and serial-console milestones on one clock.

Times are seconds since the execution started. Host events come from the supervisor (launch,
QEMU start, ACPI power button, QEMU exit, termination); guest milestones are the console's
(``console.MILESTONES``), each placed at its arrival on the host.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from local_aws.supervisor import InstanceEvent
from local_aws.vm.console import ConsoleLine


@dataclasses.dataclass(frozen=True)
class TimelineEntry:
    event: str
    at: float
    """Seconds since the execution started."""
    source: str
    """"host" (the supervisor) or "console" (the guest's serial console)."""
    detail: str = ""


def vm_timeline(
    *,
    execution_started_at: float,
    instance_events: Iterable[InstanceEvent],
    milestones: Mapping[str, ConsoleLine],
) -> list[TimelineEntry]:
    """Every host event and console milestone, in time order."""
    events = list(instance_events)
    entries = [
        TimelineEntry(e.name, round(e.at - execution_started_at, 1), "host", e.detail)
        for e in events
    ]
    vm_started = next((e.at for e in events if e.name == "vm_started"), None)
    if vm_started is not None:
        offset = vm_started - execution_started_at
        entries += [
            TimelineEntry(name, round(offset + line.at, 1), "console", line.text.strip()[:160])
            for name, line in milestones.items()
        ]
    return sorted(entries, key=lambda entry: entry.at)


def timeline_table(title: str, entries: Iterable[TimelineEntry]) -> str:
    """The timeline as a fixed-width text table."""
    rows = [f"{title}", f"{'t (s)':>8}  {'source':<8}  {'event':<26}  detail"]
    rows += [
        f"{entry.at:>8.1f}  {entry.source:<8}  {entry.event:<26}  {entry.detail[:90]}"
        for entry in entries
    ]
    return "\n".join(rows) + "\n"


def write_timeline(
    directory: Path, case: str, entries: list[TimelineEntry], summary: Mapping[str, object]
) -> Path:
    """``<directory>/timeline.json`` (and the table as ``timeline.txt``)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "timeline.json"
    path.write_text(
        json.dumps(
            {
                "case": case,
                **summary,
                "timeline": [dataclasses.asdict(entry) for entry in entries],
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    (directory / "timeline.txt").write_text(timeline_table(case, entries), encoding="utf-8")
    return path
