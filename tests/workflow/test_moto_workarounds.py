"""The moto 5.2.5 workarounds: activities behave as on AWS, Lambda runs registered handlers."""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from unittest import mock

import boto3
import moto
import pytest
from botocore.exceptions import ClientError
from moto.core.config import default_user_config

from local_aws import moto_workarounds
from local_aws.moto_workarounds import (
    MotoVersionError,
    apply_moto_workarounds,
    check_moto_version,
    register_lambda_handler,
    start_moto_server,
)
from tests.workflow.conftest import (
    POLL_SECONDS,
    REGION,
    create_function,
    create_state_machine,
    history,
    take_task,
    wait_for_end,
)

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_stepfunctions import SFNClient


@pytest.fixture
def activity_arn(sfn: SFNClient) -> str:
    return sfn.create_activity(name="work")["activityArn"]


def start_activity_run(
    sfn: SFNClient,
    activity_arn: str,
    *,
    heartbeat_timeout_seconds: int | None = None,
    timeout_seconds: int | None = None,
    task_input: dict[str, Any] | None = None,
) -> str:
    """Start a one-state machine whose only state is the activity task; its execution ARN."""
    state: dict[str, Any] = {"Type": "Task", "Resource": activity_arn, "End": True}
    if heartbeat_timeout_seconds is not None:
        state["HeartbeatSeconds"] = heartbeat_timeout_seconds
    if timeout_seconds is not None:
        state["TimeoutSeconds"] = timeout_seconds
    machine = create_state_machine(
        sfn, {"StartAt": "Work", "States": {"Work": state}}, f"activity-{time.monotonic_ns()}"
    )
    return sfn.start_execution(stateMachineArn=machine, input=json.dumps(task_input or {}))[
        "executionArn"
    ]


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def send_task_call(sfn: SFNClient, call: str, token: str) -> None:
    """One of the three calls a worker makes with a task token."""
    if call == "success":
        sfn.send_task_success(taskToken=token, output="{}")
    elif call == "failure":
        sfn.send_task_failure(taskToken=token, error="AgentError")
    else:
        sfn.send_task_heartbeat(taskToken=token)


# ---- activities ---------------------------------------------------------------------------


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

    ended = wait_for_end(sfn, execution, timeout=10)

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
    ended = wait_for_end(sfn, execution, timeout=10)

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
    wait_for_end(sfn, execution, timeout=10)

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

    ended = wait_for_end(sfn, execution, timeout=10)
    late = sfn.get_activity_task(activityArn=activity_arn, workerName="late")

    assert ended["status"] == "TIMED_OUT"
    assert late["taskToken"] == ""


# ---- Fail states --------------------------------------------------------------------------


@pytest.mark.parametrize("error", ["States.Timeout", "States.HeartbeatTimeout", "ModelNotFound"])
def test_a_fail_state_re_raises_the_error_name_its_error_path_selects(
    sfn: SFNClient, error: str
) -> None:
    machine = create_state_machine(
        sfn,
        {
            "StartAt": "Failed",
            "States": {"Failed": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}},
        },
        f"reraise-{error.replace('.', '-')}",
    )

    execution = sfn.start_execution(
        stateMachineArn=machine, input=json.dumps({"e": error, "c": "why"})
    )["executionArn"]
    ended = wait_for_end(sfn, execution)

    assert (ended["status"], ended["error"], ended["cause"]) == ("FAILED", error, "why")


# ---- Lambda -------------------------------------------------------------------------------


class ModelBucketMissingError(Exception):
    """A handler's own error class, whose name Step Functions must see."""


def test_an_invoke_runs_the_registered_handler_and_returns_its_result(
    lambda_client: LambdaClient, role_arn: str
) -> None:
    create_function(lambda_client, role_arn, "adder")
    register_lambda_handler("adder", lambda event, _: {"sum": event["a"] + event["b"]})

    response = lambda_client.invoke(FunctionName="adder", Payload=json.dumps({"a": 2, "b": 3}))

    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"sum": 5}


