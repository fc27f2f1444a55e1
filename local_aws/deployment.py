"""Deploy into the local AWS what terraform/ declares, step by step, from the same templates.

``TERRAFORM_COUNTERPARTS`` maps every Terraform address of the resource types the local run
needs to the deploy step that creates its local counterpart;
tests/local_aws/test_terraform_parity.py checks it against terraform/ both ways, and checks that
the template variables and the launcher's environment passed here are the ones the HCL passes.
Values that must differ on a laptop (short timeouts, a fixed AMI id) come only from
``LocalSettings``, whose defaults are Terraform's.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import io
import json
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from local_aws.server import LocalAws
from local_aws.terraform_render import render_template_file
from run_contract.limits import heartbeat_interval_seconds
from run_contract.statuses import FAILED_STATUSES

REPO_ROOT = Path(__file__).resolve().parent.parent
TERRAFORM_DIR = REPO_ROOT / "terraform"
USER_DATA_TEMPLATE = TERRAFORM_DIR / "modules" / "launch_template" / "user_data.yaml.tftpl"
ASL_TEMPLATE = TERRAFORM_DIR / "modules" / "workflow" / "weekly_run.asl.json.tftpl"
FUNCTIONS_DIR = REPO_ROOT / "functions"
LAUNCHER_HANDLER = "launcher.app.handler"


@dataclasses.dataclass(frozen=True)
class LocalSettings:
    """The root module's variables that the local run uses; defaults = terraform/variables.tf."""

    name: str = "scheduled-gpu-model"
    region: str = "eu-west-1"
    instance_types: tuple[str, ...] = ("g5.xlarge", "g6.xlarge", "g4dn.xlarge")
    model_prefix: str = "models/current/"
    run_parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    model_command: tuple[str, ...] = ()
    model_shell_command: str | None = None
    warm_paths: tuple[str, ...] = ()
    container_image: str | None = None
    max_runtime_seconds: int = 3600
    allow_root_volume_fallback: bool = False
    heartbeat_timeout_seconds: int = 240
    task_wait_seconds: int = 1800
    activity_timeout_seconds: int = 7200
    execution_timeout_seconds: int = 10800
    max_instance_lifetime_minutes: int = 200
    root_volume_size_gib: int = 120
    schedule_expression: str = "cron(0 6 ? * TUE *)"
    schedule_timezone: str = "UTC"
    sweeper_schedule_expression: str = "rate(15 minutes)"
    # Local only: moto does not resolve "resolve:ssm:" AMIs nor validate ids.
    ami: str = "ami-12c6146b"
    availability_zones: tuple[str, ...] = ("a", "b")

    def __post_init__(self) -> None:
        if not self.instance_types:
            raise ValueError("LocalSettings.instance_types: give at least one instance type")
        if not self.model_prefix.endswith("/"):
            raise ValueError(f"LocalSettings.model_prefix: {self.model_prefix!r} must end in '/'")
        for field in (
            "max_runtime_seconds",
            "heartbeat_timeout_seconds",
            "activity_timeout_seconds",
            "execution_timeout_seconds",
            "max_instance_lifetime_minutes",
        ):
            if getattr(self, field) < 1:
                raise ValueError(f"LocalSettings.{field}: must be >= 1")

    @property
    def state_machine_name(self) -> str:
        return f"{self.name}-weekly-run"

    @property
    def launcher_name(self) -> str:
        return f"{self.name}-launcher"

    @property
    def agent_log_group_name(self) -> str:
        """terraform/main.tf's aws_cloudwatch_log_group.agent (the user data ships to it)."""
        return f"/{self.name}/instance-agent"

    @property
    def launcher_log_group_name(self) -> str:
        return f"/aws/lambda/{self.launcher_name}"

    @property
    def workflow_log_group_name(self) -> str:
        return f"/aws/vendedlogs/states/{self.state_machine_name}"

    @property
    def bucket_name(self) -> str:
        # Terraform uses bucket_prefix (a random suffix); a fixed name keeps local runs readable.
        return f"{self.name}-models-local"


