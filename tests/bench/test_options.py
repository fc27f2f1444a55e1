"""The command line: defaults, and every bad value refused with the option's name."""

from pathlib import Path

import pytest

from bench.cli import main
from bench.clients import ALL_CLIENTS
from bench.options import parse_options


def test_defaults_are_2_gib_5_runs_every_client_and_ratios_to_the_agent() -> None:
    options = parse_options([])
    assert options.size == 2 * 1024**3
    assert options.runs == 5
    assert options.clients == ALL_CLIENTS
    assert options.baseline == "agent"
    assert options.output == Path(".bench/latest.json").resolve()


def test_clients_can_be_chosen_and_keep_their_order() -> None:
    options = parse_options(["--clients", "s5cmd, agent", "--baseline", "s5cmd"])
    assert options.clients == ("s5cmd", "agent")


def test_boto3_tuned_given_by_hand_sets_part_size_and_threads() -> None:
    tuned = parse_options(["--boto3-tuned", "64MiB:4"]).client_options.boto3_tuned
    assert tuned == {
        "multipart_threshold": 64 * 1024**2,
        "multipart_chunksize": 64 * 1024**2,
        "max_concurrency": 4,
    }


def test_agent_settings_are_passed_as_a_json_object() -> None:
    options = parse_options(["--agent-settings", '{"max_concurrency": 8}'])
    assert options.client_options.agent_settings == {"max_concurrency": 8}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--runs", "0"], "--runs: 0 is less than 1"),
        (["--size", "big"], "--size: 'big' is not a size"),
        (["--clients", "agent,rclone"], "--clients: rclone is not a client"),
        (
            ["--clients", "s5cmd,s5cmd", "--baseline", "s5cmd"],
            "--clients: 's5cmd,s5cmd' names a client twice",
        ),
        (["--clients", "s5cmd"], "--baseline: 'agent' is not among --clients"),
        (["--timeout", "0"], "--timeout: 0.0 must be a positive number"),
        (["--agent-settings", "{"], "--agent-settings: not valid JSON"),
        (["--agent-settings", "[1]"], "--agent-settings: must be a JSON object"),
        (
            ["--agent-settings", '{"streams": 4}'],
            "--agent-settings: unknown CopySettings field.* streams;",
        ),
        (["--agent-settings", '{"slice_size": 1}'], "--agent-settings: slice_size is 1"),
        (["--boto3-tuned", "64MiB"], "--boto3-tuned: '64MiB' must be PART_SIZE:CONCURRENCY"),
        (["--boto3-tuned", "64MiB:none"], "--boto3-tuned: 'none' is not a positive integer"),
        (["--grid-concurrency", "2,0"], "--grid-concurrency: '0' is not a positive integer"),
        (["--ceiling-streams", "0"], "--ceiling-streams: 0 must be at least 1"),
    ],
)
def test_bad_values_are_refused_naming_the_option(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_options(argv)


def test_main_reports_a_bad_value_and_exits_2_before_doing_anything(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["--runs", "0", "--work-dir", str(tmp_path / "w")]) == 2
    assert "python -m bench: --runs: 0 is less than 1" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
