"""One run's log lines: the agent's (streams named after its instance) and the launcher's (lines
mentioning the execution name or the instance id), merged in time order."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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
    described = runs.describe_run(sfn, state_machine_arn, run)
    execution_arn = str(described["executionArn"])
    instance = runs.instance_from_history(runs.history_events(sfn, execution_arn))
    return RunRef(
        execution_arn=execution_arn,
        name=str(described["name"]),
        started=described["startDate"],
        stopped=described.get("stopDate"),
        instance_id=None if instance is None else str(instance.get("instance_id")),
    )


def require_group(logs: Any, group: str, flag: str, region: str | None) -> None:
    """A log group that does not exist is a wrong name or region, not logs still to come."""
    response = logs.describe_log_groups(logGroupNamePrefix=group)
    if any(g["logGroupName"] == group for g in response.get("logGroups", [])):
        return
    raise GpurunError(
        f"log group {group!r} does not exist in {region or 'this region'}: check {flag} (or its "
        "GPURUN_* variable or Terraform output) and --region against `terraform output`; on the "
        "local AWS, the demo must still be running (make demo ARGS=--keep-running)"
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


def follow_lines(
    sfn: Any,
    logs: Any,
    state_machine_arn: str,
    run: str,
    *,
    groups: tuple[str | None, str | None],
    on_line: Callable[[LogLine], None],
    poll_seconds: float = 2.0,
    linger_seconds: float = 15.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunRef:
    """Report each new line of the run until it has ended and ``linger_seconds`` more have
    passed (the instance ships its last lines as it shuts down); returns the run as it ended."""
    seen: set[tuple[int, str, str, str]] = set()
    ended_at: float | None = None
    while True:
        ref = resolve_run(sfn, state_machine_arn, run)
        for line in run_lines(logs, groups[0], groups[1], ref, datetime.now(UTC)):
            key = (line.timestamp_ms, line.source, line.stream, line.message)
            if key not in seen:
                seen.add(key)
                on_line(line)
        if ref.stopped is not None and ended_at is None:
            ended_at = clock()
        if ended_at is not None and clock() - ended_at >= linger_seconds:
            return ref
        sleep(poll_seconds)


# The agent's lines that mark its progress (instance_agent's own messages, after "logger: ").
AGENT_MILESTONES = (
    "instance-store disks:",
    "task received",
    "copy progress:",
    "model copy done",
    "model command:",
    "model command succeeded",
    "model command failed",
    "results:",
    "run succeeded",
    "run failed",
    "shutting down the instance",
)


def agent_milestone(message: str) -> str | None:
    """The milestone text of an agent line (``... INFO instance_agent.x: <text>``), or None."""
    _, sep, text = message.partition(": ")
    if not sep or "instance_agent" not in message[: len(message) - len(text)]:
        return None
    return text if text.startswith(AGENT_MILESTONES) else None


def milestone_progress(
    sfn: Any, logs: Any, state_machine_arn: str, execution_arn: str, group: str
) -> Callable[[], list[runs.Progress]]:
    """For ``follow``: the agent's new milestones (the copy's progress among them) at each poll,
    read from its log group once the run has an instance."""
    seen: set[tuple[int, str]] = set()

    def new_milestones() -> list[runs.Progress]:
        ref = resolve_run(sfn, state_machine_arn, execution_arn)
        found: list[runs.Progress] = []
        for line in agent_lines(logs, group, ref, datetime.now(UTC)):
            text = agent_milestone(line.message)
            if text is None or (line.timestamp_ms, line.message) in seen:
                continue
            seen.add((line.timestamp_ms, line.message))
            at = datetime.fromtimestamp(line.timestamp_ms / 1000, UTC)
            found.append(runs.Progress(at, "Agent", text))
        return found

    return new_milestones