def test_the_handler_sees_the_function_environment_only_during_the_call(
    lambda_client: LambdaClient, role_arn: str
) -> None:
    create_function(lambda_client, role_arn, "env-reader", environment={"PROJECT_NAME": "p1"})
    register_lambda_handler("env-reader", lambda _e, _c: {"project": os.environ["PROJECT_NAME"]})

    with mock.patch.dict(os.environ, {}, clear=False):
        os.environ.pop("PROJECT_NAME", None)
        response = lambda_client.invoke(FunctionName="env-reader", Payload=b"{}")
        after = os.environ.get("PROJECT_NAME")

    assert json.loads(response["Payload"].read()) == {"project": "p1"}
    assert after is None


def test_the_handler_receives_a_lambda_context_describing_the_function(
    lambda_client: LambdaClient, role_arn: str
) -> None:
    arn = create_function(lambda_client, role_arn, "ctx")
    register_lambda_handler(
        "ctx",
        lambda _e, context: {
            "name": context.function_name,
            "arn": context.invoked_function_arn,
            "memory": context.memory_limit_in_mb,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "request_id": context.aws_request_id,
        },
    )

    result = json.loads(lambda_client.invoke(FunctionName="ctx", Payload=b"{}")["Payload"].read())

    assert result["name"] == "ctx"
    assert result["arn"] == arn
    assert result["memory"] > 0
    assert 0 < result["remaining_ms"] <= 30_000
    assert result["request_id"]


def test_a_handler_exception_becomes_a_function_error_named_after_its_class(
    lambda_client: LambdaClient, role_arn: str
) -> None:
    create_function(lambda_client, role_arn, "fails")

    def handler(_event: Any, _context: Any) -> Any:
        raise ModelBucketMissingError("bucket models-x does not exist")

    register_lambda_handler("fails", handler)

    response = lambda_client.invoke(FunctionName="fails", Payload=b"{}")
    payload = json.loads(response["Payload"].read())

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "ModelBucketMissingError"
    assert payload["errorMessage"] == "bucket models-x does not exist"


def test_step_functions_catches_a_handler_exception_by_its_class_name(
    sfn: SFNClient, lambda_client: LambdaClient, role_arn: str
) -> None:
    arn = create_function(lambda_client, role_arn, "fails-in-workflow")

    def handler(_event: Any, _context: Any) -> Any:
        raise ModelBucketMissingError("no bucket")

    register_lambda_handler("fails-in-workflow", handler)
    machine = create_state_machine(
        sfn,
        {
            "StartAt": "Call",
            "States": {
                "Call": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": arn, "Payload": {}},
                    "Catch": [
                        {
                            "ErrorEquals": ["ModelBucketMissingError"],
                            "ResultPath": "$.error",
                            "Next": "Caught",
                        }
                    ],
                    "End": True,
                },
                "Caught": {"Type": "Pass", "End": True},
            },
        },
        "catches",
    )

    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    ended = wait_for_end(sfn, execution)

    assert ended["status"] == "SUCCEEDED"
    error = json.loads(ended["output"])["error"]
    assert error["Error"] == "ModelBucketMissingError"
    assert json.loads(error["Cause"])["errorMessage"] == "no bucket"


def test_a_result_that_is_not_json_becomes_a_marshal_error(
    lambda_client: LambdaClient, role_arn: str
) -> None:
    create_function(lambda_client, role_arn, "returns-a-set")
    register_lambda_handler("returns-a-set", lambda _e, _c: {1, 2})

    response = lambda_client.invoke(FunctionName="returns-a-set", Payload=b"{}")

    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "Runtime.MarshalError"


def test_a_function_without_a_registered_handler_keeps_moto_echo(
    lambda_client: LambdaClient, role_arn: str
) -> None:
    create_function(lambda_client, role_arn, "unregistered")

    response = lambda_client.invoke(FunctionName="unregistered", Payload=b'{"x": 1}')

    assert json.loads(response["Payload"].read()) == {"x": 1}


def test_registering_an_arn_instead_of_a_name_is_refused() -> None:
    with pytest.raises(ValueError, match="function_name must be the Lambda function's name"):
        register_lambda_handler(
            f"arn:aws:lambda:{REGION}:123456789012:function:launcher", lambda e, c: e
        )


# ---- the version pin and settings ---------------------------------------------------------


def test_the_pinned_moto_version_is_accepted() -> None:
    check_moto_version("5.2.5")


def test_any_other_moto_version_is_refused_with_what_to_do() -> None:
    with pytest.raises(MotoVersionError, match=r"moto 5\.2\.6 is installed.*moto==5\.2\.5"):
        check_moto_version("5.2.6")


