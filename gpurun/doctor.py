"""Checks of a deployed stack, each ok or FAIL with what to do.

The run defaults (instance types, subnets, model prefix) are read from the state machine's own
definition (its LoadRunDefaults state), so the checks see what the next run will use.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from gpurun.aws import Clients
from gpurun.schedule import ScheduleError, next_fire
from gpurun.stack import Stack


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def render(self) -> str:
        text = f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"
        return text if self.ok or not self.fix else f"{text}\n     -> {self.fix}"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _not_configured(name: str, field: str) -> Check:
    from gpurun.stack import FIELDS

    f = FIELDS[field]
    return Check(
        name, False, f"{field} is not known", f"pass {f.flag}, set {f.env}, or --terraform-dir"
    )


def run_defaults(clients: Clients, state_machine_arn: str) -> dict[str, Any]:
    definition = json.loads(
        clients.client("stepfunctions").describe_state_machine(stateMachineArn=state_machine_arn)[
            "definition"
        ]
    )
    result = definition.get("States", {}).get("LoadRunDefaults", {}).get("Result")
    return dict(result) if isinstance(result, dict) else {}


def check_bucket(clients: Clients, bucket: str) -> Check:
    try:
        clients.client("s3").head_bucket(Bucket=bucket)
    except ClientError as exc:
        return Check(
            "bucket",
            False,
            f"s3://{bucket} is not reachable ({_code(exc)})",
            "check the name (terraform output model_bucket_name) and your credentials; "
            "terraform apply creates it",
        )
    return Check("bucket", True, f"s3://{bucket} exists")


def check_model(clients: Clients, bucket: str, prefix: str | None) -> Check:
    if not prefix:
        return Check(
            "model", False, "the state machine has no default model_prefix", "terraform apply"
        )
    key = f"{prefix}manifest.json"
    try:
        clients.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        return Check(
            "model",
            False,
            f"s3://{bucket}/{key} not found ({_code(exc)}): "
            "the next run would fail with ModelNotFound",
            f"gpurun publish-model <model dir> --prefix {prefix}",
        )
    return Check("model", True, f"s3://{bucket}/{key} published")


def check_activity(clients: Clients, activity_arn: str) -> Check:
    try:
        clients.client("stepfunctions").describe_activity(activityArn=activity_arn)
    except ClientError as exc:
        return Check(
            "activity", False, f"{activity_arn}: {_code(exc)}", "terraform apply recreates it"
        )
    return Check("activity", True, activity_arn)


def check_launch_template(clients: Clients, template_id: str) -> tuple[Check, dict[str, Any]]:
    """The check, and the template's latest LaunchTemplateData (image, user data)."""
    ec2 = clients.client("ec2")
    try:
        versions = ec2.describe_launch_template_versions(
            LaunchTemplateId=template_id, Versions=["$Latest"]
        )
    except ClientError as exc:
        return Check(
            "launch template", False, f"{template_id}: {_code(exc)}", "terraform apply recreates it"
        ), {}
    (version,) = versions["LaunchTemplateVersions"]
    return Check(
        "launch template", True, f"{template_id} version {version['VersionNumber']}"
    ), dict(version.get("LaunchTemplateData", {}))


def check_ami(clients: Clients, image: str | None) -> tuple[Check, dict[str, Any] | None]:
    """The check, and the image's DescribeImages entry when it resolves."""
    if not image:
        return Check(
            "ami", False, "the launch template names no image", "set var.ami and terraform apply"
        ), None
    image_id = image
    if image.startswith("resolve:ssm:"):
        parameter = image.removeprefix("resolve:ssm:")
        try:
            image_id = clients.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
        except ClientError as exc:
            return Check(
                "ami",
                False,
                f"SSM parameter {parameter} cannot be read ({_code(exc)})",
                "check var.ami's parameter name for this region, or give an AMI id",
            ), None
    try:
        images = clients.client("ec2").describe_images(ImageIds=[image_id])["Images"]
    except ClientError as exc:
        images = []
        reason = _code(exc)
    else:
        reason = "not found"
    if not images:
        return Check(
            "ami",
            False,
            f"{image_id} is not resolvable in {clients.region} ({reason})",
            "set var.ami to an AMI available in this region (or its SSM parameter) and "
            "terraform apply",
        ), None
    found = dict(images[0])
    return Check("ami", True, f"{image} -> {image_id} ({found.get('Name', 'unnamed')})"), found


# Words a GPU image names itself with (the Deep Learning AMIs: "Deep Learning OSS Nvidia Driver
# AMI GPU PyTorch ..."); an image without a driver boots, then every model run fails on CUDA.
_GPU_IMAGE = re.compile(r"gpu|nvidia|cuda|deep learning|dlami", re.IGNORECASE)


