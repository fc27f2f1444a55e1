"""The failure matrix: every path of a weekly run ends with its instance terminated.

Each case is a real execution through the local AWS (the deployed state machine, the real
launcher, the real agent as a process per instance, the nets outside the execution), with short
timeouts. Each asserts the execution's final status and error name, that every instance of the
execution was terminated within TERMINATED_WITHIN_SECONDS of the execution's end, that a failed
run left no results manifest, and that no agent or model process outlived its instance.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from typing import Any

import pytest

from local_aws import faults
from local_aws.local_run import LocalRun, Nets, RunOutcome
from local_aws.process_machine import KillPoint
from tests.matrix.conftest import MakeRun
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

# From the execution's end (its stopDate) to the supervisor seeing the instance terminated.
# Negative when StopInstance terminated it before the execution ended, as on the happy path.
TERMINATED_WITHIN_SECONDS = 10.0
# After the instance is terminated, its agent and model processes must be gone within this.
NO_PROCESS_WITHIN_SECONDS = 5.0
# RunModel's HeartbeatSeconds, and how often the agent beats (Terraform's minimum is 5 s).
HEARTBEAT_SECONDS = 6
AGENT_HEARTBEAT_SECONDS = 1
EXECUTION_TIMEOUT_SECONDS = 60
# Case 5: the state machine's own timeout is the only thing that ends the execution.
SHORT_EXECUTION_TIMEOUT_SECONDS = 8
# How often the launcher's boto3 clients try one call before the error reaches the workflow's
# Retry: functions/launcher/clients.py sets max_attempts=4, which botocore counts as retries
# after the first call.
LAUNCHER_SDK_ATTEMPTS = 5
# AWS names the error of a timed-out execution States.Timeout and keeps StopExecution's error
# for an aborted one (moto 5.2.5 recorded neither; local_aws/moto_workarounds.py restores both).
TIMED_OUT_ERROR = "States.Timeout"
ABORTED_ERROR = "Operator"

SETTINGS: dict[str, Any] = {
    "heartbeat_timeout_seconds": HEARTBEAT_SECONDS,
    "activity_timeout_seconds": 40,
    "execution_timeout_seconds": EXECUTION_TIMEOUT_SECONDS,
    "max_runtime_seconds": 20,
}
AGENT_CONFIG: dict[str, Any] = {"heartbeat_interval_seconds": AGENT_HEARTBEAT_SECONDS}


def slow_scorer(seconds: float) -> list[str]:
    """The demo scorer, after ``seconds`` of work: time for the test to act mid-run."""
    scorer = shlex.join([sys.executable, "-m", "local_aws.demo_model.score"])
    return ["sh", "-c", f"sleep {seconds} && exec {scorer}"]


def settings(**overrides: Any) -> dict[str, Any]:
    return {**SETTINGS, **overrides}


def task_taken(run: LocalRun, execution_arn: str) -> bool:
    return any(e.type == "ActivityStarted" for e in run.history(execution_arn))


def assert_ended(
    run: LocalRun, execution_arn: str, *, status: str, error: str | None
) -> RunOutcome:
    """The checks every case makes; returns the outcome for the case's own."""
    run.wait_for_end(execution_arn, EXECUTION_TIMEOUT_SECONDS + 15)
    run.wait_for_instances_terminated(execution_arn, TERMINATED_WITHIN_SECONDS + 5)
    outcome = run.outcome(execution_arn)
    assert (outcome.status, outcome.error) == (status, error), outcome.cause
    assert len(outcome.instance_states) == 1, outcome.instance_states
    assert outcome.all_instances_terminated, outcome.instance_states
    assert outcome.stopped_at is not None
    for instance_id in outcome.instance_states:
        seen = outcome.terminated_at(instance_id)
        assert seen is not None, f"the supervisor never saw {instance_id} terminated"
        assert seen - outcome.stopped_at <= TERMINATED_WITHIN_SECONDS
    if status != "SUCCEEDED":
        assert not outcome.manifest_present, "a failed run must leave no results manifest"
    wait_until(lambda: not run.live_processes(), NO_PROCESS_WITHIN_SECONDS, "no process left")
    return outcome


def test_01_happy_path(make_run: MakeRun) -> None:
    run = make_run(settings=settings(), config_overrides=AGENT_CONFIG)
    arn = run.start_execution("case-01")
    outcome = assert_ended(run, arn, status="SUCCEEDED", error=None)
    assert outcome.manifest_present
    task_output = outcome.task_output
    assert task_output is not None
    assert {"model_copy", "model_run", "results_upload"} <= set(task_output["timings"])


