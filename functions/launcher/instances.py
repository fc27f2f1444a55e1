"""The EC2 side of the launcher: launch from the launch template, find, terminate."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from launcher.aws_errors import (
    CAPACITY_ERROR_CODES,
    error_code,
    transient_errors_raised_as_launcher_errors,
)
from launcher.errors import ForeignInstanceError, InsufficientCapacityEverywhere, LaunchAttempt
from launcher.settings import LaunchTemplateRef
from run_contract.tags import EXECUTION_TAG, NAME_TAG, PROJECT_TAG, RUN_NAME_TAG

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.literals import InstanceStateNameType, InstanceTypeType
    from mypy_boto3_ec2.type_defs import FilterTypeDef, InstanceTypeDef, TagTypeDef

logger = Logger(child=True)

_MAX_TAG_VALUE = 256
# Every state in which an instance still exists and can cost money.
LIVE_STATES: list[InstanceStateNameType] = ["pending", "running", "stopping", "stopped"]
GONE_STATES = frozenset({"shutting-down", "terminated"})
_NOT_FOUND = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})


@dataclass(frozen=True)
class RunInstance:
    """The instance of one run, as the start action returns it."""

    instance_id: str
    instance_type: str
    subnet_id: str
    availability_zone: str
    reused: bool
    capacity_fallbacks: list[LaunchAttempt] = field(default_factory=list)

    def as_result(self) -> dict[str, str | bool]:
        """The start action's JSON result (docs/design.md)."""
        return {
            "instance_id": self.instance_id,
            "instance_type": self.instance_type,
            "subnet_id": self.subnet_id,
            "availability_zone": self.availability_zone,
            "reused": self.reused,
        }


@dataclass
class Termination:
    """What a stop, cleanup or sweep did."""

    terminated: list[str] = field(default_factory=list)
    already_gone: list[str] = field(default_factory=list)

    def as_result(self) -> dict[str, list[str]]:
        """The stop/cleanup/sweep JSON result (docs/design.md)."""
        return {"terminated": self.terminated, "already_gone": self.already_gone}


def run_tags(project: str, execution_arn: str, execution_name: str) -> list[TagTypeDef]:
    """The tags of docs/design.md ("Tags"), for the instance and its volumes."""
    return [
        {"Key": PROJECT_TAG, "Value": project},
        {"Key": EXECUTION_TAG, "Value": execution_arn},
        {"Key": RUN_NAME_TAG, "Value": execution_name},
        {"Key": NAME_TAG, "Value": f"{project}-{execution_name}"[:_MAX_TAG_VALUE]},
    ]


def client_token(execution_arn: str, instance_type: str, subnet_id: str, replaces: str = "") -> str:
    """RunInstances' idempotency token: 64 hex characters (the API's limit is 64 ASCII).

    A retried start reuses the token of the same pair and launches nothing new; each pair gets
    its own, because one token with other parameters is IdempotentParameterMismatch.
    ``replaces`` names a terminated instance an earlier use of the token returned.
    """
    seed = f"{execution_arn}\n{instance_type}\n{subnet_id}\n{replaces}".encode()
    return hashlib.sha256(seed).hexdigest()


def tag_value(instance: InstanceTypeDef, key: str) -> str | None:
    """The value of one tag of a described instance, or None."""
    return next((t["Value"] for t in instance.get("Tags", []) if t.get("Key") == key), None)


def _describe(ec2: EC2Client, filters: list[FilterTypeDef]) -> list[InstanceTypeDef]:
    found: list[InstanceTypeDef] = []
    with transient_errors_raised_as_launcher_errors("DescribeInstances"):
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page["Reservations"]:
                found.extend(reservation["Instances"])
    return found


