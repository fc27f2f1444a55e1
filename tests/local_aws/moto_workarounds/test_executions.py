"""Executions: a generated name when none is given; the error and stop date of ended ones."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from tests.local_aws.moto_workarounds.conftest import create_state_machine
from tests.support.workflow import wait_for_end

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


def test_an_execution_started_without_a_name_gets_a_unique_generated_one(sfn: SFNClient) -> None:
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    machine = create_state_machine(sfn, definition, "unnamed")
    first = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    second = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    names = [arn.rsplit(":", 1)[1] for arn in (first, second)]
    assert "None" not in names
    assert names[0] != names[1]
    assert all(len(name) == 36 for name in names)  # a UUID, as AWS generates


def test_a_timed_out_execution_reports_states_timeout_as_aws_does(sfn: SFNClient) -> None:
    definition = {
        "StartAt": "Wait",
        "TimeoutSeconds": 1,
        "States": {"Wait": {"Type": "Wait", "Seconds": 30, "End": True}},
    }
    arn = sfn.start_execution(
        stateMachineArn=create_state_machine(sfn, definition, "times-out"), name="slow"
    )["executionArn"]
    ended = wait_for_end(sfn, arn)
    assert (ended["status"], ended.get("error")) == ("TIMED_OUT", "States.Timeout")
    assert "stopDate" in ended


def test_an_aborted_execution_keeps_the_error_and_cause_given_to_stop_execution(
    sfn: SFNClient,
) -> None:
    definition = {
        "StartAt": "Wait",
        "States": {"Wait": {"Type": "Wait", "Seconds": 30, "End": True}},
    }
    arn = sfn.start_execution(
        stateMachineArn=create_state_machine(sfn, definition, "aborted"), name="stopped"
    )["executionArn"]
    sfn.stop_execution(executionArn=arn, error="Operator", cause="aborted from the console")
    ended = wait_for_end(sfn, arn)
    assert (ended["status"], ended.get("error"), ended.get("cause")) == (
        "ABORTED",
        "Operator",
        "aborted from the console",
    )


def test_an_execution_stopped_before_its_worker_started_is_still_aborted(
    sfn: SFNClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hold the worker's thread back, as a loaded machine does, so the stop arrives first.
    original = ExecutionWorker._execution_logic
    released = threading.Event()

    def late_start(self: Any) -> None:
        released.wait(10)
        original(self)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(ExecutionWorker, "_execution_logic", late_start)
    definition = {
        "StartAt": "Wait",
        "States": {"Wait": {"Type": "Wait", "Seconds": 30, "End": True}},
    }
    arn = sfn.start_execution(
        stateMachineArn=create_state_machine(sfn, definition, "early-stop"), name="early"
    )["executionArn"]
    threading.Timer(0.5, released.set).start()
    sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped at once")
    ended = wait_for_end(sfn, arn)
    assert (ended["status"], ended.get("error")) == ("ABORTED", "Operator")


def test_the_stop_does_not_wait_for_an_execution_of_the_basic_backend() -> None:
    # moto's in-process backend (the launcher's tests) has executions without a worker.
    from moto.stepfunctions.models import Execution

    from local_aws.moto_workarounds.executions import _wait_for_worker_environment

    execution = Execution.__new__(Execution)
    started = time.monotonic()
    _wait_for_worker_environment(execution)
    assert time.monotonic() - started < 5  # far below the 10 s bound it would wait
