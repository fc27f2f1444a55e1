"""Activity tasks as on AWS: handed out once, long polls, timeouts counted from the take."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from tests.local_aws.moto_workarounds.conftest import (
    POLL_SECONDS,
    REGION,
    create_state_machine,
    error_code,
    history,
    send_task_call,
    start_activity_run,
)
from tests.support.workflow import take_task, wait_for_end

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


def test_a_worker_receives_the_task_input_and_its_name_is_recorded(
    sfn: SFNClient, activity_arn: str
) -> None:
    execution = start_activity_run(sfn, activity_arn, task_input={"week": 12})

    token, task_input = take_task(sfn, activity_arn, worker="gpu-box-1")
    sfn.send_task_success(taskToken=token, output="{}")

    assert task_input == {"week": 12}
    wait_for_end(sfn, execution)
    started = [e for e in history(sfn, execution) if e["type"] == "ActivityStarted"]
    assert [e["activityStartedEventDetails"]["workerName"] for e in started] == ["gpu-box-1"]


def test_an_activity_task_is_handed_out_only_once(sfn: SFNClient, activity_arn: str) -> None:
    start_activity_run(sfn, activity_arn)
    take_task(sfn, activity_arn)

    second = sfn.get_activity_task(activityArn=activity_arn, workerName="late-worker")

    assert second["taskToken"] == ""


def test_a_poll_without_a_task_returns_an_empty_token_after_the_poll_timeout(
    sfn: SFNClient, activity_arn: str
) -> None:
    began = time.monotonic()
    response = sfn.get_activity_task(activityArn=activity_arn, workerName="idle")
    waited = time.monotonic() - began

    assert response["taskToken"] == ""
    assert POLL_SECONDS <= waited < POLL_SECONDS + 1.0


def test_a_long_poll_returns_as_soon_as_a_task_is_scheduled(
    sfn: SFNClient, activity_arn: str
) -> None:
    results: list[str] = []
    poller = threading.Thread(
        target=lambda: results.append(
            sfn.get_activity_task(activityArn=activity_arn, workerName="w")["taskToken"]
        )
    )
    poller.start()
    time.sleep(0.2)  # the poller is now waiting
    start_activity_run(sfn, activity_arn)
    poller.join(timeout=POLL_SECONDS + 5)

    assert results
    assert results[0] != ""


def test_polling_an_unknown_activity_fails_with_activity_does_not_exist(sfn: SFNClient) -> None:
    missing = f"arn:aws:states:{REGION}:123456789012:activity:missing"

    with pytest.raises(ClientError) as error:
        sfn.get_activity_task(activityArn=missing)

    assert error_code(error) == "ActivityDoesNotExist"


def test_send_task_success_completes_the_state_with_the_worker_output(
    sfn: SFNClient, activity_arn: str
) -> None:
    execution = start_activity_run(sfn, activity_arn)
    token, _ = take_task(sfn, activity_arn)

    sfn.send_task_success(taskToken=token, output=json.dumps({"score": 0.97}))

    ended = wait_for_end(sfn, execution)
    assert ended["status"] == "SUCCEEDED"
    assert json.loads(ended["output"]) == {"score": 0.97}


def test_send_task_failure_fails_the_state_with_the_worker_error_and_cause(
    sfn: SFNClient, activity_arn: str
) -> None:
    execution = start_activity_run(sfn, activity_arn)
    token, _ = take_task(sfn, activity_arn)

    sfn.send_task_failure(taskToken=token, error="ModelCommandFailed", cause="exit status 3")

    ended = wait_for_end(sfn, execution)
    assert ended["status"] == "FAILED"
    assert (ended["error"], ended["cause"]) == ("ModelCommandFailed", "exit status 3")


def test_heartbeats_keep_a_task_alive_past_its_heartbeat_interval(
    sfn: SFNClient, activity_arn: str
) -> None:
    execution = start_activity_run(
        sfn, activity_arn, heartbeat_timeout_seconds=2, timeout_seconds=30
    )
    token, _ = take_task(sfn, activity_arn)

    for _ in range(8):  # 4 s of work, twice the 2 s heartbeat interval
        time.sleep(0.5)
        sfn.send_task_heartbeat(taskToken=token)
    sfn.send_task_success(taskToken=token, output="{}")

    assert wait_for_end(sfn, execution)["status"] == "SUCCEEDED"


def test_a_missed_heartbeat_fails_the_state_with_states_heartbeat_timeout(
    sfn: SFNClient, activity_arn: str
) -> None:
    execution = start_activity_run(
        sfn, activity_arn, heartbeat_timeout_seconds=1, timeout_seconds=30
    )
    take_task(sfn, activity_arn)

    ended = wait_for_end(sfn, execution)

    assert ended["status"] == "FAILED"
    assert ended["error"] == "States.HeartbeatTimeout"


def test_the_task_timeout_fails_the_state_with_states_timeout(
    sfn: SFNClient, activity_arn: str
) -> None:
    execution = start_activity_run(
        sfn, activity_arn, heartbeat_timeout_seconds=1, timeout_seconds=2
    )
    token, _ = take_task(sfn, activity_arn)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # heartbeats alone do not outlast TimeoutSeconds
        try:
            sfn.send_task_heartbeat(taskToken=token)
        except ClientError:
            break
        time.sleep(0.3)
    ended = wait_for_end(sfn, execution)

    assert ended["status"] == "FAILED"
    assert ended["error"] == "States.Timeout"


def test_the_timeouts_start_when_a_worker_takes_the_task(sfn: SFNClient, activity_arn: str) -> None:
    execution = start_activity_run(
        sfn, activity_arn, heartbeat_timeout_seconds=1, timeout_seconds=2
    )
    time.sleep(2.5)  # longer than both timeouts, with nobody polling

    token, _ = take_task(sfn, activity_arn)
    sfn.send_task_success(taskToken=token, output="{}")

    assert wait_for_end(sfn, execution)["status"] == "SUCCEEDED"


@pytest.mark.parametrize("call", ["success", "failure", "heartbeat"])
def test_calls_on_a_completed_task_fail_with_task_timed_out(
    sfn: SFNClient, activity_arn: str, call: str
) -> None:
    execution = start_activity_run(sfn, activity_arn)
    token, _ = take_task(sfn, activity_arn)
    sfn.send_task_success(taskToken=token, output="{}")
    wait_for_end(sfn, execution)

    with pytest.raises(ClientError) as error:
        send_task_call(sfn, call, token)

    assert error_code(error) == "TaskTimedOut"


def test_calls_after_a_heartbeat_timeout_fail_with_task_timed_out(
    sfn: SFNClient, activity_arn: str
) -> None:
    execution = start_activity_run(
        sfn, activity_arn, heartbeat_timeout_seconds=1, timeout_seconds=30
    )
    token, _ = take_task(sfn, activity_arn)
    wait_for_end(sfn, execution)

    with pytest.raises(ClientError) as error:
        sfn.send_task_success(taskToken=token, output="{}")

    assert error_code(error) == "TaskTimedOut"


@pytest.mark.parametrize("call", ["success", "failure", "heartbeat"])
def test_an_unknown_token_fails_with_invalid_token(sfn: SFNClient, call: str) -> None:
    with pytest.raises(ClientError) as error:
        send_task_call(sfn, call, "not-a-token")

    assert error_code(error) == "InvalidToken"


def test_a_state_machine_timeout_withdraws_the_untaken_task(
    sfn: SFNClient, activity_arn: str
) -> None:
    machine = create_state_machine(
        sfn,
        {
            "StartAt": "Work",
            "TimeoutSeconds": 1,
            "States": {"Work": {"Type": "Task", "Resource": activity_arn, "End": True}},
        },
        "times-out",
    )
    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]

    ended = wait_for_end(sfn, execution)
    late = sfn.get_activity_task(activityArn=activity_arn, workerName="late")

    assert ended["status"] == "TIMED_OUT"
    assert late["taskToken"] == ""
