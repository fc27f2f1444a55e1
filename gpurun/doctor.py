"""Checks of a deployed stack, each ok or FAIL with what to do.

The run defaults (instance types, subnets, model prefix) are read from the state machine's own
definition (its LoadRunDefaults state), so the checks see what the next run will use.
"""

from __future__ import annotations

import dataclasses
import json
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
            f"python -m gpurun publish-model <model dir> --prefix {prefix}",
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


def check_launch_template(clients: Clients, template_id: str) -> tuple[Check, str | None]:
    """The check, and the image the template's latest version names (id or resolve:ssm:)."""
    ec2 = clients.client("ec2")
    try:
        versions = ec2.describe_launch_template_versions(
            LaunchTemplateId=template_id, Versions=["$Latest"]
        )
    except ClientError as exc:
        return Check(
            "launch template", False, f"{template_id}: {_code(exc)}", "terraform apply recreates it"
        ), None
    (version,) = versions["LaunchTemplateVersions"]
    image = version.get("LaunchTemplateData", {}).get("ImageId")
    return Check(
        "launch template", True, f"{template_id} version {version['VersionNumber']}"
    ), image


def check_ami(clients: Clients, image: str | None) -> Check:
    if not image:
        return Check(
            "ami", False, "the launch template names no image", "set var.ami and terraform apply"
        )
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
            )
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
        )
    return Check("ami", True, f"{image} -> {image_id} ({images[0].get('Name', 'unnamed')})")


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
    if template_id:
        template_check, image = check_launch_template(clients, template_id)
        checks.append(template_check)
        if template_check.ok:
            checks.append(check_ami(clients, image))
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
    checks.extend(
        check_offerings(
            clients, list(defaults.get("instance_types", [])), list(defaults.get("subnet_ids", []))
        )
    )
    return checks