def test_02_model_command_exits_non_zero(make_run: MakeRun) -> None:
    run = make_run(
        settings=settings(), config_overrides=AGENT_CONFIG, model_command=["sh", "-c", "exit 3"]
    )
    arn = run.start_execution("case-02")
    outcome = assert_ended(run, arn, status="FAILED", error="ModelCommandFailed")
    assert "3" in (outcome.cause or "")


def test_03_model_command_hangs_past_max_runtime(make_run: MakeRun) -> None:
    run = make_run(
        settings=settings(max_runtime_seconds=2),
        config_overrides=AGENT_CONFIG,
        model_command=["sleep", "600"],
    )
    arn = run.start_execution("case-03")
    assert_ended(run, arn, status="FAILED", error="ModelRunTimedOut")


def test_04_agent_killed_after_taking_the_task(make_run: MakeRun) -> None:
    run = make_run(
        settings=settings(),
        config_overrides=AGENT_CONFIG,
        model_command=slow_scorer(30),
        kill_agent=KillPoint.AFTER_TASK_TAKEN,
    )
    arn = run.start_execution("case-04")
    # The heartbeats stop; the workarounds name the miss as AWS does (moto said States.Timeout).
    assert_ended(run, arn, status="FAILED", error="States.HeartbeatTimeout")


def test_05_agent_dies_before_ever_polling(make_run: MakeRun, matrix_aws: Any) -> None:
    run = make_run(
        settings=settings(execution_timeout_seconds=SHORT_EXECUTION_TIMEOUT_SECONDS),
        kill_agent=KillPoint.BEFORE_POLL,
    )
    assert run.watcher is not None
    assert run.ticker is not None
    # The state-machine timeout ends the execution; no Catch runs, the rule's cleanup does.
    arn = run.start_execution("case-05-rule")
    outcome = assert_ended(run, arn, status="TIMED_OUT", error=TIMED_OUT_ERROR)
    (instance_id,) = outcome.instance_states
    cleanups = [d for d in run.watcher.deliveries if d.payload.get("action") == "cleanup"]
    assert [d.payload for d in cleanups] == [
        {"action": "cleanup", "execution_arn": arn, "status": "TIMED_OUT"}
    ]
    assert cleanups[0].response["terminated"] == [instance_id]

    # With no rule firing, the instance outlives its execution until the sweeper's lifetime.
    events = matrix_aws.client("events")
    events.disable_rule(Name=run.deployed.execution_rule_name)
    stranded_arn = run.start_execution("case-05-sweeper")
    run.wait_for_end(stranded_arn, SHORT_EXECUTION_TIMEOUT_SECONDS + 15)
    time.sleep(2 * Nets().sweep_interval_seconds)
    (stranded,) = run.instance_states(stranded_arn)
    assert run.instance_states(stranded_arn) == {stranded: "running"}
    faults.backdate_launch(matrix_aws, stranded, run.settings.max_instance_lifetime_minutes * 60)
    wait_until(
        lambda: run.instance_states(stranded_arn) == {stranded: "terminated"},
        TERMINATED_WITHIN_SECONDS,
        "the sweeper terminates the instance past its lifetime",
    )
    swept = [d for d in run.ticker.deliveries if d.response and d.response.get("terminated")]
    assert [d.response["terminated"] for d in swept] == [[stranded]]
    wait_until(lambda: not run.live_processes(), NO_PROCESS_WITHIN_SECONDS, "no process left")


def test_06_model_object_missing(make_run: MakeRun) -> None:
    run = make_run(settings=settings(), config_overrides=AGENT_CONFIG, publish=False)
    arn = run.start_execution("case-06")
    assert_ended(run, arn, status="FAILED", error="ModelNotFound")


def test_07_model_file_corrupted(make_run: MakeRun, matrix_aws: Any) -> None:
    run = make_run(settings=settings(), config_overrides=AGENT_CONFIG)
    faults.corrupt_object(
        matrix_aws, run.deployed.bucket_name, run.settings.model_prefix + "weights.npz"
    )
    arn = run.start_execution("case-07")
    outcome = assert_ended(run, arn, status="FAILED", error="ModelChecksumMismatch")
    assert "weights.npz" in (outcome.cause or "")


def test_08_no_instance_store_disk(make_run: MakeRun) -> None:
    run = make_run(settings=settings(), config_overrides=AGENT_CONFIG, instance_store=False)
    arn = run.start_execution("case-08")
    assert_ended(run, arn, status="FAILED", error="NoInstanceStore")


