"""The demo's command line and its timeline text (the end-to-end runs are in tests/end_to_end)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from local_aws.demo import build_parser, execution_name, options_from, settings_from
from local_aws.process_machine import KillPoint
from local_aws.timeline import Phase, timeline_text


def test_defaults_give_a_healthy_run_with_the_embedded_scorer() -> None:
    args = build_parser().parse_args([])
    options = options_from(args)
    assert options.instance_store is True
    assert options.kill_agent is None
    assert "local_aws.demo_model.score" in " ".join(options.model_command or [])


def test_the_model_command_is_split_like_a_shell_would() -> None:
    args = build_parser().parse_args(["--model-command", "sh -c 'exit 3'"])
    assert options_from(args).model_command == ["sh", "-c", "exit 3"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model-command", ""], "the model command is empty"),
        (["--model-command", "sh -c 'unclosed"], "cannot split"),
        (["--max-runtime", "0"], "--max-runtime"),
        (["--kill-agent", "sometimes"], "--kill-agent"),
        (["--max-runtime", "604801"], "max_runtime_seconds"),
        (["--heartbeat-timeout", "6"], "bounds Terraform's heartbeat_timeout_seconds"),
        (["--execution-timeout", "120"], "bounds Terraform's execution_timeout_seconds"),
        (["--execution-timeout", "ten"], "is not a whole number"),
    ],
)
def test_a_bad_option_is_refused_naming_it(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(argv)
    assert refused.value.code == 2
    assert message in capsys.readouterr().err


def test_kill_agent_maps_to_the_supervisor_kill_points() -> None:
    parse = build_parser().parse_args
    assert options_from(parse(["--kill-agent", "before-poll"])).kill_agent is KillPoint.BEFORE_POLL
    assert options_from(parse(["--kill-agent", "after-task"])).kill_agent is (
        KillPoint.AFTER_TASK_TAKEN
    )


def test_timeouts_keep_the_sweeper_behind_the_execution_timeout() -> None:
    settings = settings_from(build_parser().parse_args(["--execution-timeout", "600"]))
    assert settings.execution_timeout_seconds == 600
    assert settings.max_instance_lifetime_minutes * 60 > settings.execution_timeout_seconds
    assert settings.activity_timeout_seconds > settings.max_runtime_seconds


def test_execution_names_carry_the_utc_time() -> None:
    moment = datetime(2026, 11, 24, 6, 0, 5, tzinfo=UTC)
    assert execution_name(moment) == "demo-20261124-060005"


def test_the_timeline_text_places_each_phase_and_marks_the_unreached() -> None:
    phases = [
        Phase("deploy", 100.0, 102.0),
        Phase("start", 102.0, 103.0),
        Phase("run", None, None, "not reached"),
    ]
    lines = timeline_text(phases, origin=100.0).splitlines()
    assert lines[0].split() == ["phase", "at", "took"]
    assert lines[1].split()[:3] == ["deploy", "0.00s", "2.00s"]
    assert lines[2].split()[:3] == ["start", "2.00s", "1.00s"]
    # The bars share one scale: deploy fills two thirds, start the last third.
    assert lines[1].count("#") == 27
    assert lines[2].count("#") == 13
    assert lines[3].split() == ["run", "-", "-", "not", "reached"]


def test_a_heartbeat_timeout_the_execution_timeout_would_beat_is_refused() -> None:
    args = build_parser().parse_args(["--heartbeat-timeout", "300", "--execution-timeout", "300"])
    with pytest.raises(SystemExit, match="must be below --execution-timeout"):
        settings_from(args)


def test_vm_refuses_the_process_backends_kill_knob() -> None:
    from local_aws.demo import DemoError, vm_backend

    args = build_parser().parse_args(["--vm", "--kill-agent", "after-task"])
    with pytest.raises(DemoError, match=r"--kill-agent .* --vm"):
        vm_backend(args)
