"""The bounds of the run's timing settings, as Terraform's root variables validate them
(terraform/variables.tf), for the Python that takes the same values: the launcher's run
parameters, the local AWS's settings and the demo's options. tests/contracts pins each bound to
the HCL's validation condition, so the two cannot drift.
"""

from __future__ import annotations

# max_runtime_seconds: at least a second, at most a week (a run of a weekly schedule).
MAX_RUNTIME_SECONDS = (1, 7 * 24 * 3600)
# heartbeat_timeout_seconds (RunModel's HeartbeatSeconds): the agent beats every quarter of it
# but never more often than HEARTBEAT_INTERVAL_FLOOR_SECONDS (terraform/main.tf's formula), so
# below 20 s a timeout would leave room for fewer than four beats (and below 5 s for none).
HEARTBEAT_TIMEOUT_SECONDS_MIN = 20
HEARTBEAT_INTERVAL_FLOOR_SECONDS = 5
# execution_timeout_seconds (the state machine's TimeoutSeconds): Step Functions allows up to a
# year; five minutes leaves room for a boot and a copy.
EXECUTION_TIMEOUT_SECONDS = (300, 365 * 24 * 3600)


def check_between(name: str, value: int, bounds: tuple[int, int]) -> None:
    """ValueError naming ``name`` unless ``bounds[0] <= value <= bounds[1]``."""
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
