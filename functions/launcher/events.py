"""The launcher's events (docs/design.md, "The launcher's events"), as pydantic models.

The union is discriminated on ``action``; ``parse_event`` turns every validation failure into
one EventValidationError that names each bad field, before anything is called on AWS.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from launcher.errors import EventValidationError

# Step Functions names: 1-80 characters, none of whitespace, brackets, wildcards or the
# punctuation listed in the StartExecution API reference.
_SFN_NAME = r"[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/]{1,80}"
_PARTITION = r"aws(?:-cn|-us-gov|-iso[a-z-]*)?"
_EXECUTION_ARN = re.compile(
    rf"^arn:{_PARTITION}:states:[a-z0-9-]+:\d{{12}}:execution:(?P<machine>{_SFN_NAME}):"
    rf"(?P<name>{_SFN_NAME})$"
)
_STATE_MACHINE_ARN = re.compile(
    rf"^(?P<base>arn:{_PARTITION}:states:[a-z0-9-]+:\d{{12}}:stateMachine:(?P<machine>{_SFN_NAME}))"
    rf"(?::(?P<qualifier>{_SFN_NAME}))?$"
)


def _matching(pattern: str, description: str) -> AfterValidator:
    """A validator whose error says what the value must look like, not the regex."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(f"{value!r} is not {description}")
        return value

    return AfterValidator(check)


