"""The launcher's events (docs/design.md, "The launcher's events"), as pydantic models.

The union is discriminated on ``action``; ``parse_event`` turns every validation failure into
one EventValidationError that names each bad field, before anything is called on AWS.
"""

from __future__ import annotations

import json
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
from run_contract.limits import MAX_RUNTIME_SECONDS

# Step Functions names: 1-80 characters, none of whitespace, control characters (U+0000-001F,
# U+007F-009F), brackets, wildcards or the punctuation listed in the StartExecution reference.
_SFN_NAME = r"[^\s\x00-\x1f\x7f-\x9f<>{}\[\]?*\"#%\\^|~`$&,;:/]{1,80}"
_PARTITION = r"aws(?:-cn|-us-gov|-iso[a-z-]*)?"
_REGION = r"[a-z]{2}(?:-[a-z]+)+-[0-9]"
_ACCOUNT = r"[0-9]{12}"
# Every pattern is matched against the whole value (fullmatch: Python's `$` also matches before a
# final newline) and its classes are ASCII-only ([0-9], not \d, which admits other digits).
_EXECUTION_ARN = re.compile(
    rf"arn:(?P<partition>{_PARTITION}):states:(?P<region>{_REGION}):(?P<account>{_ACCOUNT}):"
    rf"execution:(?P<machine>{_SFN_NAME}):(?P<name>{_SFN_NAME})"
)
_STATE_MACHINE_ARN = re.compile(
    rf"(?P<base>arn:(?P<partition>{_PARTITION}):states:(?P<region>{_REGION}):"
    rf"(?P<account>{_ACCOUNT}):stateMachine:(?P<machine>{_SFN_NAME}))(?::(?P<qualifier>{_SFN_NAME}))?"
)
# Longest value any field may hold: far above every legitimate value, far below a log flood.
MAX_ARN_LENGTH = 512
MAX_PARAMETERS_JSON_BYTES = 32 * 1024  # what the run record and the task input can carry
MAX_CAUSE_LENGTH = 32768  # Step Functions' own limit on an error's cause
MAX_ERROR_NAME_LENGTH = 256
MAX_LIST_LENGTH = 32
# An error message quotes at most this much of a bad value.
QUOTE_CHARACTERS = 40


def quote(value: object) -> str:
    """A bad value as an error message shows it: a short prefix, never the whole of it."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= QUOTE_CHARACTERS:
        return repr(text)
    return f"{text[:QUOTE_CHARACTERS]!r}... ({len(text)} characters)"


def _matching(pattern: str, description: str, max_length: int) -> AfterValidator:
    """A validator whose error says what the value must look like, not the regex."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if len(value) > max_length or not compiled.fullmatch(value):
            raise ValueError(f"{quote(value)} is not {description}")
        return value

    return AfterValidator(check)


InstanceId = Annotated[
    StrictStr,
    _matching(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})", "an instance id (i- and 8 or 17 hex digits)", 19),
]
InstanceType = Annotated[
    StrictStr,
    _matching(r"[a-z][a-z0-9-]*\.[a-z0-9-]+", "an EC2 instance type such as g4dn.xlarge", 32),
]
AvailabilityZone = Annotated[
    StrictStr, _matching(rf"{_REGION}[a-z](?:-[a-z0-9-]+)?", "an availability zone", 32)
]
SubnetId = Annotated[
    StrictStr,
    _matching(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})", "a subnet id (subnet- and 8 or 17 hex)", 24),
]
ExecutionName = Annotated[StrictStr, _matching(_SFN_NAME, "a Step Functions execution name", 80)]
# S3 key characters that need no escaping, segment by segment, under models/.
ModelPrefix = Annotated[
    StrictStr,
    _matching(
        r"models/(?:[A-Za-z0-9_.!*'()-]+/)+",
        "an S3 prefix under models/ ending in / (for example models/current/)",
        512,
    ),
]