@dataclasses.dataclass
class Deployment:
    """What was deployed: the identifiers the demo, the supervisor and the nets need."""

    settings: LocalSettings
    bucket_name: str = ""
    activity_arn: str = ""
    instance_profile_arn: str = ""
    launcher_role_arn: str = ""
    launcher_function_name: str = ""
    launcher_function_arn: str = ""
    vpc_id: str = ""
    subnet_ids: list[str] = dataclasses.field(default_factory=list)
    launch_template_id: str = ""
    launch_template_version: str = ""
    user_data: str = ""
    state_machine_arn: str = ""
    execution_rule_name: str = ""
    instance_lost_rule_name: str = ""
    weekly_schedule_name: str = ""
    sweeper_schedule_name: str = ""


# -- template variables and environment, exactly as the HCL passes them ----------------------


def agent_config(settings: LocalSettings, *, activity_arn: str, bucket: str) -> dict[str, Any]:
    """terraform/main.tf's ``local.agent_config``."""
    return {
        "region": settings.region,
        "activity_arn": activity_arn,
        "model": {"bucket": bucket, "prefix": settings.model_prefix},
        "storage": {
            "mount_point": "/mnt/model-store",
            "allow_root_volume_fallback": settings.allow_root_volume_fallback,
        },
        "heartbeat_interval_seconds": heartbeat_interval_seconds(
            settings.heartbeat_timeout_seconds
        ),
        "task_wait_seconds": settings.task_wait_seconds,
        "run": {
            "command": list(settings.model_command),
            "shell_command": settings.model_shell_command,
            "container_image": settings.container_image,
        },
        "warm": {"paths": list(settings.warm_paths)},
        "max_runtime_seconds": settings.max_runtime_seconds,
        "metrics": {"namespace": settings.name},
        "root_volume_gib": settings.root_volume_size_gib,
    }


def user_data_variables(settings: LocalSettings, deployment: Deployment) -> dict[str, Any]:
    """modules/launch_template's templatefile() variables."""
    return {
        "max_lifetime_minutes": settings.max_instance_lifetime_minutes,
        "agent_config_json": json.dumps(
            agent_config(
                settings, activity_arn=deployment.activity_arn, bucket=deployment.bucket_name
            ),
            separators=(",", ":"),
        ),
        # local_aws.vm.artifact.ARTIFACT_KEY: where a VM's bootstrap finds the published agent.
        "agent_artifact_s3_uri": f"s3://{deployment.bucket_name}/agent/instance-agent.tar.gz",
        "agent_artifact_version": "local",
        "region": settings.region,
        "log_group_name": settings.agent_log_group_name,
    }


def asl_variables(settings: LocalSettings, deployment: Deployment) -> dict[str, Any]:
    """modules/workflow's templatefile() variables (docs/design.md lists exactly these)."""
    return {
        "launcher_function_arn": deployment.launcher_function_arn,
        "activity_arn": deployment.activity_arn,
        "model_bucket": deployment.bucket_name,
        "run_defaults": {
            "instance_types": list(settings.instance_types),
            "subnet_ids": list(deployment.subnet_ids),
            "model_prefix": settings.model_prefix,
            "max_runtime_seconds": settings.max_runtime_seconds,
            "parameters": dict(settings.run_parameters),
        },
        "heartbeat_timeout_seconds": settings.heartbeat_timeout_seconds,
        "activity_timeout_seconds": settings.activity_timeout_seconds,
        "execution_timeout_seconds": settings.execution_timeout_seconds,
    }


def launcher_environment(settings: LocalSettings, deployment: Deployment) -> dict[str, str]:
    """modules/launcher_function's ``environment.variables``."""
    return {
        "LAUNCH_TEMPLATE_ID": deployment.launch_template_id,
        "LAUNCH_TEMPLATE_VERSION": deployment.launch_template_version,
        "PROJECT_NAME": settings.name,
        # Terraform builds it from the name too (the state machine is created after the function).
        "STATE_MACHINE_ARN": deployment.activity_arn.rsplit(":activity:", 1)[0]
        + f":stateMachine:{settings.state_machine_name}",
        "ACTIVITY_ARN": deployment.activity_arn,
        "MAX_INSTANCE_LIFETIME_SECONDS": str(settings.max_instance_lifetime_minutes * 60),
        "POWERTOOLS_SERVICE_NAME": "launcher",
        "POWERTOOLS_METRICS_NAMESPACE": settings.name,
    }


