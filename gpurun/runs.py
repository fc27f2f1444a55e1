"""Starting an execution and following its phases through the execution history."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from gpurun.errors import GpurunError
from run_contract.run_parameters import RUN_PARAMETERS
from run_contract.statuses import TERMINAL_STATUSES


def parse_overrides(assignments: list[str]) -> dict[str, Any]:
    """``key=value`` pairs -> the execution input. Values are JSON when they parse, else strings;
    ``parameters.<name>=value`` sets one model parameter. Unknown keys are refused here, before
    anything starts (the launcher would refuse them too, after the execution began)."""
    overrides: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise GpurunError(
                f"--set {assignment!r}: write key=value, e.g. --set max_runtime_seconds=600"
            )
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        top, _, sub = key.partition(".")
        if top not in RUN_PARAMETERS:
            raise GpurunError(
                f"--set {key}: not a run parameter; the run parameters are "
                f"{', '.join(RUN_PARAMETERS)}"
            )
        if sub:
            if top != "parameters":
                raise GpurunError(f"--set {key}: only parameters.<name> takes a dotted name")
            overrides.setdefault("parameters", {})[sub] = value
        else:
            if top == "parameters" and not isinstance(value, dict):
                raise GpurunError(
                    "--set parameters=...: give a JSON object, or use parameters.<name>=value"
                )
            if top in ("instance_types", "subnet_ids") and isinstance(value, str):
                value = [v for v in value.split(",") if v]
            overrides[top] = value
    return overrides


def start_execution(
    sfn: Any, state_machine_arn: str, run_input: dict[str, Any], name: str | None
) -> tuple[str, str]:
    """(execution ARN, name); the default name says it was started by hand."""
    name = name or f"manual-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    response = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(run_input)
    )
    return str(response["executionArn"]), name


def execution_arn_of(state_machine_arn: str, run: str) -> str:
    """An execution name or ARN -> its ARN (executions live under their state machine's name)."""
    if run.startswith("arn:"):
        return run
    machine = state_machine_arn.split(":stateMachine:", 1)
    if len(machine) != 2:
        raise GpurunError(f"{state_machine_arn!r} is not a state machine ARN")
    return f"{machine[0]}:execution:{machine[1].split(':', 1)[0]}:{run}"


def describe_run(sfn: Any, state_machine_arn: str, run: str) -> dict[str, Any]:
    """describe_execution of a run named by name or ARN; an unknown run is the user's error."""
    try:
        return dict(sfn.describe_execution(executionArn=execution_arn_of(state_machine_arn, run)))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            raise GpurunError(
                f"no run {run!r} of {state_machine_arn}; `gpurun status` lists the recent runs"
            ) from exc
        raise


def history_events(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None


@dataclasses.dataclass(frozen=True)
class Progress:
    """One line of live progress."""

    timestamp: datetime
    phase: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {
            "timestamp": self.timestamp.isoformat(),
            "phase": self.phase,
            "message": self.message,
        }


def _details(event: dict[str, Any]) -> dict[str, Any]:
    return next((dict(v) for k, v in event.items() if k.endswith("EventDetails")), {})


def _exited(name: str, output: dict[str, Any]) -> str | None:
    """The result of the three phases that have one worth showing."""
    if name == "StartInstance" and isinstance(output.get("instance"), dict):
        i = output["instance"]
        reused = ", reused" if i.get("reused") else ""
        return (
            f"instance {i.get('instance_id')} ({i.get('instance_type')} in "
            f"{i.get('availability_zone')}{reused})"
        )
    if name == "RunModel" and isinstance(output.get("result"), dict):
        timings = output["result"].get("timings", {})
        shown = ", ".join(f"{k} {v:.1f}s" for k, v in timings.items() if isinstance(v, int | float))
        return f"model run done ({shown})" if shown else "model run done"
    if name == "StopInstance" and isinstance(output.get("stopped"), dict):
        s = output["stopped"]
        return f"terminated {s.get('terminated')}, already gone {s.get('already_gone')}"
    return None


_EXECUTION_ENDS = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}


def describe_event(event: dict[str, Any]) -> Progress | None:
    """What an operator wants to know from one history event, or None for noise."""
    kind = str(event["type"])
    at = event["timestamp"]
    message: str | None = None
    phase = kind
    if kind.endswith("StateEntered"):
        phase, message = event["stateEnteredEventDetails"]["name"], "entered"
    elif kind.endswith("StateExited"):
        details = event["stateExitedEventDetails"]
        phase = details["name"]
        message = _exited(phase, _json(details.get("output")) or {})
    elif kind == "ActivityStarted":
        worker = _details(event).get("workerName", "?")
        phase, message = "RunModel", f"the agent took the task ({worker})"
    elif kind in _EXECUTION_ENDS:
        error = _details(event).get("error")
        phase = "Execution"
        message = _EXECUTION_ENDS[kind] + (f" ({error})" if error else "")
    elif kind.endswith(("Failed", "TimedOut")):
        details = _details(event)
        message = f"{details.get('error', kind)}: {str(details.get('cause', ''))[:300]}"
    return None if message is None else Progress(at, phase, message)


def follow(
    sfn: Any,
    execution_arn: str,
    on_progress: Callable[[Progress], None],
    *,
    poll_seconds: float = 2.0,
    timeout_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    more_progress: Callable[[], list[Progress]] | None = None,
) -> dict[str, Any]:
    """Report every new history event until the execution ends; returns describe_execution.
    ``more_progress`` (the agent's milestones from its logs) is asked at every poll too."""
    seen: set[int] = set()
    deadline = None if timeout_seconds is None else clock() + timeout_seconds
    while True:
        description: dict[str, Any] = dict(sfn.describe_execution(executionArn=execution_arn))
        for event in history_events(sfn, execution_arn):
            if event["id"] in seen:
                continue
            seen.add(event["id"])
            progress = describe_event(event)
            if progress is not None:
                on_progress(progress)
        for progress in more_progress() if more_progress is not None else []:
            on_progress(progress)
        if description["status"] in TERMINAL_STATUSES:
            # The history read above may predate the end: one last read for the final events.
            for event in history_events(sfn, execution_arn):
                if event["id"] not in seen:
                    seen.add(event["id"])
                    progress = describe_event(event)
                    if progress is not None:
                        on_progress(progress)
            return description
        if deadline is not None and clock() >= deadline:
            return description
        sleep(poll_seconds)


def instance_from_history(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The StartInstance result (instance id, type, AZ) of an execution, if it got one."""
    for event in events:
        details = event.get("stateExitedEventDetails")
        if details and details.get("name") == "StartInstance":
            output = _json(details.get("output")) or {}
            if isinstance(output.get("instance"), dict):
                return dict(output["instance"])
    return None


def list_executions(sfn: Any, state_machine_arn: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` executions, newest first (a weekly run keeps this list short)."""
    executions: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        executions.extend(page["executions"])
    executions.sort(key=lambda e: e["startDate"], reverse=True)
    return executions[:limit]
