"""The environment is checked when an action needs it; AWS hiccups become retryable errors."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config

from launcher import clients
from launcher.errors import LauncherConfigurationError, LauncherTransientError
from tests.launcher.conftest import REGION, CallLog, Invoke, Template, Workflow


def _stop(workflow: Workflow) -> dict[str, Any]:
    return {"action": "stop", "execution_arn": workflow.execution_arn, "instance": None}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LAUNCH_TEMPLATE_ID", None),
        ("LAUNCH_TEMPLATE_ID", "scheduled-gpu-model"),
        ("LAUNCH_TEMPLATE_VERSION", "latest"),
        ("PROJECT_NAME", ""),
    ],
)
def test_start_with_a_bad_setting_names_it_and_calls_nothing(
    *,
    name: str,
    value: str | None,
    invoke: Invoke,
    start_event: dict[str, Any],
    aws_calls: CallLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if value is None:
        monkeypatch.delenv(name)
    else:
        monkeypatch.setenv(name, value)
    with pytest.raises(LauncherConfigurationError, match=name):
        invoke(start_event)
    assert aws_calls.calls == []


def test_stop_works_without_any_launch_template_setting(
    invoke: Invoke, workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAUNCH_TEMPLATE_ID", raising=False)
    monkeypatch.delenv("LAUNCH_TEMPLATE_VERSION")
    assert invoke(_stop(workflow)) == {"terminated": [], "already_gone": []}


@pytest.mark.parametrize("value", ["one hour", "0", "59"])
def test_sweep_with_a_bad_lifetime_names_the_variable(
    value: str, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, aws: None
) -> None:
    monkeypatch.setenv("MAX_INSTANCE_LIFETIME_SECONDS", value)
    with pytest.raises(LauncherConfigurationError, match="MAX_INSTANCE_LIFETIME_SECONDS"):
        invoke({"action": "sweep"})


def test_metrics_fall_back_to_a_namespace_when_none_is_set(
    invoke: Invoke,
    workflow: Workflow,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE")
    invoke(_stop(workflow))
    assert '"Namespace":"ScheduledGpuModel"' in capsys.readouterr().out


def _throttle(client: Any, operation: str, code: str, status: int) -> None:
    def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
        error = {
            "Error": {"Code": code, "Message": "Rate exceeded"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return _Status(status), error

    client.meta.events.register(f"before-call.*.{operation}", answer)


class _Status:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


def test_throttled_describe_during_stop_is_a_transient_error(
    invoke: Invoke, workflow: Workflow, aws: None
) -> None:
    _throttle(clients.ec2(), "DescribeInstances", "RequestLimitExceeded", 503)
    with pytest.raises(LauncherTransientError, match="RequestLimitExceeded"):
        invoke(_stop(workflow))


def test_throttled_list_executions_during_start_is_a_transient_error(
    invoke: Invoke, start_event: dict[str, Any]
) -> None:
    _throttle(clients.stepfunctions(), "ListExecutions", "ThrottlingException", 400)
    with pytest.raises(LauncherTransientError, match="ThrottlingException"):
        invoke(start_event)


def test_an_unreachable_endpoint_is_a_transient_error(
    invoke: Invoke, workflow: Workflow, aws: None
) -> None:
    # Port 9 (discard) is closed here: the connection is refused at once.
    clients.ec2_client = boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(LauncherTransientError, match="could not reach AWS"):
        invoke(_stop(workflow))


def test_clients_are_created_on_first_use_and_honour_aws_endpoint_url(
    env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clients, "ec2_client", None)
    monkeypatch.setattr(clients, "sfn_client", None)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert clients.ec2().meta.endpoint_url == "http://127.0.0.1:5000"
    assert clients.stepfunctions().meta.endpoint_url == "http://127.0.0.1:5000"
    assert clients.ec2() is clients.ec2()


def test_a_numbered_launch_template_version_is_passed_to_run_instances(
    invoke: Invoke,
    start_event: dict[str, Any],
    aws_calls: CallLog,
    launch_template: Template,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAUNCH_TEMPLATE_VERSION", "1")
    invoke(start_event)
    [request] = aws_calls.params("RunInstances")
    assert request["LaunchTemplate"] == {
        "LaunchTemplateId": launch_template.template_id,
        "Version": "1",
    }
