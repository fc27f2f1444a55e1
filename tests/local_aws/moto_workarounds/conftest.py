"""moto in-process with the workarounds applied (activities, Fail states, executions), and the
small state machines and workers the workarounds' tests drive."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local_aws.moto_workarounds import MOTO_CONFIG, apply_moto_workarounds

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

REGION = "eu-west-1"
ACCOUNT = "123456789012"
# Short, so that a poll that finds nothing costs a test little time.
POLL_SECONDS = 1.0
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/workflow-test"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process, executing state machines."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "MOTO_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    apply_moto_workarounds(activity_poll_seconds=POLL_SECONDS)
    with mock_aws(config=MOTO_CONFIG):
        yield


@pytest.fixture
def sfn(aws: None) -> SFNClient:
    return boto3.client("stepfunctions", region_name=REGION)


@pytest.fixture
def activity_arn(sfn: SFNClient) -> str:
    return sfn.create_activity(name="work")["activityArn"]


def create_state_machine(sfn: Any, definition: dict[str, Any] | str, name: str) -> str:
    text = definition if isinstance(definition, str) else json.dumps(definition)
    arn: str = sfn.create_state_machine(name=name, definition=text, roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]
    return arn


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


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    return [dict(e) for e in sfn.get_execution_history(executionArn=execution_arn)["events"]]


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


def function_zip(source: str, module: str = "app") -> bytes:
    """A deployment package holding one module, ``app.py`` unless named otherwise."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{module}.py", source)
    return buffer.getvalue()
