"""Deploy into the local AWS what terraform/ declares, step by step, with Terraform's values.

``TERRAFORM_COUNTERPARTS`` maps every Terraform address of the resource types the local run
needs to the deploy step that creates its local counterpart;
tests/local_aws/test_terraform_parity.py checks it against terraform/ both ways. The values
those resources carry (the user data with the agent configuration, the launcher's environment,
the state machine definition, the event patterns, input transformers and schedules) are the
ones Terraform plans for the same settings (local_aws/terraform_values.py), with the local
AWS's identifiers. Values that must differ on a laptop (short timeouts, a fixed AMI id) come
only from ``LocalSettings``, whose defaults are Terraform's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from local_aws import terraform_values
from local_aws.server import LocalAws
from local_aws.terraform_values import TerraformValues

REPO_ROOT = Path(__file__).resolve().parent.parent
TERRAFORM_DIR = REPO_ROOT / "terraform"
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
    # terraform/'s plan for these settings: every value below that is not an id comes from it.
    terraform: TerraformValues | None = dataclasses.field(default=None, repr=False)
    bucket_name: str = ""
    activity_arn: str = ""
    instance_profile_arn: str = ""
    security_group_id: str = ""
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
    # The agent artifact's version in the user data (Terraform's is the S3 object's version).
    agent_artifact_version: str = "local"

    @property
    def bucket_arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket_name}" if self.bucket_name else ""

    @property
    def values(self) -> TerraformValues:
        if self.terraform is None:
            raise RuntimeError("Deployment.terraform: run deploy_terraform_plan first")
        return self.terraform


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


def deploy_terraform_plan(aws: LocalAws, d: Deployment) -> None:
    """terraform/'s plan for the settings, in the local AWS's region and account (cached)."""
    account = aws.client("sts").get_caller_identity()["Account"]
    d.terraform = terraform_values.plan(d.settings, account_id=account)


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
    """The launch template with every setting Terraform plans for it (terraform_values)."""
    ec2 = aws.client("ec2")
    d.security_group_id = ec2.create_security_group(
        GroupName=f"{d.settings.name}-instances", Description="no ingress", VpcId=d.vpc_id
    )["GroupId"]
    data = d.values.local_launch_template_data(d)
    d.user_data = data["UserData"]
    template = ec2.create_launch_template(
        LaunchTemplateName=d.settings.name, LaunchTemplateData=data
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
        Environment={"Variables": {**d.values.local_launcher_environment(d), **connection}},
    )
    d.launcher_function_name = name
    d.launcher_function_arn = function["FunctionArn"]


def deploy_state_machine(aws: LocalAws, d: Deployment) -> None:
    definition = d.values.local_state_machine_definition(d)
    role = aws.client("iam").create_role(
        RoleName=f"{d.settings.state_machine_name}-states",
        AssumeRolePolicyDocument=_trust("states.amazonaws.com"),
    )["Role"]["Arn"]
    d.state_machine_arn = aws.client("stepfunctions").create_state_machine(
        name=d.settings.state_machine_name, definition=definition, roleArn=role, type="STANDARD"
    )["stateMachineArn"]
    # Terraform gives the launcher the ARN it builds from the name before the machine exists.
    expected = d.values.local_launcher_environment(d)["STATE_MACHINE_ARN"]
    if d.state_machine_arn != expected:
        raise RuntimeError(
            f"the local state machine is {d.state_machine_arn}, but Terraform's launcher "
            f"environment names {expected}: the local AWS's account or region differs"
        )


def deploy_execution_rule(aws: LocalAws, d: Deployment) -> None:
    events = aws.client("events")
    d.execution_rule_name = f"{d.settings.name}-execution-ended"
    events.put_rule(
        Name=d.execution_rule_name,
        EventPattern=d.values.local_event_pattern(terraform_values.EXECUTION_RULE, d),
        State="ENABLED",
    )
    events.put_targets(
        Rule=d.execution_rule_name,
        Targets=[
            {
                "Id": "launcher-cleanup",
                "Arn": d.launcher_function_arn,
                "InputTransformer": d.values.input_transformer(terraform_values.EXECUTION_TARGET),
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
        EventPattern=d.values.local_event_pattern(terraform_values.INSTANCE_LOST_RULE, d),
        State="ENABLED",
    )
    events.put_targets(
        Rule=d.instance_lost_rule_name,
        Targets=[
            {
                "Id": "launcher-instance-lost",
                "Arn": d.launcher_function_arn,
                "InputTransformer": d.values.input_transformer(
                    terraform_values.INSTANCE_LOST_TARGET
                ),
            }
        ],
    )


def deploy_weekly_schedule(aws: LocalAws, d: Deployment) -> None:
    d.weekly_schedule_name = f"{d.settings.state_machine_name}-weekly"
    schedule = d.values.schedule(terraform_values.WEEKLY_SCHEDULE)
    aws.client("scheduler").create_schedule(
        Name=d.weekly_schedule_name,
        ScheduleExpression=schedule["expression"],
        ScheduleExpressionTimezone=schedule["timezone"],
        State=schedule["state"],
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": d.state_machine_arn,
            "RoleArn": _scheduler_role(aws, f"{d.settings.state_machine_name}-scheduler"),
            "Input": schedule["input"],
        },
    )


def deploy_sweeper_schedule(aws: LocalAws, d: Deployment) -> None:
    d.sweeper_schedule_name = f"{d.settings.name}-sweeper"
    schedule = d.values.schedule(terraform_values.SWEEPER_SCHEDULE)
    aws.client("scheduler").create_schedule(
        Name=d.sweeper_schedule_name,
        ScheduleExpression=schedule["expression"],
        State=schedule["state"],
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": d.launcher_function_arn,
            "RoleArn": _scheduler_role(aws, f"{d.settings.name}-sweeper"),
            "Input": schedule["input"],
        },
    )


DeployStep = Callable[[LocalAws, Deployment], None]

# In dependency order. Each step creates the local counterpart of the Terraform addresses
# mapped to it in TERRAFORM_COUNTERPARTS.
DEPLOY_STEPS: tuple[DeployStep, ...] = (
    deploy_terraform_plan,
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


def deploy(aws: LocalAws, settings: LocalSettings | None = None) -> Deployment:
    """Run every deploy step against ``aws``; returns the identifiers created."""
    deployment = Deployment(settings=settings or LocalSettings())
    for step in DEPLOY_STEPS:
        step(aws, deployment)
    return deployment


def step_names(steps: Sequence[DeployStep]) -> list[str]:
    return [step.__name__ for step in steps]
