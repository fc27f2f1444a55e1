"""Bad events of every kind are refused at the edge, naming the field, with no AWS call."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from launcher import errors
from launcher.errors import EventValidationError
from launcher.events import CleanupEvent, StartEvent, StopEvent, SweepEvent, parse_event
from run_contract.error_names import LAUNCHER_ERRORS
from tests.launcher.conftest import EVENTS_DIR, CallLog, Invoke, load_event

# Each invalid fixture, and the field(s) its error must name.
INVALID_EVENTS: dict[str, list[str]] = {
    "unknown_action.json": ["action"],
    "missing_action.json": ["action"],
    "not_an_object.json": ["(event)"],
    "start_missing_execution_arn.json": ["execution_arn"],
    "start_execution_arn_not_an_arn.json": ["execution_arn"],
    "start_name_not_in_arn.json": ["execution_name"],
    "start_other_state_machine.json": ["state_machine_arn"],
    "start_unknown_run_parameter.json": ["run.gpu_count"],
    "start_missing_run_parameter.json": ["run.model_prefix"],
    "start_unknown_top_level_key.json": ["instance_type"],
    "start_empty_instance_types.json": ["run.instance_types"],
    "start_empty_subnet_ids.json": ["run.subnet_ids"],
    "start_duplicate_subnet.json": ["run.subnet_ids"],
    "start_malformed_subnet_id.json": ["run.subnet_ids.0"],
    "start_instance_types_not_a_list.json": ["run.instance_types"],
    "start_max_runtime_as_string.json": ["run.max_runtime_seconds"],
    "start_max_runtime_zero.json": ["run.max_runtime_seconds"],
    "start_model_prefix_outside_models.json": ["run.model_prefix"],
    "start_model_prefix_without_slash.json": ["run.model_prefix"],
    "start_parameters_not_an_object.json": ["run.parameters"],
    "stop_malformed_instance_id.json": ["instance.instance_id"],
    "stop_uppercase_instance_id.json": ["instance.instance_id"],
    "stop_instance_id_not_a_string.json": ["instance.instance_id"],
    "stop_instance_without_id.json": ["instance.instance_id"],
    "stop_missing_instance.json": ["instance"],
    "cleanup_running_status.json": ["status"],
    "cleanup_missing_execution_arn.json": ["execution_arn"],
    "sweep_unknown_key.json": ["dry_run"],
}


def test_every_invalid_fixture_has_an_expected_field() -> None:
    on_disk = {p.name for p in (EVENTS_DIR / "invalid").glob("*.json")}
    assert on_disk == set(INVALID_EVENTS)


@pytest.mark.parametrize(("name", "fields"), sorted(INVALID_EVENTS.items()))
def test_bad_event_is_refused_naming_the_field_without_any_aws_call(
    name: str, fields: list[str], invoke: Invoke, no_aws: None
) -> None:
    with pytest.raises(EventValidationError) as refused:
        invoke(load_event(f"invalid/{name}"))
    assert refused.value.fields == fields
    for field in fields:
        assert f"{field}: " in str(refused.value)


def test_without_aws_a_valid_event_fails_on_its_first_aws_call(
    invoke: Invoke, no_aws: None
) -> None:
    with pytest.raises(AssertionError, match="unexpected AWS use: ec2"):
        invoke(load_event("stop.json"))


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("start.json", StartEvent),
        ("stop.json", StopEvent),
        ("stop_after_failed_start.json", StopEvent),
        ("cleanup.json", CleanupEvent),
        ("sweep.json", SweepEvent),
    ],
)
def test_valid_fixture_parses_into_its_action_model(name: str, model: type) -> None:
    assert isinstance(parse_event(load_event(name)), model)


def test_unknown_run_parameter_error_lists_the_known_ones() -> None:
    with pytest.raises(EventValidationError, match="the run parameters are instance_types"):
        parse_event(load_event("invalid/start_unknown_run_parameter.json"))


def test_unknown_action_error_lists_the_actions() -> None:
    with pytest.raises(EventValidationError, match="use one of start, stop, cleanup, sweep"):
        parse_event(load_event("invalid/unknown_action.json"))


def test_every_problem_of_an_event_is_reported_at_once() -> None:
    event = load_event("start.json")
    event["run"]["instance_types"] = []
    event["run"]["max_runtime_seconds"] = "1h"
    with pytest.raises(EventValidationError) as refused:
        parse_event(event)
    assert refused.value.fields == ["run.instance_types", "run.max_runtime_seconds"]


def test_stop_accepts_the_start_result_as_its_instance() -> None:
    parsed = parse_event(load_event("stop.json"))
    assert isinstance(parsed, StopEvent)
    assert parsed.instance is not None
    assert parsed.instance.instance_id == "i-0123456789abcdef0"


def test_stop_accepts_an_eight_digit_instance_id() -> None:
    event = load_event("stop.json")
    event["instance"] = {"instance_id": "i-0123abcd"}
    assert isinstance(parse_event(event), StopEvent)


def test_start_accepts_a_versioned_state_machine_but_locks_on_the_machine() -> None:
    event = load_event("start.json")
    event["state_machine_arn"] += ":3"
    parsed = parse_event(event)
    assert isinstance(parsed, StartEvent)
    assert parsed.unqualified_state_machine_arn == load_event("start.json")["state_machine_arn"]


def test_error_classes_are_the_ones_named_in_the_design() -> None:
    design = (Path(__file__).resolve().parents[2] / "docs" / "design.md").read_text()
    paragraph = design.split("Error classes:", 1)[1].split("Environment:", 1)[0]
    named = set(re.findall(r"`(\w+)` \(", paragraph))
    assert named == set(LAUNCHER_ERRORS)
    for name in named:
        assert issubclass(getattr(errors, name), errors.LauncherError), name


def test_a_run_longer_than_the_instance_lifetime_is_refused_before_any_ec2_call(
    invoke: Invoke, start_event: dict[str, Any], aws_calls: CallLog
) -> None:
    start_event["run"]["max_runtime_seconds"] = 7200  # MAX_INSTANCE_LIFETIME_SECONDS is 7200
    with pytest.raises(EventValidationError, match="MAX_INSTANCE_LIFETIME_SECONDS") as refused:
        invoke(start_event)
    assert refused.value.fields == ["run.max_runtime_seconds"]
    assert aws_calls.operations("ec2") == []
