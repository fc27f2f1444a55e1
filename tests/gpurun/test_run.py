"""``gpurun run`` following the weekly-run state machine to its end in the local AWS (the
launcher's code in the local Lambda runtime, an agent played by a thread)."""

from __future__ import annotations

from typing import Any

import pytest

from local_aws.server import LocalAws
from tests.gpurun.cli_helpers import gpurun
from tests.gpurun.conftest import REGION
from tests.support.workflow import WeeklyRun, agent

# Runs through the local AWS (deployed workflow, executions): make unit leaves them out.
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _cli_against_the_local_aws(cli_env: LocalAws) -> None:
    """Every ``gpurun`` of this module talks to the local AWS."""


def run_flags(weekly_run: WeeklyRun) -> list[str]:
    return [
        "--region",
        REGION,
        "--endpoint-url",
        weekly_run.run.aws.endpoint_url,
        "--state-machine-arn",
        weekly_run.state_machine_arn,
    ]


def test_run_follows_a_successful_execution_phase_by_phase_and_exits_0(
    weekly_run: WeeklyRun,
) -> None:
    worker = agent(weekly_run, "succeed")

    result = gpurun("run", *run_flags(weekly_run), "--poll-seconds", "0.2", "--name", "manual-1")
    worker.join()

    assert result.code == 0, result.err
    instance_id = worker.task_input["instance_id"]
    lines = result.out.splitlines()
    assert lines[0] == "started manual-1"
    assert any("StartInstance" in line and f"instance {instance_id}" in line for line in lines)
    assert any("the agent took the task (agent)" in line for line in lines)
    assert any("model run done (copy_model 1.5s, run_model 20.0s)" in line for line in lines)
    assert any(f"terminated ['{instance_id}']" in line for line in lines)
    assert lines[-1] == "manual-1: SUCCEEDED"


def test_run_phases_come_in_the_order_they_happened(weekly_run: WeeklyRun) -> None:
    worker = agent(weekly_run, "succeed")

    result = gpurun("run", *run_flags(weekly_run), "--poll-seconds", "0.2", "--json")
    worker.join()

    events = result.json_lines()
    assert events[0]["event"] == "started"
    assert events[-1]["event"] == "end"
    phases = [e for e in events if e["event"] == "phase"]
    entered = [p["phase"] for p in phases if p["message"] == "entered"]
    assert entered == [
        "LoadRunDefaults",
        "ApplyDefaults",
        "StartInstance",
        "RunModel",
        "StopInstance",
        "DidTheRunFail",
        "RunSucceeded",
    ]


def test_run_of_a_failing_model_exits_1_with_the_agents_error(weekly_run: WeeklyRun) -> None:
    worker = agent(weekly_run, "fail")

    result = gpurun("run", *run_flags(weekly_run), "--poll-seconds", "0.2", "--json")
    worker.join()

    assert result.code == 1
    end = result.json_lines()[-1]
    assert (end["event"], end["status"], end["error"]) == ("end", "FAILED", "ModelCommandFailed")


def test_run_passes_set_overrides_as_the_execution_input(weekly_run: WeeklyRun) -> None:
    worker = agent(weekly_run, "succeed")

    gpurun(
        "run",
        *run_flags(weekly_run),
        "--poll-seconds",
        "0.2",
        "--set",
        "max_runtime_seconds=120",
        "--set",
        "parameters.week=48",
    )
    worker.join()

    assert worker.task_input["max_runtime_seconds"] == 120
    assert worker.task_input["parameters"] == {"week": 48}


def test_run_refuses_an_unknown_key_before_starting_anything(weekly_run: WeeklyRun) -> None:
    result = gpurun("run", *run_flags(weekly_run), "--set", "instance_type=g5.xlarge")

    assert result.code == 2
    assert "instance_type: not a run parameter" in result.err
    executions = weekly_run.sfn.list_executions(stateMachineArn=weekly_run.state_machine_arn)
    assert executions["executions"] == []