def execution_rule_pattern(state_machine_arn: str) -> dict[str, Any]:
    """modules/safety_nets' ``event_pattern``."""
    return {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {
            "status": list(FAILED_STATUSES),
            "stateMachineArn": [state_machine_arn],
        },
    }


# modules/safety_nets' instance_lost rule: every instance of the account; the launcher filters.
INSTANCE_LOST_PATTERN: dict[str, Any] = {
    "source": ["aws.ec2"],
    "detail-type": ["EC2 Instance State-change Notification"],
    "detail": {"state": ["shutting-down", "terminated"]},
}
INSTANCE_LOST_INPUT_TRANSFORMER: dict[str, Any] = {
    "InputPathsMap": {"instance_id": "$.detail.instance-id", "state": "$.detail.state"},
    "InputTemplate": '{"action":"instance_lost","instance_id":<instance_id>,"state":<state>}',
}

CLEANUP_INPUT_TRANSFORMER: dict[str, Any] = {
    "InputPathsMap": {"execution_arn": "$.detail.executionArn", "status": "$.detail.status"},
    "InputTemplate": '{"action":"cleanup","execution_arn":<execution_arn>,"status":<status>}',
}


# -- the deploy steps ------------------------------------------------------------------------


def _trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )


def deploy_model_bucket(aws: LocalAws, d: Deployment) -> None:
    s3 = aws.client("s3")
    d.bucket_name = d.settings.bucket_name
    s3.create_bucket(
        Bucket=d.bucket_name, CreateBucketConfiguration={"LocationConstraint": aws.region}
    )
    s3.put_bucket_versioning(Bucket=d.bucket_name, VersioningConfiguration={"Status": "Enabled"})


def _log_group(aws: LocalAws, name: str) -> None:
    # The local Lambda runtime creates its function's group on first invocation, as Lambda does.
    logs = aws.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=name)


def deploy_agent_log_group(aws: LocalAws, d: Deployment) -> None:
    """The group the CloudWatch agent of the user data ships to (local_aws/log_shipping.py)."""
    _log_group(aws, d.settings.agent_log_group_name)


def deploy_launcher_log_group(aws: LocalAws, d: Deployment) -> None:
    _log_group(aws, d.settings.launcher_log_group_name)


def deploy_workflow_log_group(aws: LocalAws, d: Deployment) -> None:
    _log_group(aws, d.settings.workflow_log_group_name)


def deploy_activity(aws: LocalAws, d: Deployment) -> None:
    name = f"{d.settings.state_machine_name}-run-model"
    d.activity_arn = aws.client("stepfunctions").create_activity(name=name)["activityArn"]


def deploy_instance_role(aws: LocalAws, d: Deployment) -> None:
    iam = aws.client("iam")
    name = f"{d.settings.name}-instance"
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=_trust("ec2.amazonaws.com"))
    profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    d.instance_profile_arn = profile["Arn"]


def deploy_network(aws: LocalAws, d: Deployment) -> None:
    """The VPC and subnets the user passes to Terraform (vpc_id, subnet_ids): one per AZ."""
    ec2 = aws.client("ec2")
    d.vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    for index, zone in enumerate(d.settings.availability_zones):
        subnet = ec2.create_subnet(
            VpcId=d.vpc_id,
            CidrBlock=f"10.42.{index}.0/24",
            AvailabilityZone=f"{aws.region}{zone}",
        )["Subnet"]
        d.subnet_ids.append(subnet["SubnetId"])