def check_image_fits(
    clients: Clients, image: dict[str, Any], instance_types: list[str]
) -> list[Check]:
    """The image's architecture fits every instance type; the types have GPUs; the image has
    the GPU driver by its name or description."""
    architecture = str(image.get("Architecture", "?"))
    label = f"{image.get('ImageId')} ({image.get('Name', 'unnamed')})"
    words = f"{image.get('Name', '')} {image.get('Description', '')}"
    checks = []
    if _GPU_IMAGE.search(words):
        checks.append(Check("gpu image", True, f"{label} names a GPU driver"))
    else:
        checks.append(
            Check(
                "gpu image",
                False,
                f"{label} names no GPU driver (NVIDIA, CUDA, GPU, Deep Learning) in its name or "
                "description: a model on it would not see the GPU",
                "use a Deep Learning AMI (the default var.ami) or an image with the NVIDIA "
                "driver, named or described as such",
            )
        )
    if not instance_types:
        return checks
    try:
        described = clients.client("ec2").describe_instance_types(InstanceTypes=instance_types)
    except ClientError as exc:
        return [*checks, Check("architecture", False, f"{instance_types}: {_code(exc)}", "")]
    for entry in described["InstanceTypes"]:
        name = entry["InstanceType"]
        supported = entry.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
        gpus = entry.get("GpuInfo", {}).get("Gpus", [])
        problems = []
        if architecture not in supported:
            problems.append(f"runs {'/'.join(supported)}, the image is {architecture}")
        if not gpus:
            problems.append("has no GPU")
        if problems:
            checks.append(
                Check(
                    f"fits {name}",
                    False,
                    f"{name} " + " and ".join(problems),
                    "choose instance types with GPUs of the image's architecture "
                    "(var.instance_types), or an image for theirs (var.ami)",
                )
            )
        else:
            gpu = gpus[0]
            checks.append(
                Check(
                    f"fits {name}",
                    True,
                    f"{architecture}, {gpu.get('Count', 1)} x {gpu.get('Manufacturer', '')} "
                    f"{gpu.get('Name', 'GPU')}".replace("  ", " "),
                )
            )
    return checks


# The CloudWatch agent configuration the user data writes (modules/launch_template).
_LOG_GROUP_NAME = re.compile(r'"log_group_name":\s*"([^"]+)"')


def check_log_shipping(
    clients: Clients, template_data: dict[str, Any], agent_group: str | None
) -> Check:
    """The user data's CloudWatch agent configuration ships to a log group that exists (and is
    the one ``gpurun logs`` reads)."""
    encoded = template_data.get("UserData")
    if not encoded:
        return Check(
            "log shipping",
            False,
            "the launch template has no user data: no agent would start",
            "terraform apply (modules/launch_template renders it)",
        )
    try:
        text = base64.b64decode(encoded).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return Check("log shipping", False, "the user data is not base64 text", "terraform apply")
    groups = sorted(set(_LOG_GROUP_NAME.findall(text)))
    if not groups:
        return Check(
            "log shipping",
            False,
            "the user data has no CloudWatch agent configuration: the agent's log stays on the "
            "instance, which is gone after the run",
            "terraform apply (the user data's cloudwatch-agent.json)",
        )
    logs = clients.client("logs")
    missing = []
    for group in groups:
        found = logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
        if not any(g["logGroupName"] == group for g in found):
            missing.append(group)
    if missing:
        return Check(
            "log shipping",
            False,
            f"log group {', '.join(missing)} of the user data does not exist",
            "terraform apply (modules/monitoring creates it)",
        )
    if agent_group and agent_group not in groups:
        return Check(
            "log shipping",
            False,
            f"the user data ships to {', '.join(groups)}, gpurun logs reads {agent_group}",
            "point --agent-log-group (or the agent_log_group_name output) at the same group",
        )
    return Check("log shipping", True, f"the user data ships to {', '.join(groups)}")


