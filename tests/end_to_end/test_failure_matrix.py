"""The failure matrix: every path of a weekly run ends with its instance terminated.

Each case is a real execution through the local AWS (see conftest.py), run once by a
module-scoped fixture; its first test asserts what every case must show (status and error name,
its instance terminated within TERMINATED_WITHIN_SECONDS of the execution's end, no results
manifest for a failed run, no agent or model process outliving the instance), the others one
behaviour of that case each.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from local_aws import faults
from local_aws.local_run import LocalRun, Nets, RunOutcome
from local_aws.process_machine import KillPoint
from local_aws.timeline import phases_of
from tests.conftest import MakeRun
from tests.end_to_end.conftest import (
    AGENT_CONFIG,
    AMI_PYTHON_VERSION,
    NO_PROCESS_WITHIN_SECONDS,
    TERMINATED_WITHIN_SECONDS,
    FinishedRun,
    RunCase,
    ami_python,
    assert_agent_exited_after_its_shutdown,
    assert_ended_cleanly,
    process_machine,
    settings,
    task_taken,
    wait_for_model,
)
from tests.end_to_end.model_commands import (
    CONTRACT_SCORER_COMMAND,
    FAILING_COMMAND,
    SLEEPER_COMMAND,
    slow_scorer,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

# Case 5: the state machine's own timeout is the only thing that ends the execution.
SHORT_EXECUTION_TIMEOUT_SECONDS = 8
# How often the launcher's boto3 clients try one call before the error reaches the workflow's
# Retry: functions/launcher/clients.py sets max_attempts=4, which botocore counts as retries
# after the first call.
LAUNCHER_SDK_ATTEMPTS = 5
# AWS names the error of a timed-out execution States.Timeout and keeps StopExecution's error
# for an aborted one (moto 5.2.5 recorded neither; local_aws/moto_workarounds restores both).
TIMED_OUT_ERROR = "States.Timeout"
ABORTED_ERROR = "Operator"
CORRUPTED_FILE = "weights.npz"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def published_files(model_dir: Path) -> dict[str, bytes]:
    return {
        path.relative_to(model_dir).as_posix(): path.read_bytes()
        for path in sorted(model_dir.rglob("*"))
        if path.is_file()
    }


def model_results(finished: FinishedRun) -> dict[str, bytes]:
    """The results prefix without the run record: what the model wrote, and the manifest."""
    record = finished.results_prefix + "run.json"
    return {key: data for key, data in finished.results.items() if key != record}


# ---- 01: the happy path ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def case_01(case: RunCase) -> FinishedRun:
    return case(name="case-01", model_command=CONTRACT_SCORER_COMMAND)


def test_01_happy_path_succeeds_and_terminates_its_instance(case_01: FinishedRun) -> None:
    assert_ended_cleanly(case_01, status="SUCCEEDED", error=None)
    assert case_01.outcome.manifest_present


def test_01_the_output_names_the_results_location(case_01: FinishedRun) -> None:
    assert case_01.outcome.output is not None
    result = case_01.outcome.output["result"]
    assert result["instance_id"] == case_01.instance_id
    assert result["results"] == {
        "bucket": case_01.outcome.bucket,
        "prefix": case_01.results_prefix,
        "manifest_key": case_01.results_prefix + "_manifest.json",
    }


def test_01_the_output_carries_every_phase_timing(case_01: FinishedRun) -> None:
    task_output = case_01.outcome.task_output
    assert task_output is not None
    for phase in ("identity", "storage", "wait_for_task", "model_copy", "model_run", "total"):
        assert task_output["timings"][phase] >= 0, phase


def test_01_the_model_sees_the_published_bytes_in_model_dir(
    case_01: FinishedRun, demo_model: Path
) -> None:
    expected = "".join(
        f"{name} {sha256(data)}\n" for name, data in published_files(demo_model).items()
    )
    assert case_01.result("result.txt").decode() == expected


def test_01_the_model_sees_the_task_input_and_run_name(case_01: FinishedRun) -> None:
    details = json.loads(case_01.result("details/task.json"))
    assert details == {"run_name": "case-01", "parameters": {"threshold": 0.5}}


def test_01_the_results_manifest_lists_every_uploaded_file(case_01: FinishedRun) -> None:
    prefix = case_01.results_prefix
    manifest = json.loads(case_01.result("_manifest.json"))
    uploaded = {k: v for k, v in model_results(case_01).items() if k != prefix + "_manifest.json"}
    assert sorted(uploaded) == [prefix + "details/task.json", prefix + "result.txt"]
    assert manifest["files"] == [
        {"key": key, "size": len(data), "sha256": sha256(data)}
        for key, data in sorted(uploaded.items())
    ]


def test_01_the_results_manifest_is_the_last_object_written(case_01: FinishedRun) -> None:
    manifest = case_01.results_prefix + "_manifest.json"
    assert case_01.s3_writes[-1] == manifest
    assert case_01.s3_writes.count(manifest) == 1


def test_01_the_agent_shuts_down_once_and_exits(case_01: FinishedRun) -> None:
    assert_agent_exited_after_its_shutdown(case_01)


def test_01_the_models_output_is_in_the_agents_log(case_01: FinishedRun, demo_model: Path) -> None:
    assert f"scored {len(published_files(demo_model))} model file(s)" in case_01.agent_log


# ---- 02: the model command exits non-zero ----------------------------------------------------


@pytest.fixture(scope="module")
def case_02(case: RunCase) -> FinishedRun:
    return case(model_command=FAILING_COMMAND)


def test_02_a_failing_model_fails_with_model_command_failed(case_02: FinishedRun) -> None:
    assert_ended_cleanly(case_02, status="FAILED", error="ModelCommandFailed")


def test_02_the_cause_starts_with_the_exit_code_and_carries_stderr(case_02: FinishedRun) -> None:
    assert re.match(r"the model command exited with code 3\b", case_02.cause), case_02.cause
    assert "scorer: CUDA out of memory on batch 7" in case_02.cause


def test_02_a_failed_model_uploads_no_results(case_02: FinishedRun) -> None:
    assert model_results(case_02) == {}


def test_02_the_record_and_the_timeline_show_the_phases_that_ran(case_02: FinishedRun) -> None:
    timings = case_02.outcome.record_timings or {}
    assert {"model_copy", "model_run"} <= set(timings), timings
    assert "results_upload" not in timings
    done = {phase.name: phase.done for phase in phases_of(case_02.outcome, None)}
    assert done["copy"], done
    assert done["run"], done
    assert not done["upload"], done


def test_02_the_agent_still_shuts_down_and_exits_1(case_02: FinishedRun) -> None:
    assert case_02.shutdown_calls == ["-h now"]
    assert case_02.agent_exit_code == 1


# ---- 03: the model runs past max_runtime_seconds ---------------------------------------------


@pytest.fixture(scope="module")
def case_03(case: RunCase) -> FinishedRun:
    return case(model_command=SLEEPER_COMMAND, execution_input={"max_runtime_seconds": 2})


def test_03_a_model_past_its_runtime_fails_with_model_run_timed_out(case_03: FinishedRun) -> None:
    assert_ended_cleanly(case_03, status="FAILED", error="ModelRunTimedOut")
    assert "max_runtime_seconds=2" in case_03.cause.splitlines()[0]


def test_03_the_timed_out_model_and_its_children_are_killed(case_03: FinishedRun) -> None:
    assert case_03.model_pids_alive == []


# ---- 04: the agent is killed after it took the task ------------------------------------------


@pytest.fixture(scope="module")
def case_04(case: RunCase) -> FinishedRun:
    return case(model_command=slow_scorer(30), kill_agent=KillPoint.AFTER_TASK_TAKEN)


def test_04_a_killed_agent_fails_the_run_with_a_heartbeat_timeout(case_04: FinishedRun) -> None:
    # The heartbeats stop; the workarounds name the miss as AWS does (moto said States.Timeout).
    assert_ended_cleanly(case_04, status="FAILED", error="States.HeartbeatTimeout")


# ---- 05: the agent dies before it ever polls -------------------------------------------------

# The unit's ExecStopPost powers off a minute after the agent died; a second here.
QUICK_POWER_OFF_SECONDS = 1.0
# From the instance's termination to the execution's end, through the instance-lost rule.
LOST_WITHIN_SECONDS = 60


@pytest.fixture(scope="module")
def case_05(case: RunCase) -> FinishedRun:
    return case(
        kill_agent=KillPoint.BEFORE_POLL,
        power_off_after_agent_exit_seconds=QUICK_POWER_OFF_SECONDS,
    )


def test_05_an_agent_dead_before_polling_fails_the_run_with_instance_lost(
    case_05: FinishedRun,
) -> None:
    assert_ended_cleanly(case_05, status="FAILED", error="InstanceLost")
    assert "before the agent took the run's task" in (case_05.outcome.cause or "")


def test_05_the_run_fails_within_a_minute_of_the_instance_going(case_05: FinishedRun) -> None:
    outcome = case_05.outcome
    terminated = outcome.terminated_at(case_05.instance_id)
    assert terminated is not None
    assert outcome.stopped_at is not None
    assert outcome.stopped_at - terminated < LOST_WITHIN_SECONDS


def test_05_the_launcher_failed_the_pending_task(case_05: FinishedRun) -> None:
    answers = [d.response for d in case_05.instance_deliveries if isinstance(d.response, dict)]
    assert [a["outcome"] for a in answers if a["outcome"] != "ignored"] == ["failed_task"]


def test_05_the_run_record_names_the_lost_instance(case_05: FinishedRun) -> None:
    record = json.loads(case_05.results[case_05.results_prefix + "run.json"])
    assert record["status"] == "FAILED"
    assert record["error"]["error"] == "InstanceLost"


def test_05_without_the_instance_rule_the_state_machine_timeout_and_the_nets_end_it(
    make_run: MakeRun, local_aws: Any
) -> None:
    run = make_run(
        settings=settings(execution_timeout_seconds=SHORT_EXECUTION_TIMEOUT_SECONDS),
        nets=Nets(instance_rule=False),
        kill_agent=KillPoint.BEFORE_POLL,
    )
    watcher, ticker = run.watcher, run.ticker
    assert watcher is not None
    assert ticker is not None
    # The state-machine timeout ends the execution; no Catch runs, the rule's cleanup does.
    arn = run.start_execution("case-05-rule")
    outcome = ended(run, arn)
    assert (outcome.status, outcome.error) == ("TIMED_OUT", TIMED_OUT_ERROR)
    (instance_id,) = outcome.instance_states
    cleanups = [d for d in watcher.deliveries if d.payload.get("action") == "cleanup"]
    assert [d.payload for d in cleanups] == [
        {"action": "cleanup", "execution_arn": arn, "status": "TIMED_OUT"}
    ]
    assert cleanups[0].response["terminated"] == [instance_id]

    # With no rule firing, the instance outlives its execution until the sweeper's lifetime.
    local_aws.client("events").disable_rule(Name=run.deployed.execution_rule_name)
    stranded_arn = run.start_execution("case-05-sweeper")
    run.wait_for_end(stranded_arn, SHORT_EXECUTION_TIMEOUT_SECONDS + 15)
    ticks = len(ticker.deliveries)
    wait_until(lambda: len(ticker.deliveries) >= ticks + 2, 30, "two sweeps")
    (stranded,) = run.instance_states(stranded_arn)
    assert run.instance_states(stranded_arn) == {stranded: "running"}
    faults.backdate_launch(local_aws, stranded, run.settings.max_instance_lifetime_minutes * 60)
    wait_until(
        lambda: run.instance_states(stranded_arn) == {stranded: "terminated"},
        TERMINATED_WITHIN_SECONDS,
        "the sweeper terminates the instance past its lifetime",
    )

    # The instance can read terminated a moment before the sweep's response is recorded.
    def swept() -> list[list[str]]:
        responses = [d.response for d in ticker.deliveries if isinstance(d.response, dict)]
        return [r["terminated"] for r in responses if r.get("terminated")]

    wait_until(lambda: bool(swept()), TERMINATED_WITHIN_SECONDS, "the sweep's response")
    assert swept() == [[stranded]]
    wait_until(lambda: not run.live_processes(), NO_PROCESS_WITHIN_SECONDS, "no process left")


def ended(run: LocalRun, execution_arn: str) -> RunOutcome:
    run.wait_for_end(execution_arn, run.settings.execution_timeout_seconds + 15)
    run.wait_for_instances_terminated(execution_arn, TERMINATED_WITHIN_SECONDS + 5)
    return run.outcome(execution_arn)


# ---- 06, 07: the model is missing or corrupted -----------------------------------------------


@pytest.fixture(scope="module")
def case_06(case: RunCase) -> FinishedRun:
    return case(publish=False)


def test_06_a_missing_model_fails_with_model_not_found(case_06: FinishedRun) -> None:
    assert_ended_cleanly(case_06, status="FAILED", error="ModelNotFound")


def corrupt_weights(run: LocalRun) -> None:
    faults.corrupt_object(
        run.aws, run.deployed.bucket_name, run.settings.model_prefix + CORRUPTED_FILE
    )


@pytest.fixture(scope="module")
def case_07(case: RunCase) -> FinishedRun:
    return case(tamper=corrupt_weights, model_command=CONTRACT_SCORER_COMMAND)


def test_07_a_corrupted_model_fails_with_a_checksum_mismatch(case_07: FinishedRun) -> None:
    assert_ended_cleanly(case_07, status="FAILED", error="ModelChecksumMismatch")


def test_07_the_mismatch_names_the_file_and_what_to_do(case_07: FinishedRun) -> None:
    first_line = case_07.cause.splitlines()[0]
    assert first_line.startswith(CORRUPTED_FILE + ":"), case_07.cause
    assert "re-publish the model" in first_line


def test_07_a_corrupted_model_is_never_run(case_07: FinishedRun) -> None:
    assert "scored" not in case_07.agent_log
    assert model_results(case_07) == {}


def test_07_a_corrupted_copy_leaves_no_model_file_behind(case_07: FinishedRun) -> None:
    assert case_07.model_dir is not None
    left = sorted(p.name for p in case_07.model_dir.rglob("*") if p.is_file())
    assert CORRUPTED_FILE not in left
    assert not [name for name in left if name.endswith(".partial")]


# ---- 08: no instance store -------------------------------------------------------------------


@pytest.fixture(scope="module")
def case_08(case: RunCase) -> FinishedRun:
    return case(instance_store=False)


def test_08_without_instance_store_the_run_fails_with_no_instance_store(
    case_08: FinishedRun,
) -> None:
    assert_ended_cleanly(case_08, status="FAILED", error="NoInstanceStore")


# ---- 09: the execution is aborted under the running model ------------------------------------


def abort_once_the_model_runs(run: LocalRun, execution_arn: str) -> None:
    wait_for_model(run, execution_arn)
    run.aws.client("stepfunctions").stop_execution(
        executionArn=execution_arn, error="Operator", cause="aborted from the console"
    )


@pytest.fixture(scope="module")
def case_09(case: RunCase) -> FinishedRun:
    return case(model_command=SLEEPER_COMMAND, during=abort_once_the_model_runs)


def test_09_an_aborted_execution_stays_aborted_and_its_instance_goes(
    case_09: FinishedRun,
) -> None:
    assert_ended_cleanly(case_09, status="ABORTED", error=ABORTED_ERROR)


def test_09_the_model_and_its_children_are_stopped(case_09: FinishedRun) -> None:
    assert case_09.model_pids_alive == []


def test_09_the_execution_rule_cleans_up_after_an_abort(case_09: FinishedRun) -> None:
    (cleanup,) = [d for d in case_09.deliveries if d.payload.get("action") == "cleanup"]
    assert cleanup.payload["status"] == "ABORTED"
    # The agent, seeing its task gone, may have powered the instance off before the rule's
    # cleanup ran (a loaded machine orders them either way): then cleanup finds nothing live.
    handled = cleanup.response["terminated"] + cleanup.response["already_gone"]
    assert handled in ([case_09.instance_id], []), cleanup.response
    assert case_09.outcome.instance_states == {case_09.instance_id: "terminated"}


# ---- 10: the launcher's stop is throttled ----------------------------------------------------


@pytest.fixture(scope="module")
def case_10(case: RunCase) -> tuple[FinishedRun, faults.FaultRecord]:
    # The agent's own shutdown is switched off, so only StopInstance can end the instance.
    with faults.throttled_terminations(times=LAUNCHER_SDK_ATTEMPTS) as fault:
        finished = case(config_overrides={"shutdown_command": ["true"]})
    return finished, fault


def test_10_a_throttled_stop_is_retried_until_the_instance_is_gone(
    case_10: tuple[FinishedRun, faults.FaultRecord],
) -> None:
    finished, fault = case_10
    assert_ended_cleanly(finished, status="SUCCEEDED", error=None)
    assert fault.refused == LAUNCHER_SDK_ATTEMPTS


def test_10_the_stop_failure_is_a_launcher_transient_error(
    case_10: tuple[FinishedRun, faults.FaultRecord],
) -> None:
    outcome = case_10[0].outcome
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


# ---- 11, 12: start twice, and a second execution ---------------------------------------------


def test_11_start_invoked_twice_for_one_execution(make_run: MakeRun, local_aws: Any) -> None:
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
    response = local_aws.client("lambda").invoke(
        FunctionName=run.deployed.launcher_function_arn, Payload=json.dumps(start_event).encode()
    )
    again = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, again
    assert (again["instance_id"], again["reused"]) == (first_instance, True)
    outcome = ended(run, arn)
    assert (outcome.status, outcome.error) == ("SUCCEEDED", None)
    assert list(outcome.instance_states) == [first_instance]
    assert outcome.all_instances_terminated


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
    outcome = ended(run, first)
    assert (outcome.status, outcome.error) == ("SUCCEEDED", None)
    assert outcome.all_instances_terminated


# ---- 13, 14: heartbeats throttled, uploads refused -------------------------------------------


@pytest.fixture(scope="module")
def case_13(case: RunCase) -> tuple[FinishedRun, faults.FaultRecord]:
    with faults.throttled_heartbeats(seconds=3) as fault:
        finished = case(
            settings=settings(heartbeat_timeout_seconds=10), model_command=slow_scorer(6)
        )
    return finished, fault


def test_13_heartbeats_throttled_for_a_while_do_not_fail_the_run(
    case_13: tuple[FinishedRun, faults.FaultRecord],
) -> None:
    finished, fault = case_13
    assert_ended_cleanly(finished, status="SUCCEEDED", error=None)
    assert fault.refused >= 2, fault


@pytest.fixture(scope="module")
def case_14(case: RunCase) -> tuple[FinishedRun, faults.FaultRecord]:
    with faults.failed_uploads("runs/") as fault:
        finished = case()
    return finished, fault


def test_14_refused_uploads_fail_the_run_with_results_upload_failed(
    case_14: tuple[FinishedRun, faults.FaultRecord],
) -> None:
    finished, fault = case_14
    assert_ended_cleanly(finished, status="FAILED", error="ResultsUploadFailed")
    assert fault.refused >= 1


# ---- 15: SIGTERM to the agent while the model runs -------------------------------------------


def sigterm_once_the_model_runs(run: LocalRun, execution_arn: str) -> None:
    """What `systemctl stop instance-agent` does."""
    wait_for_model(run, execution_arn)
    (instance_id,) = run.instance_states(execution_arn)
    process = process_machine(run, instance_id).process
    assert process is not None
    os.kill(process.pid, signal.SIGTERM)


@pytest.fixture(scope="module")
def case_15(case: RunCase) -> FinishedRun:
    return case(model_command=SLEEPER_COMMAND, during=sigterm_once_the_model_runs)


def test_15_sigterm_fails_the_run_naming_the_signal(case_15: FinishedRun) -> None:
    assert_ended_cleanly(case_15, status="FAILED", error="AgentError")
    assert f"signal {signal.SIGTERM.value}" in case_15.cause.splitlines()[0]


def test_15_sigterm_kills_the_model_and_its_children(case_15: FinishedRun) -> None:
    assert case_15.model_pids_alive == []


def test_15_the_agent_still_shuts_down(case_15: FinishedRun) -> None:
    assert case_15.shutdown_calls == ["-h now"]


# ---- 16: the instance is terminated under a running model (a person, a spot reclaim) --------


CASE_16_HEARTBEAT_TIMEOUT_SECONDS = 30


def terminate_once_the_model_runs(run: LocalRun, execution_arn: str) -> None:
    wait_for_model(run, execution_arn)
    (instance_id,) = run.instance_states(execution_arn)
    run.aws.client("ec2").terminate_instances(InstanceIds=[instance_id])


@pytest.fixture(scope="module")
def case_16(case: RunCase) -> FinishedRun:
    # A heartbeat timeout longer than the rule takes: only the instance-lost rule ends it soon.
    return case(
        settings=settings(heartbeat_timeout_seconds=CASE_16_HEARTBEAT_TIMEOUT_SECONDS),
        model_command=SLEEPER_COMMAND,
        during=terminate_once_the_model_runs,
    )


def test_16_an_instance_terminated_mid_run_stops_the_run_with_instance_lost(
    case_16: FinishedRun,
) -> None:
    assert_ended_cleanly(case_16, status="ABORTED", error="InstanceLost")
    assert "while the agent held the run's task" in (case_16.outcome.cause or "")


def test_16_the_run_ends_before_its_heartbeat_timeout_could_fire(case_16: FinishedRun) -> None:
    outcome = case_16.outcome
    terminated = outcome.terminated_at(case_16.instance_id)
    assert terminated is not None
    assert outcome.stopped_at is not None
    assert outcome.stopped_at - terminated < CASE_16_HEARTBEAT_TIMEOUT_SECONDS


# ---- 17: the agent as it ships: the built artifact on the Deep Learning AMI's Python 3.10 -----


@pytest.fixture(scope="module")
def case_17(case: RunCase, agent_artifact_site: Path) -> FinishedRun:
    python = ami_python()
    if python is None:
        pytest.skip(f"no python{AMI_PYTHON_VERSION} here (pyenv install {AMI_PYTHON_VERSION})")
    return case(
        name="case-17",
        model_command=CONTRACT_SCORER_COMMAND,
        # As the unit runs it: the AMI's python3, only the artifact on its path.
        agent_command=(str(python), "-m", "instance_agent", "run"),
        env_overrides={"PYTHONPATH": str(agent_artifact_site)},
    )


def test_17_the_shipped_agent_on_python_3_10_runs_the_week_end_to_end(
    case_17: FinishedRun,
) -> None:
    assert_ended_cleanly(case_17, status="SUCCEEDED", error=None)
    assert case_17.outcome.manifest_present
    assert_agent_exited_after_its_shutdown(case_17)


def test_17_the_agent_ran_from_the_artifact_not_the_repository(
    case_17: FinishedRun, agent_artifact_site: Path
) -> None:
    record = json.loads(case_17.result("run.json"))
    assert record["status"] == "SUCCEEDED"
    assert record["written_by"] == "agent"
    started = re.search(r"instance agent on python (\S+) \((.+)\) from (\S+)", case_17.agent_log)
    assert started, case_17.agent_log[:2000]
    assert started[1].startswith(AMI_PYTHON_VERSION + ".")
    assert Path(started[3]) == agent_artifact_site / "instance_agent"
