"""One run's log lines: the agent's (streams named after its instance) and the launcher's (lines
mentioning the execution name or the instance id), merged in time order."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from gpurun import runs
from gpurun.errors import GpurunError

# The launcher acts a little before the execution's start is recorded and the sweeper up to its
# period after the end: widen the window on both sides.
_BEFORE = timedelta(minutes=5)
_AFTER = timedelta(minutes=30)


@dataclasses.dataclass(frozen=True)
class LogLine:
    timestamp_ms: int
    source: str
    stream: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class RunRef:
    execution_arn: str
    name: str
    started: datetime
    stopped: datetime | None
    instance_id: str | None


def resolve_run(sfn: Any, state_machine_arn: str, run: str) -> RunRef:
    """An execution name or ARN -> its ARN, times and instance id (from the history)."""
    if run.startswith("arn:"):
        execution_arn = run
    else:
        machine = state_machine_arn.split(":stateMachine:", 1)
        if len(machine) != 2:
            raise GpurunError(f"{state_machine_arn!r} is not a state machine ARN")
        execution_arn = f"{machine[0]}:execution:{machine[1]}:{run}"
    try:
        described = sfn.describe_execution(executionArn=execution_arn)
    except ClientError as exc:
        if "ExecutionDoesNotExist" in str(exc):
            raise GpurunError(
                f"no execution {run!r}; `gpurun status` lists the recent runs"
            ) from exc
        raise
    instance = runs.instance_from_history(runs.history_events(sfn, execution_arn))
    return RunRef(
        execution_arn=execution_arn,
        name=str(described["name"]),
        started=described["startDate"],
        stopped=described.get("stopDate"),
        instance_id=None if instance is None else str(instance.get("instance_id")),
    )


def _filter(logs: Any, **kwargs: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    try:
        for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
            events.extend(page["events"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return []
        raise
    return events


def _window(ref: RunRef, now: datetime) -> dict[str, int]:
    start = ref.started - _BEFORE
    end = (ref.stopped or now) + _AFTER
    return {"startTime": int(start.timestamp() * 1000), "endTime": int(end.timestamp() * 1000)}


def agent_lines(logs: Any, group: str, ref: RunRef, now: datetime) -> list[LogLine]:
    """Every line of the agent log group's streams named ``<instance id>/...``."""
    if ref.instance_id is None:
        return []
    try:
        streams = [
            s["logStreamName"]
            for page in logs.get_paginator("describe_log_streams").paginate(
                logGroupName=group, logStreamNamePrefix=f"{ref.instance_id}/"
            )
            for s in page["logStreams"]
        ]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return []
        raise
    if not streams:
        return []
    events = _filter(logs, logGroupName=group, logStreamNames=streams[:100], **_window(ref, now))
    return [
        LogLine(e["timestamp"], "agent", e["logStreamName"], e["message"].rstrip("\n"))
        for e in events
    ]


def launcher_lines(logs: Any, group: str, ref: RunRef, now: datetime) -> list[LogLine]:
    """Launcher lines that mention the execution name or the instance id."""
    found: dict[str, LogLine] = {}
    terms = [ref.name] + ([ref.instance_id] if ref.instance_id else [])
    for term in terms:
        for e in _filter(logs, logGroupName=group, filterPattern=f'"{term}"', **_window(ref, now)):
            key = e.get("eventId") or f"{e['logStreamName']}/{e['timestamp']}/{e['message']}"
            found[key] = LogLine(
                e["timestamp"], "launcher", e["logStreamName"], e["message"].rstrip("\n")
            )
    return list(found.values())


def run_lines(
    logs: Any, agent_group: str | None, launcher_group: str | None, ref: RunRef, now: datetime
) -> list[LogLine]:
    lines: list[LogLine] = []
    if agent_group:
        lines += agent_lines(logs, agent_group, ref, now)
    if launcher_group:
        lines += launcher_lines(logs, launcher_group, ref, now)
    return sorted(lines, key=lambda line: (line.timestamp_ms, line.source))