def _execution_arn(value: str) -> str:
    if len(value) > MAX_ARN_LENGTH or not _EXECUTION_ARN.fullmatch(value):
        raise ValueError(
            f"{quote(value)} is not a Step Functions execution ARN "
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

    instance_types: list[InstanceType] = Field(min_length=1, max_length=MAX_LIST_LENGTH)
    subnet_ids: list[SubnetId] = Field(min_length=1, max_length=MAX_LIST_LENGTH)
    model_prefix: ModelPrefix
    max_runtime_seconds: StrictInt = Field(ge=MAX_RUNTIME_SECONDS[0], le=MAX_RUNTIME_SECONDS[1])
    parameters: dict[str, Any]

    @field_validator("parameters")
    @classmethod
    def _small_enough(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, separators=(",", ":")).encode())
        if size > MAX_PARAMETERS_JSON_BYTES:
            raise ValueError(
                f"is {size} bytes of JSON; keep it under {MAX_PARAMETERS_JSON_BYTES} (pass large "
                "inputs as S3 keys)"
            )
        return value

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
        execution = _EXECUTION_ARN.fullmatch(info.data.get("execution_arn", ""))
        if execution and execution["name"] != value:
            raise ValueError(
                f"{quote(value)} is not the name in execution_arn ({quote(execution['name'])}); "
                "pass $$.Execution.Name"
            )
        return value

    @field_validator("state_machine_arn")
    @classmethod
    def _state_machine_arn(cls, value: str, info: ValidationInfo) -> str:
        machine = None if len(value) > MAX_ARN_LENGTH else _STATE_MACHINE_ARN.fullmatch(value)
        if not machine:
            raise ValueError(
                f"{quote(value)} is not a Step Functions state machine ARN "
                "(arn:aws:states:<region>:<account>:stateMachine:<name>); pass $$.StateMachine.Id"
            )
        execution = _EXECUTION_ARN.fullmatch(info.data.get("execution_arn", ""))
        if execution and any(
            execution[part] != machine[part]
            for part in ("partition", "region", "account", "machine")
        ):
            raise ValueError(
                f"{quote(machine['base'])} is not the state machine of execution_arn; "
                "pass $$.StateMachine.Id"
            )
        return value

    @property
    def unqualified_state_machine_arn(self) -> str:
        """The state machine without a version or alias, so the lock covers all its versions."""
        match = _STATE_MACHINE_ARN.fullmatch(self.state_machine_arn)
        return match["base"] if match else self.state_machine_arn


class InstanceRef(BaseModel):
    """The start action's result, passed back to stop; the id is what stop terminates, type and
    zone go into the run record."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    instance_id: InstanceId
    instance_type: InstanceType | None = None
    availability_zone: AvailabilityZone | None = None


class RunError(BaseModel):
    """A Catch's ``$.error`` ({"Error", "Cause"}) as the workflow passes it to stop."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    Error: StrictStr = Field(max_length=MAX_ERROR_NAME_LENGTH)  # Step Functions names the keys
    Cause: StrictStr | None = Field(default=None, max_length=MAX_CAUSE_LENGTH)


class ResultsLocation(_Strict):
    """Where the run's results and run.json go: the RunModel task's ``results``."""

    bucket: Annotated[
        StrictStr, _matching(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "an S3 bucket name", 63)
    ]
    prefix: Annotated[
        StrictStr,
        _matching(r"runs/[^/]{1,80}/", "the run's results prefix, runs/<execution name>/", 90),
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


class InstanceLostEvent(_Strict):
    """From the EC2 state-change rule (its input transformer): an instance is going away."""

    action: Literal["instance_lost"]
    instance_id: InstanceId
    state: Literal["shutting-down", "terminated", "stopping", "stopped"]


class SweepEvent(_Strict):
    """From the sweeper schedule: terminate project instances older than their lifetime."""

    action: Literal["sweep"]


AnyEvent = StartEvent | StopEvent | CleanupEvent | SweepEvent | InstanceLostEvent
LauncherEvent = Annotated[AnyEvent, Field(discriminator="action")]
_ADAPTER: TypeAdapter[LauncherEvent] = TypeAdapter(LauncherEvent)
ACTIONS = ("start", "stop", "cleanup", "sweep", "instance_lost")


def _field_name(loc: tuple[int | str, ...]) -> str:
    # A discriminated union puts the action's tag first in the location; the field is the rest.
    parts = [str(part) for part in loc]
    if parts and parts[0] in ACTIONS:
        parts = parts[1:]
    name = ".".join(parts) or "(event)"
    # A key is input too: an unknown key of any size is named by a short prefix.
    return name if len(name) <= QUOTE_CHARACTERS * 2 else quote(name)


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
            f"{quote(error['input'].get('action'))} is not an action; use one of "
            f"{', '.join(ACTIONS)}"
        )
    elif kind == "extra_forbidden" and field.startswith("run."):
        known = ", ".join(RunParameters.model_fields)
        message = f"is not a run parameter; the run parameters are {known}"
    elif kind == "extra_forbidden":
        message = "is not part of this action's event; remove it"
    elif field == "(event)" and kind in _NOT_AN_OBJECT:
        message = "must be a JSON object with an action"
    return field, message


def parse_event(event: Any) -> AnyEvent:
    """Validate a raw Lambda event against the contract, or raise EventValidationError.

    Only a JSON object is an event: a string (even one holding a valid event's JSON) is refused
    before any parsing, since nothing that builds this function's events sends one.
    """
    if not isinstance(event, dict):
        raise EventValidationError(
            [("(event)", f"must be a JSON object with an action, not {type(event).__name__}")]
        )
    try:
        # parse() takes a TypeAdapter at runtime, though its overloads only declare type[T].
        parsed: AnyEvent = parse(  # type: ignore[call-overload]
            event=event, model=_ADAPTER
        )
    except ValidationError as error:
        raise EventValidationError([_problem(e) for e in error.errors()]) from None
    return parsed
