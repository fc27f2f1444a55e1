"""The local stand-ins for the execution-status rule and the sweeper schedule."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local_aws import terraform_values
from local_aws.deployment import Deployment, LocalSettings, deploy
from local_aws.safety_nets import (
    ExecutionStatusWatcher,
    ScheduleTicker,
    matches_pattern,
    rate_seconds,
    transform_input,
)
from local_aws.server import LocalAws

EVENT: dict[str, Any] = {
    "source": "aws.states",
    "detail-type": "Step Functions Execution Status Change",
    "detail": {"executionArn": "arn:x:execution:sm:run-1", "status": "ABORTED"},
}


def test_placeholder_inside_a_string_inserts_the_text() -> None:
    transformer = {"InputPathsMap": {"s": "$.detail.status"}, "InputTemplate": '{"m": "is <s>"}'}
    assert transform_input(transformer, EVENT) == {"m": "is ABORTED"}


def test_pattern_matches_listed_values_only() -> None:
    pattern = {"source": ["aws.states"], "detail": {"status": ["FAILED", "ABORTED"]}}
    assert matches_pattern(pattern, EVENT)
    assert not matches_pattern(
        pattern, {**EVENT, "detail": {**EVENT["detail"], "status": "SUCCEEDED"}}
    )


def test_rate_expression_in_seconds() -> None:
    assert rate_seconds("rate(15 minutes)") == 900
    assert rate_seconds("rate(1 hour)") == 3600


def test_cron_expression_is_refused_naming_what_is_supported() -> None:
    with pytest.raises(ValueError, match=r"rate\(N minutes"):
        rate_seconds("cron(0 6 ? * TUE *)")


@pytest.fixture(scope="module")
def deployed(local_aws_server_for_module: LocalAws) -> Iterator[tuple[LocalAws, Deployment]]:
    yield local_aws_server_for_module, deploy(local_aws_server_for_module, LocalSettings())
    local_aws_server_for_module.reset()


def test_terraforms_cleanup_transformer_yields_the_launchers_cleanup_event(
    deployed: tuple[LocalAws, Deployment],
) -> None:
    _, deployment = deployed
    transformer = deployment.values.input_transformer(terraform_values.EXECUTION_TARGET)
    assert transform_input(transformer, EVENT) == {
        "action": "cleanup",
        "execution_arn": "arn:x:execution:sm:run-1",
        "status": "ABORTED",
    }


def _instance_states(aws: LocalAws, execution_arn: str) -> list[str]:
    reservations = aws.client("ec2").describe_instances(
        Filters=[{"Name": "tag:StepFunctionsExecution", "Values": [execution_arn]}]
    )["Reservations"]
    return [i["State"]["Name"] for r in reservations for i in r["Instances"]]


def _wait(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _waits_for_its_task(sfn: Any, arn: str) -> bool:
    """RunModel's task scheduled (StartInstance done); fails at once if the run ended first."""
    described = sfn.describe_execution(executionArn=arn)
    assert described["status"] == "RUNNING", (
        f"the run ended before it could be aborted: {described['status']} "
        f"{described.get('error')}: {described.get('cause')}"
    )
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return any(e["type"] == "ActivityScheduled" for e in events)


@pytest.mark.slow
def test_aborted_execution_gets_its_instance_terminated_by_the_rule(
    deployed: tuple[LocalAws, Deployment],
) -> None:
    aws, deployment = deployed
    sfn = aws.client("stepfunctions")
    watcher = ExecutionStatusWatcher(aws, deployment.state_machine_arn).start()
    try:
        # A name: moto 5.2.5 names an unnamed execution "None" (AWS generates a UUID).
        arn = sfn.start_execution(
            stateMachineArn=deployment.state_machine_arn, name="abort-by-hand", input="{}"
        )["executionArn"]
        # No agent polls: the execution waits in RunModel with its instance running.
        _wait(lambda: _instance_states(aws, arn) == ["running"], 120)
        _wait(lambda: _waits_for_its_task(sfn, arn), 120)
        sfn.stop_execution(executionArn=arn, error="Operator", cause="aborted by hand")
        _wait(lambda: bool(watcher.deliveries), 120)
    finally:
        watcher.stop()
    (delivery,) = watcher.deliveries
    assert delivery.payload == {"action": "cleanup", "execution_arn": arn, "status": "ABORTED"}
    assert delivery.function_error is None, delivery.response
    assert _instance_states(aws, arn) == ["terminated"]


@pytest.mark.slow
def test_sweeper_ticker_invokes_the_launcher_with_sweep(
    deployed: tuple[LocalAws, Deployment],
) -> None:
    aws, deployment = deployed
    ticker = ScheduleTicker(aws, deployment.sweeper_schedule_name, compression=900 / 0.2)
    ticker.start()
    try:
        _wait(lambda: len(ticker.deliveries) >= 2, 20)
    finally:
        ticker.stop()
    assert ticker.deliveries[0].payload == {"action": "sweep"}
    assert ticker.deliveries[0].function_error is None
    assert json.dumps(ticker.deliveries[0].response)
