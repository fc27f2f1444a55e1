"""The local deploy's values are Terraform's plan (local_aws/terraform_values.py): what reaches
the emulator equals what Terraform planned, with only the identifiers swapped, and a value that
still holds an identifier the local AWS has no counterpart for is refused."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from local_aws import terraform_values
from local_aws.deployment import Deployment, LocalSettings, deploy
from local_aws.server import LocalAws
from local_aws.terraform_values import (
    EXECUTION_RULE,
    EXECUTION_TARGET,
    IDENTIFIERS,
    INSTANCE_LOST_RULE,
    INSTANCE_LOST_TARGET,
    LAUNCHER_FUNCTION,
    MockIdentifierError,
    TerraformValues,
)
from local_aws.user_data import agent_config_from_user_data, decode_user_data
from local_aws.vm.artifact import ARTIFACT_KEY
from terraform_tools import evaluate as tf_evaluate

# Below Terraform's own bounds, as local runs set them (LOCAL_RELAXATIONS).
SETTINGS = LocalSettings(
    name="values-check",
    heartbeat_timeout_seconds=8,
    execution_timeout_seconds=120,
    run_parameters={"week": 49},
)


@pytest.fixture(scope="module")
def deployed(local_aws_server_for_module: LocalAws) -> Iterator[tuple[LocalAws, Deployment]]:
    yield local_aws_server_for_module, deploy(local_aws_server_for_module, SETTINGS)
    local_aws_server_for_module.reset()


def _swap(value: Any, deployment: Deployment) -> Any:
    """What localizing must do: each placeholder -> the local identifier, nothing else."""
    text = json.dumps(value)
    for placeholder, field in sorted(IDENTIFIERS.values(), key=lambda p: -len(p[0])):
        text = text.replace(placeholder, getattr(deployment, field))
    for index, subnet in enumerate(deployment.subnet_ids):
        text = text.replace(terraform_values.subnet_placeholder(index), subnet)
    return json.loads(text)


@pytest.mark.slow
def test_the_launchers_environment_is_terraforms(deployed: tuple[LocalAws, Deployment]) -> None:
    aws, deployment = deployed
    configuration = aws.client("lambda").get_function_configuration(
        FunctionName=deployment.launcher_function_name
    )
    deployed_env = configuration["Environment"]["Variables"]
    planned = deployment.values.launcher_environment()

    # The local AWS adds only its connection (endpoint, fake credentials).
    extra = set(deployed_env) - set(planned)
    assert all(name.startswith("AWS_") for name in extra), extra
    local = {name: deployed_env[name] for name in planned}
    assert local == {
        **_swap(planned, deployment),
        "LAUNCH_TEMPLATE_VERSION": deployment.launch_template_version,
    }
    assert local["STATE_MACHINE_ARN"] == deployment.state_machine_arn
    assert local["ACTIVITY_ARN"] == deployment.activity_arn
    assert local["LAUNCH_TEMPLATE_ID"] == deployment.launch_template_id


@pytest.mark.slow
def test_the_state_machine_definition_is_terraforms(
    deployed: tuple[LocalAws, Deployment],
) -> None:
    aws, deployment = deployed
    described = aws.client("stepfunctions").describe_state_machine(
        stateMachineArn=deployment.state_machine_arn
    )
    definition = json.loads(described["definition"])
    planned = json.loads(deployment.values.state_machine_definition())

    assert definition == _swap(planned, deployment)
    assert definition["TimeoutSeconds"] == SETTINGS.execution_timeout_seconds
    assert definition["States"]["RunModel"]["Resource"] == deployment.activity_arn
    defaults = definition["States"]["LoadRunDefaults"]["Result"]
    assert defaults["subnet_ids"] == deployment.subnet_ids
    assert defaults["parameters"] == {"week": 49}
    assert "placeholder" not in described["definition"]


@pytest.mark.slow
def test_the_user_data_is_terraforms(deployed: tuple[LocalAws, Deployment]) -> None:
    _, deployment = deployed
    planned = deployment.values
    config = agent_config_from_user_data(deployment.user_data)

    assert config == _swap(planned.agent_config(), deployment)
    assert config["heartbeat_interval_seconds"] == 5  # max(5, floor(8 / 4)), Terraform's formula
    text = decode_user_data(deployment.user_data)
    assert "placeholder" not in text
    # Outside the agent configuration, the document is Terraform's line for line.
    assert len(text.splitlines()) == len(planned.user_data().splitlines())


@pytest.mark.slow
def test_the_launch_template_is_terraforms(deployed: tuple[LocalAws, Deployment]) -> None:
    aws, deployment = deployed
    (version,) = aws.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=deployment.launch_template_id, Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    described = version["LaunchTemplateData"]
    planned = deployment.values.launch_template_data()

    assert described == _swap({**planned, "UserData": deployment.user_data}, deployment)
    assert described["SecurityGroupIds"] == [deployment.security_group_id]
    assert described["IamInstanceProfile"] == {"Arn": deployment.instance_profile_arn}
    assert described["InstanceType"] == SETTINGS.instance_types[0]
    tags = {spec["ResourceType"]: spec["Tags"] for spec in described["TagSpecifications"]}
    assert tags["instance"] == [{"Key": "Project", "Value": SETTINGS.name}]


@pytest.mark.slow
def test_the_safety_nets_rules_are_terraforms(deployed: tuple[LocalAws, Deployment]) -> None:
    aws, deployment = deployed
    events = aws.client("events")
    for rule, target, name in (
        (EXECUTION_RULE, EXECUTION_TARGET, deployment.execution_rule_name),
        (INSTANCE_LOST_RULE, INSTANCE_LOST_TARGET, deployment.instance_lost_rule_name),
    ):
        described = events.describe_rule(Name=name)
        assert json.loads(described["EventPattern"]) == _swap(
            json.loads(deployment.values.event_pattern(rule)), deployment
        )
        (deployed_target,) = events.list_targets_by_rule(Rule=name)["Targets"]
        assert deployed_target["Arn"] == deployment.launcher_function_arn
        assert deployed_target["InputTransformer"] == deployment.values.input_transformer(target)
    pattern = json.loads(events.describe_rule(Name=deployment.execution_rule_name)["EventPattern"])
    assert pattern["detail"]["stateMachineArn"] == [deployment.state_machine_arn]


@pytest.mark.slow
def test_the_schedules_are_terraforms(deployed: tuple[LocalAws, Deployment]) -> None:
    aws, deployment = deployed
    scheduler = aws.client("scheduler")
    weekly = scheduler.get_schedule(Name=deployment.weekly_schedule_name)
    assert weekly["ScheduleExpression"] == SETTINGS.schedule_expression
    assert weekly["ScheduleExpressionTimezone"] == SETTINGS.schedule_timezone
    sweeper = scheduler.get_schedule(Name=deployment.sweeper_schedule_name)
    assert sweeper["Target"]["Arn"] == deployment.launcher_function_arn
    assert json.loads(sweeper["Target"]["Input"]) == {"action": "sweep"}
    assert weekly["Target"]["Arn"] == deployment.state_machine_arn


# ---- the refusals ----------------------------------------------------------------------------


def _values_with_environment(**environment: str) -> TerraformValues:
    planned = terraform_values.plan(LocalSettings(), account_id="123456789012")
    resources = dict(planned.evaluation.resources)
    function = dict(resources[LAUNCHER_FUNCTION])
    function["environment"] = [{"variables": {**planned.launcher_environment(), **environment}}]
    resources[LAUNCHER_FUNCTION] = function
    return dataclasses.replace(planned, evaluation=tf_evaluate.Evaluation(resources))


def _deployment() -> Deployment:
    return Deployment(
        settings=LocalSettings(),
        activity_arn="arn:aws:states:eu-west-1:123456789012:activity:a",
        bucket_name="b",
        launch_template_id="lt-1",
        launch_template_version="1",
        launcher_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:f",
        subnet_ids=["subnet-1", "subnet-2"],
    )


def test_a_mock_identifier_without_a_local_counterpart_is_refused() -> None:
    # An IAM role's ARN from terraform/tests/mocks: no local resource stands for it.
    values = _values_with_environment(
        ROLE="arn:aws:iam::123456789012:role/scheduled-gpu-model-role"
    )

    with pytest.raises(MockIdentifierError, match="no local resource stands for"):
        values.local_launcher_environment(_deployment())


def test_an_identifier_the_deploy_has_not_created_yet_is_refused() -> None:
    values = _values_with_environment()
    deployment = dataclasses.replace(_deployment(), activity_arn="")

    with pytest.raises(MockIdentifierError, match=r"activity_arn\) the deploy has not created"):
        values.local_launcher_environment(deployment)


def test_localizing_swaps_every_identifier_and_nothing_else() -> None:
    values = _values_with_environment()
    deployment = _deployment()
    local = values.local_launcher_environment(deployment)

    assert local["ACTIVITY_ARN"] == deployment.activity_arn
    assert local["LAUNCH_TEMPLATE_ID"] == "lt-1"
    assert local["PROJECT_NAME"] == "scheduled-gpu-model"
    assert local["MAX_INSTANCE_LIFETIME_SECONDS"] == str(200 * 60)


def test_the_user_datas_encoded_agent_config_is_localized_too() -> None:
    values = terraform_values.plan(LocalSettings(), account_id="123456789012")
    local = values.local_user_data(_deployment())

    # Planned: the placeholder, inside the base64 write_files entry (not visible in the text).
    (activity_placeholder, _) = IDENTIFIERS[("module.workflow.aws_sfn_activity.this", "id")]
    assert values.agent_config()["activity_arn"] == activity_placeholder
    assert activity_placeholder not in values.user_data()
    config = agent_config_from_user_data(local)
    assert config["activity_arn"] == _deployment().activity_arn
    assert config["model"]["bucket"] == "b"


def test_every_relaxation_finds_its_check_in_terraform() -> None:
    tf_files = "".join(p.read_text() for p in terraform_values.TERRAFORM_DIR.rglob("*.tf"))
    for text, _ in terraform_values.LOCAL_RELAXATIONS:
        assert text in tf_files, text


def test_the_user_data_fetches_the_agent_where_the_vm_harness_publishes_it() -> None:
    values = terraform_values.plan(LocalSettings(), account_id="123456789012")
    local = decode_user_data(values.local_user_data(_deployment()))

    assert f'ARTIFACT_URI="s3://b/{ARTIFACT_KEY}"' in local
