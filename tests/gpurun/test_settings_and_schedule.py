"""Where gpurun finds the stack's names, its --help, and the schedule's next fire time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gpurun.cli import build_parser
from gpurun.errors import GpurunError
from gpurun.runs import parse_overrides
from gpurun.schedule import ScheduleError, next_fire, parse_cron
from gpurun.stack import Stack

OUTPUTS = {
    "state_machine_arn": {"value": "arn:from:outputs", "type": "string", "sensitive": False},
    "model_bucket_name": {"value": "bucket-from-outputs", "type": "string", "sensitive": False},
}


@pytest.fixture
def outputs_file(tmp_path: Path) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS), encoding="utf-8")
    return path


# ---- the stack's names ------------------------------------------------------------------


def test_a_flag_wins_over_the_environment_and_the_outputs(outputs_file: Path) -> None:
    stack = Stack(
        {"state_machine_arn": "arn:from:flag"},
        outputs_file=outputs_file,
        environ={"GPURUN_STATE_MACHINE_ARN": "arn:from:env"},
    )

    assert stack.require("state_machine_arn") == "arn:from:flag"


def test_the_environment_wins_over_the_outputs(outputs_file: Path) -> None:
    stack = Stack({}, outputs_file=outputs_file, environ={"GPURUN_BUCKET": "bucket-from-env"})

    assert stack.require("model_bucket") == "bucket-from-env"


def test_the_terraform_outputs_fill_what_flags_and_environment_leave(outputs_file: Path) -> None:
    stack = Stack({}, outputs_file=outputs_file, environ={})

    assert stack.require("model_bucket") == "bucket-from-outputs"


def test_a_name_found_nowhere_is_an_error_naming_flag_variable_and_output() -> None:
    stack = Stack({}, environ={})

    with pytest.raises(GpurunError, match=r"--schedule-name.*GPURUN_SCHEDULE_NAME.*schedule_name"):
        stack.require("schedule_name")


def test_an_outputs_file_that_is_not_terraform_output_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"state_machine_arn": "arn:bare"}), encoding="utf-8")

    with pytest.raises(GpurunError, match="has no 'value'"):
        Stack({}, outputs_file=path, environ={}).require("state_machine_arn")


def test_a_terraform_dir_runs_terraform_output(tmp_path: Path) -> None:
    fake = tmp_path / "terraform"
    fake.write_text(f"#!/bin/sh\necho '{json.dumps(OUTPUTS)}'\n", encoding="utf-8")
    fake.chmod(0o755)

    stack = Stack({}, terraform_dir=tmp_path, environ={"GPURUN_TERRAFORM": str(fake)})

    assert stack.require("state_machine_arn") == "arn:from:outputs"


# ---- --help and --set ---------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "status", "logs", "publish-model", "doctor"])
def test_every_command_has_help_with_the_common_options(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([command, "--help"])

    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in ("--region", "--profile", "--endpoint-url", "--json", "--terraform-dir"):
        assert option in text


def test_set_values_are_json_when_they_parse_and_strings_otherwise() -> None:
    assert parse_overrides(
        ["max_runtime_seconds=600", "model_prefix=models/2026-11-24/", "parameters.week=48"]
    ) == {
        "max_runtime_seconds": 600,
        "model_prefix": "models/2026-11-24/",
        "parameters": {"week": 48},
    }


def test_set_splits_comma_separated_lists() -> None:
    assert parse_overrides(["instance_types=g5.xlarge,g4dn.xlarge"]) == {
        "instance_types": ["g5.xlarge", "g4dn.xlarge"]
    }


def test_set_without_an_equals_sign_is_refused() -> None:
    with pytest.raises(GpurunError, match="key=value"):
        parse_overrides(["max_runtime_seconds"])


# ---- next fire time ---------------------------------------------------------------------

AFTER = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)  # a Thursday


def test_tuesday_six_in_paris_is_five_utc_in_winter() -> None:
    assert next_fire("cron(0 6 ? * TUE *)", "Europe/Paris", AFTER) == datetime(
        2026, 12, 1, 5, 0, tzinfo=UTC
    )


def test_tuesday_six_in_paris_is_four_utc_in_summer() -> None:
    assert next_fire("cron(0 6 ? * TUE *)", "Europe/Paris", datetime(2026, 7, 1, tzinfo=UTC)) == (
        datetime(2026, 7, 7, 4, 0, tzinfo=UTC)
    )


def test_a_fire_time_equal_to_now_is_not_next() -> None:
    now = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    assert next_fire("cron(0 6 ? * TUE *)", "UTC", now) == datetime(2026, 12, 8, 6, tzinfo=UTC)


def test_day_of_week_numbers_count_from_sunday() -> None:
    # 3 = Tuesday in EventBridge's 1-7 = SUN-SAT.
    assert next_fire("cron(30 2 ? * 3 *)", "UTC", AFTER) == datetime(2026, 12, 1, 2, 30, tzinfo=UTC)


def test_the_first_monday_of_the_month() -> None:
    assert next_fire("cron(0 9 ? * MON#1 *)", "UTC", AFTER) == datetime(2026, 12, 7, 9, tzinfo=UTC)


def test_the_last_day_of_the_month() -> None:
    assert next_fire("cron(0 0 L * ? *)", "UTC", AFTER) == datetime(2026, 11, 30, 0, tzinfo=UTC)


def test_steps_and_ranges() -> None:
    assert next_fire("cron(0/15 8-17 ? * MON-FRI *)", "UTC", AFTER) == datetime(
        2026, 11, 26, 15, 15, tzinfo=UTC
    )


def test_a_past_year_never_fires() -> None:
    assert next_fire("cron(0 6 ? * TUE 2020)", "UTC", AFTER) is None


def test_a_rate_has_no_computable_next_fire_time() -> None:
    assert next_fire("rate(7 days)", "UTC", AFTER) is None


def test_a_one_time_schedule_fires_at_its_time_in_its_zone() -> None:
    assert next_fire("at(2026-12-24T18:00:00)", "Europe/Paris", AFTER) == datetime(
        2026, 12, 24, 17, tzinfo=UTC
    )


def test_both_day_fields_set_is_refused() -> None:
    with pytest.raises(ScheduleError, match="exactly one of day-of-month and day-of-week"):
        parse_cron("cron(0 6 1 * TUE *)")


def test_five_fields_are_refused_naming_the_six_expected() -> None:
    with pytest.raises(ScheduleError, match="has 5 fields"):
        parse_cron("cron(0 6 ? * TUE)")


def test_an_out_of_range_hour_is_refused_naming_the_field() -> None:
    with pytest.raises(ScheduleError, match="hours: '24' is outside 0-23"):
        parse_cron("cron(0 24 ? * TUE *)")


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ScheduleError, match="Mars/Olympus"):
        next_fire("cron(0 6 ? * TUE *)", "Mars/Olympus", AFTER)
