"""The edge cannot be slipped past: whole-value ASCII patterns, length limits, no control
characters, only JSON objects, and errors that quote a short prefix of a bad value. No AWS at all:
each refusal is checked with clients that fail on first use (``no_aws``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from launcher.errors import EventValidationError
from launcher.events import QUOTE_CHARACTERS, parse_event, quote
from tests.launcher.conftest import Invoke, load_event

Edit = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Edit:
    def edit(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = event
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        if last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value

    return edit


START_REFUSALS: dict[str, tuple[Edit, str]] = {
    "subnet with a trailing newline": (
        _set("run.subnet_ids.0", "subnet-0a1b2c3d4e5f60718\n"),
        "run.subnet_ids.0",
    ),
    "instance type with a trailing newline": (
        _set("run.instance_types.0", "g5.xlarge\n"),
        "run.instance_types.0",
    ),
    "model prefix with a trailing newline": (
        _set("run.model_prefix", "models/current/\n"),
        "run.model_prefix",
    ),
    "execution ARN with a trailing newline": (
        _set(
            "execution_arn",
            "arn:aws:states:eu-west-1:123456789012:execution:scheduled-gpu-model:weekly-2025-01-07\n",
        ),
        "execution_arn",
    ),
    "account id of non-ASCII digits": (
        _set(
            "state_machine_arn",
            "arn:aws:states:eu-west-1:١٢٣٤٥٦٧٨٩٠١٢:stateMachine:scheduled-gpu-model",
        ),
        "state_machine_arn",
    ),
    "execution name with a control character": (
        _set("execution_name", "weekly\x072025"),
        "execution_name",
    ),
    "state machine of another account": (
        _set(
            "state_machine_arn",
            "arn:aws:states:eu-west-1:210987654321:stateMachine:scheduled-gpu-model",
        ),
        "state_machine_arn",
    ),
    "state machine of another region": (
        _set(
            "state_machine_arn",
            "arn:aws:states:us-east-1:123456789012:stateMachine:scheduled-gpu-model",
        ),
        "state_machine_arn",
    ),
    "a megabyte model prefix": (
        _set("run.model_prefix", "models/" + "a" * 2**20 + "/"),
        "run.model_prefix",
    ),
    "a hundred instance types": (
        _set("run.instance_types", [f"g{i}.xlarge" for i in range(100)]),
        "run.instance_types",
    ),
    "parameters over 32 KiB": (_set("run.parameters", {"blob": "x" * 40_000}), "run.parameters"),
    "a runtime over a week": (
        _set("run.max_runtime_seconds", 8 * 24 * 3600),
        "run.max_runtime_seconds",
    ),
}


@pytest.mark.parametrize("case", sorted(START_REFUSALS))
def test_a_start_event_that_slips_past_a_loose_pattern_is_refused(
    case: str, invoke: Invoke, no_aws: None
) -> None:
    edit, field = START_REFUSALS[case]
    event = load_event("start.json")
    edit(event)

    with pytest.raises(EventValidationError) as refused:
        invoke(event)

    assert refused.value.fields == [field]
    assert len(str(refused.value)) < 1000


@pytest.mark.parametrize(
    "event",
    [
        json.dumps(load_event("stop.json")),  # a string holding a valid stop
        [load_event("stop.json")],
        None,
        42,
        b'{"action": "sweep"}',
    ],
    ids=["json-string", "list", "null", "number", "bytes"],
)
def test_only_a_json_object_is_an_event(event: Any, invoke: Invoke, no_aws: None) -> None:
    with pytest.raises(EventValidationError, match="must be a JSON object") as refused:
        invoke(event)

    assert refused.value.fields == ["(event)"]


def test_a_huge_unknown_key_is_named_by_a_short_prefix(no_aws: None) -> None:
    event = {**load_event("sweep.json"), "k" * 100_000: 1}

    with pytest.raises(EventValidationError) as refused:
        parse_event(event)

    assert "(100000 characters)" in str(refused.value)
    assert len(str(refused.value)) < 1000


def test_a_huge_action_is_quoted_by_a_short_prefix() -> None:
    with pytest.raises(EventValidationError) as refused:
        parse_event({"action": "s" * 10_000})

    assert "(10000 characters)" in str(refused.value)
    assert len(str(refused.value)) < 1000


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("instance.instance_type", "g5.xlarge\nX"),
        ("instance.availability_zone", "eu-west-1a\x00"),
        ("instance.instance_id", "i-0123456789abcdef0\n"),
    ],
)
def test_stop_refuses_an_instance_reference_with_a_bad_value(
    path: str, value: str, invoke: Invoke, no_aws: None
) -> None:
    event = load_event("stop.json")
    _set(path, value)(event)

    with pytest.raises(EventValidationError) as refused:
        invoke(event)

    assert refused.value.fields == [path]


def test_quote_keeps_short_values_and_cuts_long_ones() -> None:
    assert quote("g5.xlarge") == "'g5.xlarge'"
    long = quote("x" * 1000)
    assert long.startswith("'" + "x" * QUOTE_CHARACTERS + "'...")
    assert long.endswith("(1000 characters)")
