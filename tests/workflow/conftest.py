"""Fixtures for the workflow's tests: moto in-process with the workarounds applied."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from local_aws.moto_workarounds import (
    MOTO_CONFIG,
    apply_moto_workarounds,
    unregister_lambda_handler,
)

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_stepfunctions import SFNClient

REGION = "eu-west-1"
ACCOUNT = "123456789012"
# Short, so that a poll that finds nothing costs a test little time.
POLL_SECONDS = 1.0
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/workflow-test"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process, executing state machines, with Lambda handlers run in-process."""
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
def lambda_client(aws: None) -> LambdaClient:
    return boto3.client("lambda", region_name=REGION)


@pytest.fixture
def role_arn(aws: None) -> str:
    iam: IAMClient = boto3.client("iam", region_name=REGION)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    return iam.create_role(RoleName="workflow-test", AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]


def zipped_source() -> bytes:
    """A deployment package; its content is never run (handlers are registered in-process)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def create_function(
    lambda_client: LambdaClient,
    role_arn: str,
    name: str,
    environment: dict[str, str] | None = None,
) -> str:
    """Create a Lambda function in moto; returns its ARN. Unregisters any stale handler."""
    unregister_lambda_handler(name)
    return lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role_arn,
        Handler="app.handler",
        Code={"ZipFile": zipped_source()},
        Timeout=30,
        Environment={"Variables": environment or {}},
    )["FunctionArn"]


def create_state_machine(sfn: SFNClient, definition: dict[str, Any] | str, name: str) -> str:
    text = definition if isinstance(definition, str) else json.dumps(definition)
    return sfn.create_state_machine(name=name, definition=text, roleArn=ROLE_ARN)["stateMachineArn"]


def wait_for_end(sfn: SFNClient, execution_arn: str, timeout: float = 60.0) -> dict[str, Any]:
    """describe_execution once the execution is no longer RUNNING."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        description: dict[str, Any] = dict(sfn.describe_execution(executionArn=execution_arn))
        if description["status"] != "RUNNING":
            return description
        time.sleep(0.1)
    raise AssertionError(f"execution {execution_arn} still RUNNING after {timeout} s")


def take_task(
    sfn: SFNClient, activity_arn: str, worker: str = "test-worker", timeout: float = 30.0
) -> tuple[str, dict[str, Any]]:
    """Poll the activity like a worker until a task comes: (token, input)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = sfn.get_activity_task(activityArn=activity_arn, workerName=worker)
        if response.get("taskToken"):
            return response["taskToken"], json.loads(response["input"])
    raise AssertionError(f"no task on {activity_arn} within {timeout} s")


def history(sfn: SFNClient, execution_arn: str) -> list[dict[str, Any]]:
    return [dict(e) for e in sfn.get_execution_history(executionArn=execution_arn)["events"]]


def entered_states(sfn: SFNClient, execution_arn: str) -> list[str]:
    """Names of the states the execution entered, in order."""
    return [
        e["stateEnteredEventDetails"]["name"]
        for e in history(sfn, execution_arn)
        if e["type"].endswith("StateEntered")
    ]