def deploy_launch_template(aws: LocalAws, d: Deployment) -> None:
    ec2 = aws.client("ec2")
    settings = d.settings
    group_id = ec2.create_security_group(
        GroupName=f"{settings.name}-instances", Description="no ingress", VpcId=d.vpc_id
    )["GroupId"]
    rendered = render_template_file(USER_DATA_TEMPLATE, user_data_variables(settings, d))
    d.user_data = base64.b64encode(rendered.encode("utf-8")).decode("ascii")
    template = ec2.create_launch_template(
        LaunchTemplateName=settings.name,
        LaunchTemplateData={
            "ImageId": settings.ami,
            "InstanceType": settings.instance_types[0],
            "InstanceInitiatedShutdownBehavior": "terminate",
            "SecurityGroupIds": [group_id],
            "UserData": d.user_data,
            "IamInstanceProfile": {"Arn": d.instance_profile_arn},
            "MetadataOptions": {
                "HttpEndpoint": "enabled",
                "HttpTokens": "required",
                "HttpPutResponseHopLimit": 2,
                "InstanceMetadataTags": "enabled",
            },
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": "Project", "Value": settings.name}]},
                {"ResourceType": "volume", "Tags": [{"Key": "Project", "Value": settings.name}]},
            ],
        },
    )["LaunchTemplate"]
    d.launch_template_id = template["LaunchTemplateId"]
    d.launch_template_version = str(template["LatestVersionNumber"])


