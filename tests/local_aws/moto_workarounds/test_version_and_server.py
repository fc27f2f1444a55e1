"""The version pin, the patches' settings, and the moto server that restores what it changed."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from unittest import mock

import boto3
import moto
import pytest
from moto.core.config import default_user_config

from local_aws.moto_workarounds import (
    MotoVersionError,
    activities,
    apply_moto_workarounds,
    check_moto_version,
    start_moto_server,
)
from tests.local_aws.moto_workarounds.conftest import (
    POLL_SECONDS,
    REGION,
    create_state_machine,
    function_zip,
)
from tests.support.workflow import take_task, wait_for_end


def test_the_pinned_moto_version_is_accepted() -> None:
    check_moto_version("5.2.5")


def test_any_other_moto_version_is_refused_with_what_to_do() -> None:
    with pytest.raises(MotoVersionError, match=r"moto 5\.2\.6 is installed.*moto==5\.2\.5"):
        check_moto_version("5.2.6")


def test_apply_refuses_to_patch_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    monkeypatch.setattr(activities._broker, "poll_seconds", 7.0)

    with pytest.raises(MotoVersionError):
        apply_moto_workarounds(activity_poll_seconds=2.0)

    assert activities._broker.poll_seconds == 7.0


@pytest.mark.parametrize("seconds", [0, -1, 61])
def test_a_poll_time_outside_aws_limits_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="activity_poll_seconds must be > 0 and <= 60"):
        apply_moto_workarounds(activity_poll_seconds=seconds)


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


GREETER = """
import os

def handler(event, context):
    return {"said": os.environ["GREETING"], **event}
"""


def test_the_workarounds_work_inside_a_moto_server(moto_server: str) -> None:
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto_server)
    lam = boto3.client("lambda", region_name=REGION, endpoint_url=moto_server)
    sfn = boto3.client("stepfunctions", region_name=REGION, endpoint_url=moto_server)
    role = iam.create_role(RoleName="server-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    function = lam.create_function(
        FunctionName="server-fn",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": function_zip(GREETER)},
        Environment={"Variables": {"GREETING": "hello"}},
    )["FunctionArn"]
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