InstanceId = Annotated[
    StrictStr,
    _matching(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$", "an instance id (i- and 8 or 17 hex digits)"),
]
InstanceType = Annotated[
    StrictStr,
    _matching(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$", "an EC2 instance type such as g4dn.xlarge"),
]
SubnetId = Annotated[
    StrictStr,
    _matching(r"^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$", "a subnet id (subnet- and 8 or 17 hex)"),
]
ExecutionName = Annotated[
    StrictStr, _matching(rf"^{_SFN_NAME}$", "a Step Functions execution name")
]
# S3 key characters that need no escaping, segment by segment, under models/.
ModelPrefix = Annotated[
    StrictStr,
    _matching(
        r"^models/(?:[A-Za-z0-9_.!*'()-]+/)+$",
        "an S3 prefix under models/ ending in / (for example models/current/)",
    ),
]


def _execution_arn(value: str) -> str:
    if not _EXECUTION_ARN.match(value):
        raise ValueError(
            "must be a Step Functions execution ARN "
            "(arn:aws:states:<region>:<account>:execution:<state machine>:<name>); "
            "pass $$.Execution.Id"
        )
    return value


def _unique(values: list[str]) -> list[str]:
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise ValueError(f"lists {', '.join(duplicates)} more than once; list each once")
    return values


class _Strict(BaseModel):
    """Unknown keys are refused, so a misspelt key fails loudly instead of being ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RunParameters(_Strict):
    """The run parameters (docs/design.md), after the workflow merged them with the defaults."""

    instance_types: list[InstanceType] = Field(min_length=1)
    subnet_ids: list[SubnetId] = Field(min_length=1)
    model_prefix: ModelPrefix
    max_runtime_seconds: StrictInt = Field(ge=1)
    parameters: dict[str, Any]

    @field_validator("instance_types", "subnet_ids")
    @classmethod
    def _no_duplicates(cls, values: list[str]) -> list[str]:
        return _unique(values)

    @field_validator("model_prefix")
    @classmethod
    def _no_dot_segments(cls, value: str) -> str:
        if any(segment in {".", ".."} for segment in value.split("/")):
            raise ValueError("must not contain '.' or '..' segments; name a folder under models/")
        return value


class StartEvent(_Strict):
    """Launch (or find again) the instance of one execution."""

    action: Literal["start"]
    execution_arn: StrictStr
    execution_name: ExecutionName
    state_machine_arn: StrictStr
    run: RunParameters

    _check_execution_arn = field_validator("execution_arn")(_execution_arn)

    @field_validator("execution_name")
    @classmethod
    def _name_of_execution(cls, value: str, info: ValidationInfo) -> str:
        # Catches a workflow that passes another execution's identifiers.
        execution = _EXECUTION_ARN.match(info.data.get("execution_arn", ""))
        if execution and execution["name"] != value:
            raise ValueError(
                f"{value!r} is not the name in execution_arn ({execution['name']!r}); "
                "pass $$.Execution.Name"
            )
        return value

    @field_validator("state_machine_arn")
    @classmethod
    def _state_machine_arn(cls, value: str, info: ValidationInfo) -> str:
        machine = _STATE_MACHINE_ARN.match(value)
        if not machine:
            raise ValueError(
                "must be a Step Functions state machine ARN "
                "(arn:aws:states:<region>:<account>:stateMachine:<name>); pass $$.StateMachine.Id"
            )
        execution = _EXECUTION_ARN.match(info.data.get("execution_arn", ""))
        if execution and execution["machine"] != machine["machine"]:
            raise ValueError(
                f"names state machine {machine['machine']!r} but execution_arn belongs to "
                f"{execution['machine']!r}; pass $$.StateMachine.Id"
            )
        return value

    @property
    def unqualified_state_machine_arn(self) -> str:
        """The state machine without a version or alias, so the lock covers all its versions."""
        match = _STATE_MACHINE_ARN.match(self.state_machine_arn)
        return match["base"] if match else self.state_machine_arn


class InstanceRef(BaseModel):
    """The start action's result, passed back to stop; the id is what stop terminates, type and
    zone go into the run record."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    instance_id: InstanceId
    instance_type: StrictStr | None = None
    availability_zone: StrictStr | None = None


class RunError(BaseModel):
    """A Catch's ``$.error`` ({"Error", "Cause"}) as the workflow passes it to stop."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    Error: StrictStr  # Step Functions names the keys
    Cause: StrictStr | None = None  # Step Functions names the keys


class ResultsLocation(_Strict):
    """Where the run's results and run.json go: the RunModel task's ``results``."""

    bucket: StrictStr = Field(min_length=3)
    prefix: Annotated[
        StrictStr, _matching(r"^runs/[^/]+/$", "the run's results prefix, runs/<execution name>/")
    ]


class StopEvent(_Strict):
    """Terminate the execution's instance (null when the start failed) and any other it owns.

    ``run``, ``error`` and ``results`` (all optional) let stop write a minimal run.json when the
    agent wrote none; ``run`` is kept as given, since a refused input is worth recording too.
    """

    action: Literal["stop"]
    execution_arn: StrictStr
    instance: InstanceRef | None
    run: dict[str, Any] | None = None
    error: RunError | None = None
    results: ResultsLocation | None = None

    _check_execution_arn = field_validator("execution_arn")(_execution_arn)


class CleanupEvent(_Strict):
    """From the EventBridge rule on execution status: terminate everything the execution owns."""

    action: Literal["cleanup"]
    execution_arn: StrictStr
    # Only final statuses: cleaning up a RUNNING execution would kill a live run.
    status: Literal["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]

    _check_execution_arn = field_validator("execution_arn")(_execution_arn)


class SweepEvent(_Strict):
    """From the sweeper schedule: terminate project instances older than their lifetime."""

    action: Literal["sweep"]


LauncherEvent = Annotated[
    StartEvent | StopEvent | CleanupEvent | SweepEvent, Field(discriminator="action")
]
_ADAPTER: TypeAdapter[LauncherEvent] = TypeAdapter(LauncherEvent)
ACTIONS = ("start", "stop", "cleanup", "sweep")


def _field_name(loc: tuple[int | str, ...]) -> str:
    # A discriminated union puts the action's tag first in the location; the field is the rest.
    parts = [str(part) for part in loc]
    if parts and parts[0] in ACTIONS:
        parts = parts[1:]
    return ".".join(parts) or "(event)"


_SIMPLE_MESSAGES = {
    "missing": "is required",
    "too_short": "must list at least one value",
    "union_tag_not_found": f"is missing; it must be one of {', '.join(ACTIONS)}",
}
_NOT_AN_OBJECT = frozenset({"model_attributes_type", "json_invalid", "json_type"})


def _problem(error: Any) -> tuple[str, str]:
    """(field, what to do) for one pydantic error, in the words of the contract."""
    field = _field_name(tuple(error["loc"]))
    kind = error["type"]
    if kind.startswith("union_tag"):
        field = "action"
    message = _SIMPLE_MESSAGES.get(kind, str(error["msg"]).removeprefix("Value error, "))
    if kind == "union_tag_invalid":
        message = (
            f"{error['input'].get('action')!r} is not an action; use one of {', '.join(ACTIONS)}"
        )
    elif kind == "extra_forbidden" and field.startswith("run."):
        known = ", ".join(RunParameters.model_fields)
        message = f"is not a run parameter; the run parameters are {known}"
    elif kind == "extra_forbidden":
        message = "is not part of this action's event; remove it"
    elif field == "(event)" and kind in _NOT_AN_OBJECT:
        message = "must be a JSON object with an action"
    return field, message


def parse_event(event: Any) -> StartEvent | StopEvent | CleanupEvent | SweepEvent:
    """Validate a raw Lambda event against the contract, or raise EventValidationError."""
    try:
        # parse() takes a TypeAdapter at runtime, though its overloads only declare type[T].
        parsed: StartEvent | StopEvent | CleanupEvent | SweepEvent = parse(  # type: ignore[call-overload]
            event=event, model=_ADAPTER
        )
    except ValidationError as error:
        raise EventValidationError([_problem(e) for e in error.errors()]) from None
    return parsed