def live_instances(
    ec2: EC2Client, project: str, execution_arn: str | None = None
) -> list[InstanceTypeDef]:
    """Not-yet-terminated instances with this project's tag (and this execution's, if given)."""
    filters: list[FilterTypeDef] = [
        {"Name": f"tag:{PROJECT_TAG}", "Values": [project]},
        {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
    ]
    if execution_arn is not None:
        filters.append({"Name": f"tag:{EXECUTION_TAG}", "Values": [execution_arn]})
    return sorted(_describe(ec2, filters), key=lambda i: (i["LaunchTime"], i["InstanceId"]))


def _as_run_instance(
    instance: InstanceTypeDef, *, reused: bool, fallbacks: list[LaunchAttempt]
) -> RunInstance:
    return RunInstance(
        instance_id=instance["InstanceId"],
        instance_type=instance["InstanceType"],
        subnet_id=instance.get("SubnetId", ""),
        availability_zone=instance.get("Placement", {}).get("AvailabilityZone", ""),
        reused=reused,
        capacity_fallbacks=fallbacks,
    )


def start_instance(
    ec2: EC2Client,
    *,
    template: LaunchTemplateRef,
    project: str,
    execution_arn: str,
    execution_name: str,
    instance_types: list[str],
    subnet_ids: list[str],
) -> RunInstance:
    """Return the execution's instance, launching it if it has none yet.

    Pairs are tried in order (each type in every subnet before the next type); only capacity
    errors move on to the next pair.
    """
    existing = live_instances(ec2, project, execution_arn)
    if existing:
        if len(existing) > 1:
            # Only a bug elsewhere gets here; stop terminates all of them anyway.
            logger.warning(
                "Several live instances carry this execution's tag; returning the oldest",
                extra={"instance_ids": [i["InstanceId"] for i in existing]},
            )
        return _as_run_instance(existing[0], reused=True, fallbacks=[])

    tags = run_tags(project, execution_arn, execution_name)
    refused: list[LaunchAttempt] = []
    for instance_type in instance_types:
        for subnet_id in subnet_ids:
            try:
                instance = _run_fresh(
                    ec2,
                    template=template,
                    tags=tags,
                    execution_arn=execution_arn,
                    instance_type=instance_type,
                    subnet_id=subnet_id,
                )
            except ClientError as error:
                code = error_code(error)
                if code not in CAPACITY_ERROR_CODES:
                    raise
                attempt = LaunchAttempt(
                    instance_type, subnet_id, code, str(error.response["Error"].get("Message"))
                )
                logger.warning(
                    "No capacity for this pair; trying the next",
                    extra={
                        "instance_type": instance_type,
                        "subnet_id": subnet_id,
                        "error_code": code,
                        "error_message": attempt.message,
                    },
                )
                refused.append(attempt)
                continue
            return _as_run_instance(instance, reused=False, fallbacks=refused)
    raise InsufficientCapacityEverywhere(refused)


# A redriven execution keeps its ARN, so each redrive may find one more terminated instance.
_MAX_STALE_TOKENS = 10


def _run_fresh(
    ec2: EC2Client,
    *,
    template: LaunchTemplateRef,
    tags: list[TagTypeDef],
    execution_arn: str,
    instance_type: str,
    subnet_id: str,
) -> InstanceTypeDef:
    """RunInstances for one pair, never answering with an instance that is already gone.

    EC2 answers a token it has seen with the instance it launched then. After a redrive of the
    same execution that instance may be terminated; the next token names it, so a Lambda retry
    still maps to the same new instance.
    """
    replaces = ""
    for _ in range(_MAX_STALE_TOKENS):
        with transient_errors_raised_as_launcher_errors("RunInstances"):
            response = ec2.run_instances(
                LaunchTemplate={
                    "LaunchTemplateId": template.template_id,
                    "Version": template.version,
                },
                InstanceType=cast("InstanceTypeType", instance_type),
                SubnetId=subnet_id,
                MinCount=1,
                MaxCount=1,
                ClientToken=client_token(execution_arn, instance_type, subnet_id, replaces),
                TagSpecifications=[
                    {"ResourceType": "instance", "Tags": tags},
                    {"ResourceType": "volume", "Tags": tags},
                ],
            )
        instance = response["Instances"][0]
        if instance.get("State", {}).get("Name") not in GONE_STATES:
            return instance
        logger.warning(
            "RunInstances returned an instance this execution launched before, now gone; "
            "launching a new one",
            extra={"instance_id": instance["InstanceId"]},
        )
        replaces = instance["InstanceId"]
    raise RuntimeError(
        f"RunInstances kept returning terminated instances for {instance_type} in {subnet_id} "
        f"after {_MAX_STALE_TOKENS} tokens; start a new execution instead of redriving this one."
    )


def _terminate_one(ec2: EC2Client, instance_id: str, outcome: Termination) -> None:
    try:
        with transient_errors_raised_as_launcher_errors("TerminateInstances"):
            response = ec2.terminate_instances(InstanceIds=[instance_id])
    except ClientError as error:
        if error_code(error) in _NOT_FOUND:
            outcome.already_gone.append(instance_id)
            return
        raise
    previous = {
        change["InstanceId"]: change.get("PreviousState", {}).get("Name", "")
        for change in response.get("TerminatingInstances", [])
    }
    if previous.get(instance_id) in GONE_STATES:
        outcome.already_gone.append(instance_id)
    else:
        outcome.terminated.append(instance_id)


def terminate(ec2: EC2Client, instance_ids: list[str], outcome: Termination) -> Termination:
    """Terminate each instance (one call each, so one vanished instance cannot fail the rest)."""
    for instance_id in dict.fromkeys(instance_ids):
        _terminate_one(ec2, instance_id, outcome)
    return outcome


def stop_run(
    ec2: EC2Client, project: str, execution_arn: str, instance_id: str | None
) -> Termination:
    """Terminate the named instance and every other live instance of the execution.

    A named instance without this project's tag is left alone and reported with
    ForeignInstanceError, after the execution's own instances are gone: a wrong id must not
    keep the run's real instance alive.
    """
    outcome = Termination()
    to_terminate: list[str] = []
    foreign: ForeignInstanceError | None = None
    if instance_id is not None:
        named = describe_by_id(ec2, instance_id)
        if named is None or named.get("State", {}).get("Name") in GONE_STATES:
            outcome.already_gone.append(instance_id)
        elif (found := tag_value(named, PROJECT_TAG)) != project:
            foreign = ForeignInstanceError(instance_id, project, found)
        elif (owner := tag_value(named, EXECUTION_TAG)) != execution_arn:
            # Ours, but another run's: stopping this run must not end that one.
            foreign = ForeignInstanceError(instance_id, project, found, execution=owner or "")
        else:
            to_terminate.append(instance_id)
    to_terminate.extend(
        i["InstanceId"]
        for i in live_instances(ec2, project, execution_arn)
        if i["InstanceId"] not in outcome.already_gone
    )
    terminate(ec2, to_terminate, outcome)
    if foreign is not None:
        logger.error(
            "Refused to terminate an instance without the project tag",
            extra={"instance_id": instance_id, "terminated": outcome.terminated},
        )
        raise foreign
    return outcome


def describe_by_id(ec2: EC2Client, instance_id: str) -> InstanceTypeDef | None:
    try:
        with transient_errors_raised_as_launcher_errors("DescribeInstances"):
            response = ec2.describe_instances(InstanceIds=[instance_id])
    except ClientError as error:
        if error_code(error) in _NOT_FOUND:
            return None
        raise
    instances = [i for r in response["Reservations"] for i in r["Instances"]]
    return instances[0] if instances else None


def cleanup_run(ec2: EC2Client, project: str, execution_arn: str) -> Termination:
    """Terminate every live instance of the execution (after it ended, whatever the reason)."""
    ids = [i["InstanceId"] for i in live_instances(ec2, project, execution_arn)]
    return terminate(ec2, ids, Termination())


def sweep(ec2: EC2Client, project: str, max_lifetime_seconds: int, now: datetime) -> Termination:
    """Terminate every live project instance launched more than the lifetime ago."""
    oldest_allowed = now - timedelta(seconds=max_lifetime_seconds)
    expired = [
        i["InstanceId"] for i in live_instances(ec2, project) if i["LaunchTime"] < oldest_allowed
    ]
    if expired:
        logger.warning("Terminating instances past their maximum lifetime", extra={"ids": expired})
    return terminate(ec2, expired, Termination())
