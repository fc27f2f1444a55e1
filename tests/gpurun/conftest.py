"""Fixtures of the operations tests.

The agent tests' configuration and fake world; the workflow tests' moto (in-process, with the
project's workarounds, so executions run) and their weekly-run deployment; and a small deployed
stack for the CLI's read-only commands.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from local_aws import terraform_values
from local_aws.deployment import Deployment, LocalSettings
from local_aws.moto_workarounds import MOTO_CONFIG, apply_moto_workarounds
from local_aws.server import LocalAws
from tests.support.workflow import wait_for_end

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

REGION = "eu-west-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/gpurun-test"

PROJECT = "ops-test"
MODEL_PREFIX = "models/current/"
SCHEDULE = f"{PROJECT}-weekly"
AGENT_LOG_GROUP = f"/{PROJECT}/instance-agent"
LAUNCHER_LOG_GROUP = f"/aws/lambda/{PROJECT}-launcher"


@dataclass
class SmallStack:
    """What Terraform would have deployed, enough for doctor, status and logs."""

    sfn: SFNClient
    s3: Any
    ec2: Any
    bucket: str
    activity_arn: str
    launch_template_id: str
    state_machine_arn: str
    subnet_ids: list[str]
    image_id: str

    def flags(self) -> list[str]:
        return [
            "--region",
            REGION,
            "--state-machine-arn",
            self.state_machine_arn,
            "--bucket",
            self.bucket,
            "--activity-arn",
            self.activity_arn,
            "--launch-template-id",
            self.launch_template_id,
            "--schedule-name",
            SCHEDULE,
            "--agent-log-group",
            AGENT_LOG_GROUP,
            "--launcher-log-group",
            LAUNCHER_LOG_GROUP,
        ]

    def run(self, name: str, instance: dict[str, Any] | None = None) -> str:
        """One finished execution of the stack's state machine; returns its ARN."""
        arn = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=name,
            input=json.dumps({"instance": instance}),
        )["executionArn"]
        wait_for_end(self.sfn, arn)
        return arn

    def put_record(self, name: str, record: dict[str, Any]) -> None:
        self.s3.put_object(
            Bucket=self.bucket, Key=f"runs/{name}/run.json", Body=json.dumps(record).encode()
        )


def definition(defaults: dict[str, Any]) -> str:
    """The weekly run's shape where it matters to the CLI: LoadRunDefaults holds the defaults,
    StartInstance exits with the instance (here passed in as the execution input)."""
    return json.dumps(
        {
            "StartAt": "LoadRunDefaults",
            "States": {
                "LoadRunDefaults": {
                    "Type": "Pass",
                    "Result": defaults,
                    "ResultPath": "$.run",
                    "Next": "StartInstance",
                },
                "StartInstance": {"Type": "Pass", "Next": "Done"},
                "Done": {"Type": "Succeed"},
            },
        }
    )


def rendered_user_data(bucket: str) -> str:
    """The user data as Terraform renders it for this stack (base64, as EC2 stores it)."""
    settings = LocalSettings(name=PROJECT, region=REGION)
    deployment = Deployment(
        settings,
        bucket_name=bucket,
        activity_arn=f"arn:aws:states:{REGION}:123456789012:activity:a",
    )
    return terraform_values.plan(settings, account_id="123456789012").local_user_data(deployment)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process, executing state machines (their Pass states), for the read-only
    commands; ``gpurun run`` is tested against the local AWS (``weekly_run``)."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "MOTO_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    apply_moto_workarounds(activity_poll_seconds=1)
    with mock_aws(config=MOTO_CONFIG):
        yield


@pytest.fixture
def cli_env(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    """The CLI's clients pointed at the local AWS, with its fake credentials."""
    for name, value in local_aws.child_env({}).items():
        monkeypatch.setenv(name, value)
    return local_aws


@pytest.fixture
def small_stack(aws: None, tmp_path: Path) -> SmallStack:
    ec2 = boto3.client("ec2", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    sfn_client: SFNClient = boto3.client("stepfunctions", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{n}.0/24", AvailabilityZone=zone)["Subnet"][
            "SubnetId"
        ]
        for n, zone in enumerate([f"{REGION}a", f"{REGION}b"])
    ]
    # An image of our own: after tests/launcher (MOTO_EC2_LOAD_DEFAULT_AMIS=false) the first
    # in-process mock of the same process can start without moto's default AMIs.
    builder = ec2.run_instances(ImageId="ami-0f00dfeedc0ffee42", MinCount=1, MaxCount=1)
    builder_id = builder["Instances"][0]["InstanceId"]
    image_id = ec2.create_image(InstanceId=builder_id, Name=f"{PROJECT}-gpu")["ImageId"]
    ec2.terminate_instances(InstanceIds=[builder_id])
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=f"/{PROJECT}/ami", Value=image_id, Type="String"
    )
    bucket = f"{PROJECT}-models"
    template_id = ec2.create_launch_template(
        LaunchTemplateName=PROJECT,
        LaunchTemplateData={
            "ImageId": f"resolve:ssm:/{PROJECT}/ami",
            "InstanceType": "g5.xlarge",
            "UserData": rendered_user_data(bucket),
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket=bucket, Key=f"{MODEL_PREFIX}manifest.json", Body=b"{}")
    activity_arn = sfn_client.create_activity(name=f"{PROJECT}-run-model")["activityArn"]
    # Terraform creates both log groups with the stack (the monitoring and launcher modules).
    logs = boto3.client("logs", region_name=REGION)
    for group in (AGENT_LOG_GROUP, LAUNCHER_LOG_GROUP):
        logs.create_log_group(logGroupName=group)
    defaults = {
        "instance_types": ["g5.xlarge", "g4dn.xlarge"],
        "subnet_ids": subnet_ids,
        "model_prefix": MODEL_PREFIX,
        "max_runtime_seconds": 3600,
        "parameters": {},
    }
    machine = sfn_client.create_state_machine(
        name=f"{PROJECT}-weekly-run", definition=definition(defaults), roleArn=ROLE_ARN
    )["stateMachineArn"]
    boto3.client("scheduler", region_name=REGION).create_schedule(
        Name=SCHEDULE,
        ScheduleExpression="cron(0 6 ? * TUE *)",
        ScheduleExpressionTimezone="Europe/Paris",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": machine, "RoleArn": ROLE_ARN, "Input": "{}"},
        State="ENABLED",
    )
    return SmallStack(
        sfn_client, s3, ec2, bucket, activity_arn, template_id, machine, subnet_ids, image_id
    )


@pytest.fixture(autouse=True)
def isolated_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No GPURUN_* variable of the developer's shell and no ./terraform leak into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("GPURUN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