def test_09_execution_aborted(make_run: MakeRun, matrix_aws: Any) -> None:
    run = make_run(
        settings=settings(), config_overrides=AGENT_CONFIG, model_command=["sleep", "600"]
    )
    assert run.watcher is not None
    arn = run.start_execution("case-09")
    wait_until(lambda: task_taken(run, arn), 30, "the agent takes the task")
    matrix_aws.client("stepfunctions").stop_execution(
        executionArn=arn, error="Operator", cause="aborted from the console"
    )
    outcome = assert_ended(run, arn, status="ABORTED", error=ABORTED_ERROR)
    (cleanup,) = [d for d in run.watcher.deliveries if d.payload.get("action") == "cleanup"]
    assert cleanup.payload["status"] == "ABORTED"
    assert cleanup.response["terminated"] == list(outcome.instance_states)


def test_10_launcher_stop_fails_transiently_and_is_retried(make_run: MakeRun) -> None:
    # The agent's own shutdown is switched off, so only StopInstance can end the instance.
    run = make_run(
        settings=settings(),
        config_overrides={**AGENT_CONFIG, "shutdown_command": ["true"]},
    )
    with faults.throttled_terminations(times=LAUNCHER_SDK_ATTEMPTS) as fault:
        arn = run.start_execution("case-10")
        outcome = assert_ended(run, arn, status="SUCCEEDED", error=None)
    assert fault.refused == LAUNCHER_SDK_ATTEMPTS
    stop_failures = [
        e.details.get("error")
        for e in outcome.history
        if e.type in ("TaskFailed", "LambdaFunctionFailed")
        and "StopInstance" in _state_of(e, outcome)
    ]
    assert stop_failures == ["LauncherTransientError"]


def _state_of(event: Any, outcome: RunOutcome) -> str:
    """The state a task event belongs to: the last state entered before it."""
    state = ""
    for candidate in outcome.history:
        if candidate.at > event.at:
            break
        if candidate.type.endswith("StateEntered") and candidate.state:
            state = candidate.state
    return state


def test_11_start_invoked_twice_for_one_execution(make_run: MakeRun, matrix_aws: Any) -> None:
    run = make_run(settings=settings(), config_overrides=AGENT_CONFIG, model_command=slow_scorer(3))
    arn = run.start_execution("case-11")
    wait_until(lambda: task_taken(run, arn), 30, "the agent takes the task")
    (scheduled,) = [
        e
        for e in run.history(arn)
        if e.type == "TaskScheduled" and "Payload" in e.details.get("parameters", "")
    ][:1]
    start_event = json.loads(scheduled.details["parameters"])["Payload"]
    assert start_event["action"] == "start"
    first_instance = next(iter(run.instance_states(arn)))
    response = matrix_aws.client("lambda").invoke(
        FunctionName=run.deployed.launcher_function_arn, Payload=json.dumps(start_event).encode()
    )
    again = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, again
    assert (again["instance_id"], again["reused"]) == (first_instance, True)
    outcome = assert_ended(run, arn, status="SUCCEEDED", error=None)
    assert list(outcome.instance_states) == [first_instance]


def test_12_second_execution_while_one_is_running(make_run: MakeRun) -> None:
    run = make_run(settings=settings(), config_overrides=AGENT_CONFIG, model_command=slow_scorer(3))
    first = run.start_execution("case-12-first")
    wait_until(lambda: task_taken(run, first), 30, "the first run's agent takes the task")
    second = run.start_execution("case-12-second")
    run.wait_for_end(second, 30)
    refused = run.outcome(second)
    assert (refused.status, refused.error) == ("FAILED", "RunAlreadyInProgress")
    assert first in (refused.cause or "")
    assert refused.instance_states == {}
    assert not refused.manifest_present
    assert_ended(run, first, status="SUCCEEDED", error=None)


def test_13_heartbeats_throttled_for_a_while(make_run: MakeRun) -> None:
    run = make_run(
        settings=settings(heartbeat_timeout_seconds=10),
        config_overrides=AGENT_CONFIG,
        model_command=slow_scorer(6),
    )
    with faults.throttled_heartbeats(seconds=3) as fault:
        arn = run.start_execution("case-13")
        assert_ended(run, arn, status="SUCCEEDED", error=None)
    assert fault.refused >= 2, fault


def test_14_results_upload_fails(make_run: MakeRun) -> None:
    run = make_run(settings=settings(), config_overrides=AGENT_CONFIG)
    with faults.failed_uploads("runs/") as fault:
        arn = run.start_execution("case-14")
        assert_ended(run, arn, status="FAILED", error="ResultsUploadFailed")
    assert fault.refused >= 1
