"""The safety nets: cleanup after an execution ends, and the sweep of over-age instances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from unittest import mock

import pytest

from launcher.errors import EventValidationError
from tests.launcher.conftest import (
    PROJECT,
    Invoke,
    Network,
    Template,
    Workflow,
    instance_of,
    launch_tagged,
)

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_stepfunctions import SFNClient

OTHER_EXECUTION = (
    "arn:aws:states:eu-west-1:123456789012:execution:scheduled-gpu-model:weekly-2024-12-31"
)


def _state(ec2: EC2Client, instance_id: str) -> str:
    return str(instance_of(ec2, instance_id)["State"]["Name"])


def _launched_ago(
    seconds: int, ec2: EC2Client, template: Template, network: Network, tags: dict[str, str]
) -> str:
    """An instance whose LaunchTime is ``seconds`` in the past (moto stamps it at creation)."""
    then = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=seconds)
    with mock.patch("moto.ec2.models.instances.utcnow", return_value=then):
        return launch_tagged(ec2, template, network.subnet_ids[0], tags)


@pytest.fixture
def ended(workflow: Workflow, sfn: SFNClient) -> Workflow:
    """The workflow, its execution stopped (ABORTED): cleanup acts only on ended executions."""
    sfn.stop_execution(executionArn=workflow.execution_arn)
    return workflow


@pytest.fixture
def run_tags(workflow: Workflow) -> dict[str, str]:
    return {"Project": PROJECT, "StepFunctionsExecution": workflow.execution_arn}


def test_cleanup_terminates_every_instance_of_the_execution(
    *,
    invoke: Invoke,
    ended: Workflow,
    ec2: EC2Client,
    launch_template: Template,
    network: Network,
    run_tags: dict[str, str],
) -> None:
    first = launch_tagged(ec2, launch_template, network.subnet_ids[0], run_tags)
    second = launch_tagged(ec2, launch_template, network.subnet_ids[1], run_tags)
    result = invoke(
        {"action": "cleanup", "execution_arn": ended.execution_arn, "status": "ABORTED"}
    )
    assert sorted(result["terminated"]) == sorted([first, second])
    assert result["already_gone"] == []
    assert {_state(ec2, first), _state(ec2, second)} == {"terminated"}


def test_cleanup_leaves_other_executions_and_untagged_instances_alone(
    invoke: Invoke,
    ended: Workflow,
    ec2: EC2Client,
    launch_template: Template,
    network: Network,
) -> None:
    other_run = launch_tagged(
        ec2,
        launch_template,
        network.subnet_ids[0],
        {"Project": PROJECT, "StepFunctionsExecution": OTHER_EXECUTION},
    )
    # Carries the execution tag but not the project's: the launcher may not touch it.
    not_ours = launch_tagged(
        ec2,
        launch_template,
        network.subnet_ids[0],
        {"StepFunctionsExecution": ended.execution_arn},
    )
    result = invoke(
        {"action": "cleanup", "execution_arn": ended.execution_arn, "status": "TIMED_OUT"}
    )
    assert result == {"terminated": [], "already_gone": []}
    assert {_state(ec2, other_run), _state(ec2, not_ours)} == {"running"}


def test_cleanup_with_nothing_left_succeeds(
    invoke: Invoke, ended: Workflow, launch_template: Template
) -> None:
    result = invoke(
        {"action": "cleanup", "execution_arn": ended.execution_arn, "status": "SUCCEEDED"}
    )
    assert result == {"terminated": [], "already_gone": []}


def test_cleanup_of_a_running_execution_terminates_nothing(
    *,
    invoke: Invoke,
    workflow: Workflow,
    ec2: EC2Client,
    launch_template: Template,
    network: Network,
    run_tags: dict[str, str],
) -> None:
    live = launch_tagged(ec2, launch_template, network.subnet_ids[0], run_tags)

    # The event claims the execution ended; Step Functions says it is RUNNING.
    with pytest.raises(EventValidationError, match="the execution is RUNNING") as refused:
        invoke(
            {"action": "cleanup", "execution_arn": workflow.execution_arn, "status": "SUCCEEDED"}
        )

    assert refused.value.fields == ["status"]
    assert _state(ec2, live) == "running"


def test_cleanup_of_an_execution_step_functions_does_not_know_is_refused(
    invoke: Invoke, workflow: Workflow
) -> None:
    with pytest.raises(EventValidationError, match="not an execution Step Functions knows"):
        invoke({"action": "cleanup", "execution_arn": OTHER_EXECUTION, "status": "FAILED"})


def test_sweep_terminates_project_instances_older_than_the_lifetime(
    invoke: Invoke,
    ec2: EC2Client,
    launch_template: Template,
    network: Network,
    run_tags: dict[str, str],
) -> None:
    old = _launched_ago(7200 + 60, ec2, launch_template, network, run_tags)
    young = _launched_ago(600, ec2, launch_template, network, run_tags)
    result = invoke({"action": "sweep"})
    assert result == {"terminated": [old], "already_gone": []}
    assert _state(ec2, old) == "terminated"
    assert _state(ec2, young) == "running"


def test_sweep_reads_the_lifetime_at_invocation(
    *,
    invoke: Invoke,
    ec2: EC2Client,
    launch_template: Template,
    network: Network,
    run_tags: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    instance = _launched_ago(900, ec2, launch_template, network, run_tags)
    assert invoke({"action": "sweep"})["terminated"] == []
    monkeypatch.setenv("MAX_INSTANCE_LIFETIME_SECONDS", "600")
    assert invoke({"action": "sweep"})["terminated"] == [instance]


def test_sweep_terminates_a_stopped_old_instance(
    invoke: Invoke,
    ec2: EC2Client,
    launch_template: Template,
    network: Network,
    run_tags: dict[str, str],
) -> None:
    # A stopped instance still bills for its volumes.
    old = _launched_ago(10_000, ec2, launch_template, network, run_tags)
    ec2.stop_instances(InstanceIds=[old])
    assert invoke({"action": "sweep"})["terminated"] == [old]


def test_sweep_never_touches_instances_without_the_project_tag(
    invoke: Invoke, ec2: EC2Client, launch_template: Template, network: Network
) -> None:
    old_foreign = _launched_ago(86_400, ec2, launch_template, network, {"Project": "other"})
    assert invoke({"action": "sweep"}) == {"terminated": [], "already_gone": []}
    assert _state(ec2, old_foreign) == "running"