def executions(weekly_run: WeeklyRun) -> list[dict[str, Any]]:
    listed = weekly_run.sfn.list_executions(stateMachineArn=weekly_run.state_machine_arn)
    return list(listed["executions"])


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("max_runtime_seconds=abc", "--set max_runtime_seconds: Input should be a valid integer"),
        ("max_runtime_seconds=0", "--set max_runtime_seconds: Input should be greater than"),
        ("instance_types=G5", "--set instance_types.0: 'G5' is not an EC2 instance type"),
        ("model_prefix=models/../x/", "--set model_prefix: must not contain '.' or '..'"),
        ("parameters.week=48", None),
    ],
)
def test_run_checks_every_set_value_with_the_launchers_model_before_starting_anything(
    weekly_run: WeeklyRun, assignment: str, expected: str | None
) -> None:
    result = gpurun("run", *run_flags(weekly_run), "--set", assignment, "--no-follow")

    if expected is None:
        assert result.code == 0, result.err
        weekly_run.sfn.stop_execution(executionArn=executions(weekly_run)[0]["executionArn"])
        return
    assert result.code == 2
    assert "the launcher would refuse these run parameters, so no run was started" in result.err
    assert expected in result.err
    assert "Traceback" not in result.err
    assert executions(weekly_run) == []


def test_run_refuses_while_a_run_is_in_progress_and_names_it(weekly_run: WeeklyRun) -> None:
    running_arn, running_name = weekly_run.start({})

    result = gpurun("run", *run_flags(weekly_run), "--no-follow")

    assert result.code == 2
    assert f"a run is in progress ({running_name})" in result.err
    assert f"gpurun follow {running_name}" in result.err
    assert f"gpurun cancel {running_name}" in result.err
    assert [e["executionArn"] for e in executions(weekly_run)] == [running_arn]
    weekly_run.sfn.stop_execution(executionArn=running_arn)


def test_run_prints_the_commands_that_follow_cancel_and_read_the_logs_of_the_run(
    weekly_run: WeeklyRun,
) -> None:
    flags = run_flags(weekly_run)

    result = gpurun("run", *flags, "--name", "manual-2", "--no-follow")

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    connection = (
        f"--endpoint-url {weekly_run.run.aws.endpoint_url} --region {REGION} "
        f"--state-machine-arn {weekly_run.state_machine_arn}"
    )
    assert f"  follow: gpurun follow manual-2 {connection}" in lines
    assert f"  cancel: gpurun cancel manual-2 {connection}" in lines
    assert f"  logs:   gpurun logs manual-2 {connection}" in lines
    weekly_run.sfn.stop_execution(executionArn=executions(weekly_run)[0]["executionArn"])


def test_follow_reattaches_to_a_run_and_exits_with_its_outcome(weekly_run: WeeklyRun) -> None:
    worker = agent(weekly_run, "fail")
    _, name = weekly_run.start({})

    result = gpurun("follow", name, *run_flags(weekly_run), "--poll-seconds", "0.2")
    worker.join()

    assert result.code == 1
    lines = result.out.splitlines()
    assert any("StartInstance" in line and "entered" in line for line in lines)
    assert any("the agent took the task (agent)" in line for line in lines)
    assert lines[-1].startswith(f"{name}: FAILED (ModelCommandFailed")


def test_follow_of_an_unknown_run_points_to_status(weekly_run: WeeklyRun) -> None:
    result = gpurun("follow", "no-such-run", *run_flags(weekly_run))

    assert result.code == 2
    assert "no run 'no-such-run'" in result.err
    assert "gpurun status" in result.err


def test_run_with_a_timeout_returns_5_while_the_execution_still_runs(
    weekly_run: WeeklyRun,
) -> None:
    result = gpurun("run", *run_flags(weekly_run), "--poll-seconds", "0.2", "--timeout", "0.5")

    assert result.code == 5
    arn = result.out.splitlines()[1].strip()
    weekly_run.sfn.stop_execution(executionArn=arn)
