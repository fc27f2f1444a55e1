"""The agent stops the model, its children included, whenever the run must end early: past
the task's max_runtime_seconds, on SIGTERM, and when the execution is aborted under it."""

from __future__ import annotations

import os
import signal

import pytest

from local_aws.server import LocalAws
from tests.agent_integration.conftest import (
    SLEEPER_COMMAND,
    AgentProcess,
    FinishedRun,
    WeeklyRun,
    run_weekly_execution,
)

pytestmark = pytest.mark.slow


def sigterm_the_agent(run: WeeklyRun, execution_arn: str, agent: AgentProcess) -> None:
    """What `systemctl stop instance-agent` does, once the model runs."""
    agent.wait_for_model()
    os.kill(agent.process.pid, signal.SIGTERM)


def abort_the_execution(run: WeeklyRun, execution_arn: str, agent: AgentProcess) -> None:
    """An operator's StopExecution from the console, once the model runs."""
    agent.wait_for_model()
    run.aws.client("stepfunctions").stop_execution(
        executionArn=execution_arn, error="Operator", cause="stopped from the console"
    )


@pytest.fixture(scope="module")
def timed_out(
    _local_aws_session: LocalAws, tmp_path_factory: pytest.TempPathFactory
) -> FinishedRun:
    return run_weekly_execution(
        _local_aws_session,
        tmp_path_factory.mktemp("timed-out"),
        SLEEPER_COMMAND,
        execution_input={"max_runtime_seconds": 2},
    )


@pytest.fixture(scope="module")
def terminated(
    _local_aws_session: LocalAws, tmp_path_factory: pytest.TempPathFactory
) -> FinishedRun:
    return run_weekly_execution(
        _local_aws_session,
        tmp_path_factory.mktemp("sigterm"),
        SLEEPER_COMMAND,
        during=sigterm_the_agent,
    )


@pytest.fixture(scope="module")
def aborted(_local_aws_session: LocalAws, tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    return run_weekly_execution(
        _local_aws_session,
        tmp_path_factory.mktemp("aborted"),
        SLEEPER_COMMAND,
        during=abort_the_execution,
    )


# ---- past max_runtime_seconds --------------------------------------------------------------


def test_a_model_past_its_runtime_fails_the_execution_with_model_run_timed_out(
    timed_out: FinishedRun,
) -> None:
    assert timed_out.execution["status"] == "FAILED", timed_out.agent_log
    assert timed_out.execution["error"] == "ModelRunTimedOut"
    assert "max_runtime_seconds=2" in timed_out.cause.splitlines()[0]


def test_a_timed_out_model_and_its_children_are_killed(timed_out: FinishedRun) -> None:
    assert timed_out.model_pids_alive == []


def test_a_timed_out_run_still_shuts_the_instance_down(timed_out: FinishedRun) -> None:
    assert timed_out.shutdown_calls == ["-h now"]
    assert timed_out.instance_state in ("shutting-down", "terminated")


# ---- SIGTERM while the model runs ----------------------------------------------------------


def test_sigterm_fails_the_execution_naming_the_signal(terminated: FinishedRun) -> None:
    assert terminated.execution["status"] == "FAILED", terminated.agent_log
    assert terminated.execution["error"] == "AgentError"
    assert f"signal {signal.SIGTERM.value}" in terminated.cause.splitlines()[0]


def test_sigterm_kills_the_model_and_its_children(terminated: FinishedRun) -> None:
    assert terminated.model_pids_alive == []


def test_sigterm_still_shuts_the_instance_down(terminated: FinishedRun) -> None:
    assert terminated.shutdown_calls == ["-h now"]


# ---- the execution aborted under the agent -------------------------------------------------


def test_an_aborted_execution_stays_aborted(aborted: FinishedRun) -> None:
    assert aborted.execution["status"] == "ABORTED", aborted.agent_log


def test_an_aborted_execution_stops_the_model_within_seconds(aborted: FinishedRun) -> None:
    assert aborted.model_pids_alive == []
    # One heartbeat interval to notice, the kill grace, the upload of nothing: seconds.
    assert aborted.agent_exit_after_end < 15, aborted.agent_log


def test_an_aborted_execution_still_shuts_the_instance_down(aborted: FinishedRun) -> None:
    # StopExecution runs no Catch, so no StopInstance: the agent's shutdown is the net here.
    assert aborted.shutdown_calls == ["-h now"]
    assert aborted.agent_exit_code == 1
