"""One CloudWatch embedded-metric-format (EMF) line per run, standard library only.

The agent appends the line to ``metrics.file``; the user data's CloudWatch agent ships that file
to the agent's log group, where CloudWatch Logs extracts the metrics (any log event that is a
valid EMF document is extracted; no client library or header is needed). The same line is logged
to the journal for people reading ``journalctl -u instance-agent``.

Metrics (namespace ``metrics.namespace``, dimension sets ``[Service]`` and
``[Service, InstanceType]``): see ``METRIC_UNITS``. A phase that never ran has no value in the
line (CloudWatch would otherwise average zeros into the durations).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("instance_agent.metrics")

SERVICE = "instance-agent"
DIMENSION_SETS = [["Service"], ["Service", "InstanceType"]]

# Metric name -> CloudWatch unit. The names are what the dashboard and docs/operations.md use.
METRIC_UNITS: dict[str, str] = {
    "BootToAgentSeconds": "Seconds",
    "LaunchToBootSeconds": "Seconds",
    "BootToCloudInitSeconds": "Seconds",
    "CloudInitSeconds": "Seconds",
    "BootstrapSeconds": "Seconds",
    "StorageSeconds": "Seconds",
    "ImagePullSeconds": "Seconds",
    "WarmSeconds": "Seconds",
    "WaitForTaskSeconds": "Seconds",
    "ModelCopySeconds": "Seconds",
    "ModelCopyMBps": "Megabytes/Second",
    "ModelFirstOutputSeconds": "Seconds",
    "BootToFirstOutputSeconds": "Seconds",
    "ModelRunSeconds": "Seconds",
    "ResultsUploadSeconds": "Seconds",
    "InstanceLifetimeSeconds": "Seconds",
    "RunSucceeded": "Count",
    "RunFailed": "Count",
}

# The agent's phase timings (Agent.timings keys) -> metric names.
PHASE_METRICS = {
    "launch_to_boot": "LaunchToBootSeconds",
    "boot_to_cloud_init": "BootToCloudInitSeconds",
    "cloud_init": "CloudInitSeconds",
    "bootstrap": "BootstrapSeconds",
    "storage": "StorageSeconds",
    "image_pull": "ImagePullSeconds",
    "warm": "WarmSeconds",
    "wait_for_task": "WaitForTaskSeconds",
    "model_copy": "ModelCopySeconds",
    "model_first_output": "ModelFirstOutputSeconds",
    "boot_to_first_output": "BootToFirstOutputSeconds",
    "model_run": "ModelRunSeconds",
    "results_upload": "ResultsUploadSeconds",
}


def read_uptime_seconds(path: Path) -> float | None:
    """Seconds since the machine booted (first field of /proc/uptime), or None if unreadable."""
    try:
        first = path.read_text(encoding="ascii").split()[0]
        return float(first)
    except (OSError, ValueError, IndexError, UnicodeDecodeError):
        return None


def build_emf(
    *,
    namespace: str,
    instance_type: str,
    values: Mapping[str, float | None],
    properties: Mapping[str, Any],
    timestamp_ms: int | None = None,
) -> dict[str, Any]:
    """An EMF document with every known metric in ``values`` (None values are left out)."""
    if not namespace:
        raise ValueError("metrics.namespace must not be empty")
    unknown = sorted(set(values) - set(METRIC_UNITS))
    if unknown:
        raise ValueError(
            f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRIC_UNITS)}"
        )
    present = {name: float(value) for name, value in values.items() if value is not None}
    clashes = sorted(set(properties) & (set(METRIC_UNITS) | {"Service", "InstanceType", "_aws"}))
    if clashes:
        raise ValueError(f"properties {', '.join(clashes)} would overwrite a metric or dimension")
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": DIMENSION_SETS,
                    "Metrics": [{"Name": name, "Unit": METRIC_UNITS[name]} for name in present],
                }
            ],
        },
        "Service": SERVICE,
        "InstanceType": instance_type or "unknown",
    }
    # Unknown properties (a run that failed early) are left out rather than sent as null.
    document.update({k: v for k, v in properties.items() if v is not None})
    document.update(present)
    return document


def run_values(
    timings: Mapping[str, float],
    *,
    boot_to_agent_seconds: float | None,
    lifetime_seconds: float | None,
    copy_mb_per_s: float | None,
    succeeded: bool,
) -> dict[str, float | None]:
    """The metric values of one run from the agent's phase timings."""
    values: dict[str, float | None] = {
        metric: timings.get(phase) for phase, metric in PHASE_METRICS.items()
    }
    values["BootToAgentSeconds"] = boot_to_agent_seconds
    values["InstanceLifetimeSeconds"] = lifetime_seconds
    values["ModelCopyMBps"] = copy_mb_per_s
    values["RunSucceeded"] = 1.0 if succeeded else 0.0
    values["RunFailed"] = 0.0 if succeeded else 1.0
    return values


def emit(document: Mapping[str, Any], path: Path) -> bool:
    """Append the EMF line to ``path`` and log it; False (and a warning) if the file failed.

    A metrics problem must never fail a run or delay the shutdown, so nothing here raises.
    """
    line = json.dumps(document, separators=(",", ":"), sort_keys=True)
    log.info("run metrics: %s", line)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as stream:
            stream.write(line + "\n")
    except OSError as exc:
        log.warning("could not append the run metrics to %s: %s", path, exc)
        return False
    return True