def functions_zip() -> bytes:
    """functions/ as Terraform's archive_file zips it (sources only, no caches)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(FUNCTIONS_DIR.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(FUNCTIONS_DIR).as_posix())
    return buffer.getvalue()


def deploy_launcher_function(aws: LocalAws, d: Deployment) -> None:
    """The function from functions/, as Terraform zips it; the local Lambda runtime runs it."""
    iam = aws.client("iam")
    name = d.settings.launcher_name
    d.launcher_role_arn = iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=_trust("lambda.amazonaws.com")
    )["Role"]["Arn"]
    # The function's boto3 clients must reach the emulator, as its role and AWS's endpoints
    # would serve it on AWS: fake credentials and the endpoint in its environment.
    connection = {
        k: v
        for k, v in aws.child_env({}).items()
        if k.startswith("AWS_") and k not in ("AWS_REGION",)
    }
    function = aws.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=d.launcher_role_arn,
        Handler=LAUNCHER_HANDLER,
        Code={"ZipFile": functions_zip()},
        Timeout=60,
        MemorySize=256,
        Environment={"Variables": {**launcher_environment(d.settings, d), **connection}},
    )
    d.launcher_function_name = name
    d.launcher_function_arn = function["FunctionArn"]


def deploy_state_machine(aws: LocalAws, d: Deployment) -> None:
    definition = render_template_file(ASL_TEMPLATE, asl_variables(d.settings, d))
    role = aws.client("iam").create_role(
        RoleName=f"{d.settings.state_machine_name}-states",
        AssumeRolePolicyDocument=_trust("states.amazonaws.com"),
    )["Role"]["Arn"]
    d.state_machine_arn = aws.client("stepfunctions").create_state_machine(
        name=d.settings.state_machine_name, definition=definition, roleArn=role, type="STANDARD"
    )["stateMachineArn"]


def deploy_execution_rule(aws: LocalAws, d: Deployment) -> None:
    events = aws.client("events")
    d.execution_rule_name = f"{d.settings.name}-execution-ended"
    events.put_rule(
        Name=d.execution_rule_name,
        EventPattern=json.dumps(execution_rule_pattern(d.state_machine_arn)),
        State="ENABLED",
    )
    events.put_targets(
        Rule=d.execution_rule_name,
        Targets=[
            {
                "Id": "launcher-cleanup",
                "Arn": d.launcher_function_arn,
                "InputTransformer": CLEANUP_INPUT_TRANSFORMER,
            }
        ],
    )


def _scheduler_role(aws: LocalAws, name: str) -> str:
    role: str = aws.client("iam").create_role(
        RoleName=name, AssumeRolePolicyDocument=_trust("scheduler.amazonaws.com")
    )["Role"]["Arn"]
    return role


def deploy_instance_lost_rule(aws: LocalAws, d: Deployment) -> None:
    events = aws.client("events")
    d.instance_lost_rule_name = f"{d.settings.name}-instance-lost"
    events.put_rule(
        Name=d.instance_lost_rule_name,
        EventPattern=json.dumps(INSTANCE_LOST_PATTERN),
        State="ENABLED",
    )
    events.put_targets(
        Rule=d.instance_lost_rule_name,
        Targets=[
            {
                "Id": "launcher-instance-lost",
                "Arn": d.launcher_function_arn,
                "InputTransformer": INSTANCE_LOST_INPUT_TRANSFORMER,
            }
        ],
    )


def deploy_weekly_schedule(aws: LocalAws, d: Deployment) -> None:
    d.weekly_schedule_name = f"{d.settings.state_machine_name}-weekly"
    aws.client("scheduler").create_schedule(
        Name=d.weekly_schedule_name,
        ScheduleExpression=d.settings.schedule_expression,
        ScheduleExpressionTimezone=d.settings.schedule_timezone,
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": d.state_machine_arn,
            "RoleArn": _scheduler_role(aws, f"{d.settings.state_machine_name}-scheduler"),
            "Input": "{}",
        },
    )


def deploy_sweeper_schedule(aws: LocalAws, d: Deployment) -> None:
    d.sweeper_schedule_name = f"{d.settings.name}-sweeper"
    aws.client("scheduler").create_schedule(
        Name=d.sweeper_schedule_name,
        ScheduleExpression=d.settings.sweeper_schedule_expression,
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": d.launcher_function_arn,
            "RoleArn": _scheduler_role(aws, f"{d.settings.name}-sweeper"),
            "Input": json.dumps({"action": "sweep"}),
        },
    )


DeployStep = Callable[[LocalAws, Deployment], None]

# In dependency order. Each step creates the local counterpart of the Terraform addresses
# mapped to it in TERRAFORM_COUNTERPARTS.
DEPLOY_STEPS: tuple[DeployStep, ...] = (
    deploy_model_bucket,
    deploy_agent_log_group,
    deploy_launcher_log_group,
    deploy_workflow_log_group,
    deploy_activity,
    deploy_instance_role,
    deploy_network,
    deploy_launch_template,
    deploy_launcher_function,
    deploy_state_machine,
    deploy_execution_rule,
    deploy_instance_lost_rule,
    deploy_weekly_schedule,
    deploy_sweeper_schedule,
)

TERRAFORM_COUNTERPARTS: dict[str, DeployStep] = {
    "module.model_bucket.aws_s3_bucket.this": deploy_model_bucket,
    "aws_cloudwatch_log_group.agent": deploy_agent_log_group,
    "module.launcher_function.aws_cloudwatch_log_group.this": deploy_launcher_log_group,
    "module.workflow.aws_cloudwatch_log_group.this": deploy_workflow_log_group,
    "module.workflow.aws_sfn_activity.this": deploy_activity,
    "module.launch_template.aws_launch_template.this": deploy_launch_template,
    "module.launcher_function.aws_lambda_function.this": deploy_launcher_function,
    "module.workflow.aws_sfn_state_machine.this": deploy_state_machine,
    "module.safety_nets.aws_cloudwatch_event_rule.execution_ended_badly": deploy_execution_rule,
    "module.safety_nets.aws_cloudwatch_event_rule.instance_lost": deploy_instance_lost_rule,
    "module.workflow.aws_scheduler_schedule.this": deploy_weekly_schedule,
    "module.safety_nets.aws_scheduler_schedule.sweeper": deploy_sweeper_schedule,
}

# The templatefile() calls of terraform/ and the local functions that build their variables.
TEMPLATE_VARIABLES: dict[str, Callable[[LocalSettings, Deployment], Mapping[str, Any]]] = {
    "user_data.yaml.tftpl": user_data_variables,
    "weekly_run.asl.json.tftpl": asl_variables,
}


def deploy(aws: LocalAws, settings: LocalSettings | None = None) -> Deployment:
    """Run every deploy step against ``aws``; returns the identifiers created."""
    deployment = Deployment(settings=settings or LocalSettings())
    for step in DEPLOY_STEPS:
        step(aws, deployment)
    return deployment


def step_names(steps: Sequence[DeployStep]) -> list[str]:
    return [step.__name__ for step in steps]