def test_apply_refuses_to_patch_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    monkeypatch.setattr(moto_workarounds._broker, "poll_seconds", 7.0)

    with pytest.raises(MotoVersionError):
        apply_moto_workarounds(activity_poll_seconds=2.0)

    assert moto_workarounds._broker.poll_seconds == 7.0


@pytest.mark.parametrize("seconds", [0, -1, 61])
def test_a_poll_time_outside_aws_limits_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="activity_poll_seconds must be > 0 and <= 60"):
        apply_moto_workarounds(activity_poll_seconds=seconds)


# ---- inside a moto server -----------------------------------------------------------------


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A ThreadedMotoServer on a free port; the global settings it changes are restored."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("MOTO_PORT", raising=False)
    with mock.patch.dict(default_user_config):
        server = start_moto_server(activity_poll_seconds=POLL_SECONDS)
        monkeypatch.setenv("MOTO_PORT", os.environ["MOTO_PORT"])  # restored after the test
        try:
            yield server.endpoint_url
        finally:
            server.stop()


def test_the_workarounds_work_inside_a_moto_server(moto_server: str) -> None:
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto_server)
    lam = boto3.client("lambda", region_name=REGION, endpoint_url=moto_server)
    sfn = boto3.client("stepfunctions", region_name=REGION, endpoint_url=moto_server)
    role = iam.create_role(RoleName="server-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    function = create_function(lam, role, "server-fn", environment={"GREETING": "hello"})
    register_lambda_handler("server-fn", lambda e, _c: {"said": os.environ["GREETING"], **e})
    activity = sfn.create_activity(name="server-work")["activityArn"]
    machine = create_state_machine(
        sfn,
        {
            "StartAt": "Call",
            "States": {
                "Call": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": function, "Payload": {"n": 1}},
                    "ResultSelector": {"said.$": "$.Payload.said"},
                    "ResultPath": "$.call",
                    "Next": "Work",
                },
                "Work": {"Type": "Task", "Resource": activity, "HeartbeatSeconds": 5, "End": True},
            },
        },
        "server-machine",
    )
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]

    token, task_input = take_task(sfn, activity, worker="server-worker")
    sfn.send_task_heartbeat(taskToken=token)
    sfn.send_task_failure(taskToken=token, error="ModelCommandFailed", cause="exit 1")
    ended = wait_for_end(sfn, execution)

    assert task_input == {"call": {"said": "hello"}}
    assert (ended["status"], ended["error"], ended["cause"]) == (
        "FAILED",
        "ModelCommandFailed",
        "exit 1",
    )


def test_an_execution_started_without_a_name_gets_a_unique_generated_one(sfn: SFNClient) -> None:
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    machine = create_state_machine(sfn, definition, "unnamed")
    first = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    second = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    names = [arn.rsplit(":", 1)[1] for arn in (first, second)]
    assert "None" not in names
    assert names[0] != names[1]
    assert all(len(name) == 36 for name in names)  # a UUID, as AWS generates


def test_stopping_the_server_restores_moto_settings_for_later_mock_aws_users() -> None:
    before = {
        key: copy.deepcopy(default_user_config.get(key)) for key in ("stepfunctions", "lambda")
    }
    port_before = os.environ.get("MOTO_PORT")
    server = start_moto_server(activity_poll_seconds=POLL_SECONDS)
    assert default_user_config["stepfunctions"]["execute_state_machine"] is True
    server.stop()
    assert {key: default_user_config.get(key) for key in before} == before
    assert os.environ.get("MOTO_PORT") == port_before


def test_a_timed_out_execution_reports_states_timeout_as_aws_does(sfn: SFNClient) -> None:
    definition = {
        "StartAt": "Wait",
        "TimeoutSeconds": 1,
        "States": {"Wait": {"Type": "Wait", "Seconds": 30, "End": True}},
    }
    arn = sfn.start_execution(
        stateMachineArn=create_state_machine(sfn, definition, "times-out"), name="slow"
    )["executionArn"]
    ended = wait_for_end(sfn, arn, timeout=15)
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
    ended = wait_for_end(sfn, arn, timeout=15)
    assert (ended["status"], ended.get("error"), ended.get("cause")) == (
        "ABORTED",
        "Operator",
        "aborted from the console",
    )
