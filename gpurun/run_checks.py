"""What ``gpurun run`` checks before it starts an execution: the run parameters as the launcher
will see them, and that no other run of the state machine is in progress.

The workflow merges the execution input over the defaults in its ``LoadRunDefaults`` state (a
shallow merge, docs/design.md "The run parameters"); the launcher then validates the result with
its own pydantic model (``launcher.events.RunParameters``). Doing the same here refuses a bad
``--set`` before anything starts, instead of an execution that fails (and, on AWS, fires the
failed-run alarm).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from gpurun.errors import GpurunError
from launcher.events import RunParameters, quote

DEFAULTS_STATE = "LoadRunDefaults"


def run_defaults(sfn: Any, state_machine_arn: str) -> dict[str, Any] | None:
    """The run parameters' defaults as deployed (the ``LoadRunDefaults`` state's Result), or
    None when the definition does not have that shape."""
    definition = sfn.describe_state_machine(stateMachineArn=state_machine_arn)["definition"]
    try:
        states = json.loads(definition).get("States", {})
    except (json.JSONDecodeError, AttributeError):
        return None
    result = states.get(DEFAULTS_STATE, {}).get("Result") if isinstance(states, dict) else None
    return dict(result) if isinstance(result, dict) else None


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(run parameters)"


def check_run_input(overrides: dict[str, Any], defaults: dict[str, Any] | None) -> None:
    """Raise GpurunError naming every value the launcher would refuse.

    With the deployed defaults, the merged parameters are checked exactly as the launcher will
    check them; without them (a state machine of another shape), only the values given."""
    merged = {**(defaults or {}), **overrides}
    try:
        RunParameters.model_validate(merged)
    except ValidationError as error:
        problems = []
        for e in error.errors():
            if defaults is None and e["type"] == "missing":
                continue
            field = _field(tuple(e["loc"]))
            origin = "--set" if str(e["loc"][0]) in overrides else "the deployed default"
            message = str(e["msg"]).removeprefix("Value error, ")
            value = f" (got {quote(e['input'])})" if e["type"] != "missing" else ""
            problems.append(f"{origin} {field}: {message}{value}")
        if problems:
            raise GpurunError(
                "the launcher would refuse these run parameters, so no run was started: "
                + "; ".join(problems)
            ) from None


def running_executions(sfn: Any, state_machine_arn: str) -> list[dict[str, Any]]:
    """The state machine's RUNNING executions, oldest first."""
    running: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=state_machine_arn, statusFilter="RUNNING"
    ):
        running.extend(page["executions"])
    return sorted(running, key=lambda e: e["startDate"])