def check_schedule(clients: Clients, schedule_name: str, now: datetime) -> Check:
    try:
        schedule = clients.client("scheduler").get_schedule(Name=schedule_name)
    except ClientError as exc:
        return Check(
            "schedule", False, f"{schedule_name}: {_code(exc)}", "terraform apply recreates it"
        )
    expression = schedule["ScheduleExpression"]
    timezone = schedule.get("ScheduleExpressionTimezone") or "UTC"
    if schedule.get("State") != "ENABLED":
        return Check(
            "schedule",
            False,
            f"{schedule_name} ({expression} {timezone}) is {schedule.get('State')}: "
            "no weekly run will start",
            "set schedule_enabled = true and terraform apply "
            "(docs/operations.md, pausing the schedule)",
        )
    try:
        fire = next_fire(expression, timezone, now)
    except ScheduleError as exc:
        return Check("schedule", False, f"{expression}: {exc}", "fix schedule_expression")
    when = (
        "fires at a rate, relative to its creation"
        if fire is None and expression.startswith("rate(")
        else (f"next run {fire.isoformat()} UTC" if fire else "never fires again")
    )
    return Check(
        "schedule",
        fire is not None or expression.startswith("rate("),
        f"{expression} {timezone}: {when}",
        ""
        if fire or expression.startswith("rate(")
        else "give a schedule_expression with a future time",
    )


def check_offerings(
    clients: Clients, instance_types: list[str], subnet_ids: list[str]
) -> list[Check]:
    if not instance_types or not subnet_ids:
        return [
            Check(
                "instance types",
                False,
                "the state machine has no default instance_types/subnet_ids",
                "terraform apply",
            )
        ]
    ec2 = clients.client("ec2")
    try:
        subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    except ClientError as exc:
        return [
            Check(
                "subnets",
                False,
                f"{', '.join(subnet_ids)}: {_code(exc)}",
                "fix var.subnet_ids and terraform apply",
            )
        ]
    zones = sorted({s["AvailabilityZone"] for s in subnets})
    offered: dict[str, set[str]] = {t: set() for t in instance_types}
    paginator = ec2.get_paginator("describe_instance_type_offerings")
    for page in paginator.paginate(
        LocationType="availability-zone",
        Filters=[
            {"Name": "instance-type", "Values": instance_types},
            {"Name": "location", "Values": zones},
        ],
    ):
        for offering in page["InstanceTypeOfferings"]:
            if offering["InstanceType"] in offered:
                offered[offering["InstanceType"]].add(offering["Location"])
    checks = [Check("subnets", True, f"{len(subnets)} subnet(s) in {', '.join(zones)}")]
    for instance_type in instance_types:
        where = sorted(offered[instance_type])
        if where:
            checks.append(
                Check(f"offering {instance_type}", True, f"offered in {', '.join(where)}")
            )
        else:
            checks.append(
                Check(
                    f"offering {instance_type}",
                    False,
                    f"not offered in any subnet's zone ({', '.join(zones)})",
                    "remove it from var.instance_types or add subnets in zones that offer it",
                )
            )
    if not any(offered.values()):
        checks.append(
            Check(
                "capacity fallback",
                False,
                "no instance type is offered anywhere: every run will fail",
                "choose instance types offered in your subnets' zones",
            )
        )
    return checks


def run_checks(clients: Clients, stack: Stack, now: datetime | None = None) -> list[Check]:
    now = now or datetime.now(UTC)
    checks: list[Check] = []

    def named(field: str, label: str, check: Callable[[str], Check]) -> None:
        value = stack.get(field)
        checks.append(check(value) if value else _not_configured(label, field))

    bucket = stack.get("model_bucket")
    named("model_bucket", "bucket", lambda b: check_bucket(clients, b))
    named("activity_arn", "activity", lambda a: check_activity(clients, a))
    template_id = stack.get("launch_template_id")
    image: dict[str, Any] | None = None
    if template_id:
        template_check, template_data = check_launch_template(clients, template_id)
        checks.append(template_check)
        if template_check.ok:
            ami_check, image = check_ami(clients, template_data.get("ImageId"))
            checks.append(ami_check)
            checks.append(check_log_shipping(clients, template_data, stack.get("agent_log_group")))
    else:
        checks.append(_not_configured("launch template", "launch_template_id"))
    named("schedule_name", "schedule", lambda s: check_schedule(clients, s, now))
    machine = stack.get("state_machine_arn")
    if machine is None:
        checks.append(_not_configured("state machine", "state_machine_arn"))
        return checks
    try:
        defaults = run_defaults(clients, machine)
    except ClientError as exc:
        checks.append(Check("state machine", False, f"{machine}: {_code(exc)}", "terraform apply"))
        return checks
    checks.append(Check("state machine", True, machine))
    if bucket and checks[0].ok:
        checks.append(check_model(clients, bucket, defaults.get("model_prefix")))
    instance_types = list(defaults.get("instance_types", []))
    if image is not None:
        checks.extend(check_image_fits(clients, image, instance_types))
    checks.extend(check_offerings(clients, instance_types, list(defaults.get("subnet_ids", []))))
    return checks
