"""The local deploy creates, in the emulator, what terraform/ declares."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from local_aws.deployment import Deployment, LocalSettings, deploy
from local_aws.server import LocalAws
from local_aws.user_data import agent_config_from_user_data

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployed(local_aws_server_for_module: LocalAws) -> Iterator[tuple[LocalAws, Deployment]]:
    settings = LocalSettings(heartbeat_timeout_seconds=8, execution_timeout_seconds=120)
    yield local_aws_server_for_module, deploy(local_aws_server_for_module, settings)
    local_aws_server_for_module.reset()


def test_user_data_carries_terraforms_agent_config(deployed: tuple[LocalAws, Deployment]) -> None:
    _, deployment = deployed
    config = agent_config_from_user_data(deployment.user_data)
    assert config["activity_arn"] == deployment.activity_arn
    assert config["model"] == {"bucket": deployment.bucket_name, "prefix": "models/current/"}
    assert config["heartbeat_interval_seconds"] == 5  # max(5, floor(8 / 4)), as terraform/main.tf


def test_state_machine_definition_is_the_rendered_template(
    deployed: tuple[LocalAws, Deployment],
) -> None:
    aws, deployment = deployed
    described = aws.client("stepfunctions").describe_state_machine(
        stateMachineArn=deployment.state_machine_arn
    )
    definition = json.loads(described["definition"])
    assert definition["TimeoutSeconds"] == 120
    assert deployment.activity_arn in described["definition"]


def test_launcher_function_runs_the_real_handler(deployed: tuple[LocalAws, Deployment]) -> None:
    aws, deployment = deployed
    response = aws.client("lambda").invoke(
        FunctionName=deployment.launcher_function_name,
        Payload=json.dumps({"action": "sweep"}).encode(),
    )
    assert "FunctionError" not in response, response["Payload"].read()
    assert json.loads(response["Payload"].read()) == {"terminated": [], "already_gone": []}


def test_execution_rule_targets_the_launcher_with_the_cleanup_transformer(
    deployed: tuple[LocalAws, Deployment],
) -> None:
    aws, deployment = deployed
    (target,) = aws.client("events").list_targets_by_rule(Rule=deployment.execution_rule_name)[
        "Targets"
    ]
    assert target["Arn"] == deployment.launcher_function_arn
    assert '"action":"cleanup"' in target["InputTransformer"]["InputTemplate"]


def test_sweeper_schedule_targets_the_launcher_with_sweep(
    deployed: tuple[LocalAws, Deployment],
) -> None:
    aws, deployment = deployed
    schedule = aws.client("scheduler").get_schedule(Name=deployment.sweeper_schedule_name)
    assert schedule["Target"]["Arn"] == deployment.launcher_function_arn
    assert json.loads(schedule["Target"]["Input"]) == {"action": "sweep"}
