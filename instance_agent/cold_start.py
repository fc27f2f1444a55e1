"""The cold start before the agent: launch -> kernel boot -> cloud-init -> the agent's start.

Three clocks, read once when the agent starts (all wall-clock epoch seconds):
- launch: the instance identity document's ``pendingTime`` (IMDS; one-second resolution);
- boot: now minus ``/proc/uptime``;
- cloud-init: ``/run/cloud-init/status.json``, each stage's ``start`` (``init-local`` is the
  first, ``modules-final`` runs ``runcmd``, which starts the agent's bootstrap).

Each phase is a difference of two of them, left out when either is unknown (an AMI without
cloud-init, a local emulator): a phase that was not measured is absent, not zero. The names are
run_contract.phases's.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger("instance_agent.cold_start")

FIRST_STAGES = ("init-local", "init")
RUNCMD_STAGE = "modules-final"


def stage_starts(status_file: Path) -> dict[str, float]:
    """Each cloud-init stage's start time from status.json (v1), {} when unreadable."""
    try:
        document = json.loads(status_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    stages = document.get("v1") if isinstance(document, dict) else None
    if not isinstance(stages, dict):
        return {}
    starts = {}
    for name, stage in stages.items():
        start = stage.get("start") if isinstance(stage, dict) else None
        if isinstance(start, int | float) and not isinstance(start, bool) and start > 0:
            starts[name] = float(start)
    return starts


def boot_phases(
    *,
    now: float,
    uptime_seconds: float | None,
    launched_at: float | None,
    cloud_init_starts: dict[str, float],
) -> dict[str, float]:
    """launch_to_boot, boot_to_cloud_init, cloud_init and bootstrap, those that can be known."""
    phases: dict[str, float] = {}
    booted_at = None if uptime_seconds is None else now - uptime_seconds
    if booted_at is not None and launched_at is not None:
        # pendingTime has whole seconds: a boot within the same second reads as 0.
        phases["launch_to_boot"] = max(0.0, booted_at - launched_at)
    first = next((cloud_init_starts[s] for s in FIRST_STAGES if s in cloud_init_starts), None)
    runcmd = cloud_init_starts.get(RUNCMD_STAGE)
    if booted_at is not None and first is not None:
        phases["boot_to_cloud_init"] = max(0.0, first - booted_at)
    if first is not None and runcmd is not None:
        phases["cloud_init"] = max(0.0, runcmd - first)
    if runcmd is not None:
        phases["bootstrap"] = max(0.0, now - runcmd)
    return {name: round(value, 3) for name, value in phases.items()}
