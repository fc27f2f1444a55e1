"""``gpurun cancel``: stop a run with a cause naming the operator and wait until the nets have
terminated its instance, against the weekly run in the local AWS with the execution-status net
armed (instances that run nothing: no agent ever takes the task, so the run waits in RunModel)."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from gpurun import cancel
from local_aws.local_run import LocalRun, Nets
from local_aws.machines import IdleBackend
from local_aws.server import LocalAws
from run_contract.tags import EXECUTION_TAG
from tests.conftest import MakeRun
from tests.gpurun.cli_helpers import gpurun
from tests.support.waiting import wait_until
from tests.support.workflow import wait_for_end

# Runs through the local AWS (deployed workflow, executions): make unit leaves them out.
pytestmark = pytest.mark.slow


@pytest.fixture
def stack(make_run: MakeRun, cli_env: LocalAws) -> LocalRun:
    """The weekly run with the net that cleans up after an execution ends (as deployed)."""
    return make_run(
        publish=False,
        backend=IdleBackend(),
        nets=Nets(execution_rule=True, instance_rule=False, sweeper=False),
        settings={
            "heartbeat_timeout_seconds": 30,
            "activity_timeout_seconds": 120,
            "execution_timeout_seconds": 180,
        },
    )


def flags(run: LocalRun) -> list[str]:
    return [
        "--endpoint-url",
        run.aws.endpoint_url,
        "--region",
        run.aws.region,
        "--state-machine-arn",
        run.deployed.state_machine_arn,
    ]


def instances_of(run: LocalRun, execution_arn: str) -> dict[str, str]:
    reservations = run.aws.client("ec2").describe_instances(
        Filters=[{"Name": f"tag:{EXECUTION_TAG}", "Values": [execution_arn]}]
    )["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def start_with_instance(run: LocalRun, name: str) -> tuple[str, str]:
    """A run waiting in RunModel with its instance running: (execution ARN, instance id)."""
    arn = run.start_execution(name, {})
    wait_until(
        lambda: "running" in instances_of(run, arn).values(), 60, f"{name}'s instance running"
    )
    (instance_id,) = instances_of(run, arn)
    return arn, instance_id


def describe(run: LocalRun, arn: str) -> dict[str, Any]:
    return dict(run.aws.client("stepfunctions").describe_execution(executionArn=arn))


def test_cancel_without_a_name_stops_the_running_run_and_reports_its_instance_terminated(
    stack: LocalRun,
) -> None:
    arn, instance_id = start_with_instance(stack, "week-49")

    result = gpurun("cancel", *flags(stack), "--poll-seconds", "0.2", "--wait-seconds", "60")

    assert result.code == 0, result.out + result.err
    assert result.out.splitlines()[-1] == f"week-49: ABORTED; instance {instance_id} terminated"
    assert instances_of(stack, arn) == {instance_id: "terminated"}
    assert wait_for_end(stack.aws.client("stepfunctions"), arn)["status"] == "ABORTED"


def test_cancel_gives_a_cause_naming_the_operator(stack: LocalRun) -> None:
    start_with_instance(stack, "week-50")

    result = gpurun("cancel", "week-50", *flags(stack), "--poll-seconds", "0.2", "--json")

    assert result.code == 0, result.err
    document = result.json()
    assert document["all_terminated"] is True
    who = document["cancelled_by"]
    assert who.startswith(f"{getpass.getuser()} (arn:aws:sts::{stack.aws.account_id}:")
    assert document["cause"] == f"cancelled by {who} with `gpurun cancel`"


def test_cancel_sends_stop_execution_with_the_operators_cause() -> None:
    # moto keeps no cause of a stopped execution: the request itself is the evidence.
    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    arn = "arn:aws:states:eu-west-1:123456789012:execution:m:week-52"
    who = "ana (arn:aws:iam::123456789012:user/ana)"
    with Stubber(sfn) as stubber:
        stubber.add_response(
            "stop_execution",
            {"stopDate": datetime.now(UTC)},
            {
                "executionArn": arn,
                "error": "CancelledByOperator",
                "cause": f"cancelled by {who} with `gpurun cancel`",
            },
        )
        cancel.stop_execution(sfn, arn, who)
        stubber.assert_no_pending_responses()


def test_cancel_of_an_unknown_run_points_to_status(stack: LocalRun) -> None:
    result = gpurun("cancel", "no-such-run", *flags(stack))

    assert result.code == 2
    assert "no run 'no-such-run'" in result.err
    assert "gpurun status" in result.err


def test_cancel_of_a_run_that_already_ended_says_so_and_stops_nothing(stack: LocalRun) -> None:
    sfn = stack.aws.client("stepfunctions")
    arn, _ = start_with_instance(stack, "week-51")
    sfn.stop_execution(executionArn=arn)
    wait_for_end(sfn, arn)

    result = gpurun("cancel", "week-51", *flags(stack))

    assert result.code == 2
    assert "week-51 already ended (ABORTED); nothing to cancel" in result.err
    assert "gpurun logs week-51" in result.err


def test_cancel_without_a_name_when_nothing_runs_says_so(stack: LocalRun) -> None:
    result = gpurun("cancel", *flags(stack))

    assert result.code == 2
    assert "no run is in progress" in result.err
