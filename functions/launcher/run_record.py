"""The minimal ``runs/<execution name>/run.json`` written by ``stop`` when the agent wrote none.

The agent writes the full record (instance_agent/run_record.py) before it reports; a run whose
start failed, whose agent died or whose heartbeat was lost has none, so stop writes this one
with a conditional PUT (``If-None-Match: *``): an existing record, the agent's, always wins.
The fields are those of docs/design.md ("The run record"); without prices here, ``cost`` is null
and ``python -m gpurun status`` computes it from ``instance.instance_type`` and
``lifetime_seconds``. Writing it never raises: terminating the instance is what stop is for.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from launcher.aws_errors import error_code
from launcher.events import StopEvent
from run_contract.run_record import new_record
from run_contract.s3_layout import RESULTS_MANIFEST, RUN_RECORD

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

_ALREADY_THERE = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


def execution_name(execution_arn: str) -> str:
    return execution_arn.rsplit(":", 1)[-1]


def _launch_time(ec2: EC2Client, instance_id: str) -> datetime | None:
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except (ClientError, BotoCoreError):
        return None
    instances = [i for r in reservations for i in r["Instances"]]
    return instances[0].get("LaunchTime") if instances else None


def build_minimal_record(
    event: StopEvent, *, now: datetime, launched: datetime | None
) -> dict[str, Any]:
    """The launcher's record of one run, from the stop event and the instance's launch time."""
    instance: dict[str, Any] = {}
    if event.instance is not None:
        instance = {
            "instance_id": event.instance.instance_id,
            "instance_type": event.instance.instance_type,
            "availability_zone": event.instance.availability_zone,
        }
    results = event.results
    failed = event.error is not None
    return new_record(
        written_by="launcher",
        written_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        execution_name=execution_name(event.execution_arn),
        execution_arn=event.execution_arn,
        status="FAILED" if failed else "SUCCEEDED",
        error=None if event.error is None else (event.error.Error, event.error.Cause or ""),
        run_input=event.run,
        instance=instance,
        timings={},
        lifetime_seconds=None if launched is None else max((now - launched).total_seconds(), 0.0),
        model=None,
        output=None
        if failed or results is None
        else {
            "bucket": results.bucket,
            "prefix": results.prefix,
            "manifest_key": results.prefix + RESULTS_MANIFEST,
        },
        cost=None,
        cost_note="written by the launcher, which has no price table: gpurun status "
        "estimates it from instance.instance_type and lifetime_seconds",
    )


def write_if_missing(s3: S3Client, ec2: EC2Client, event: StopEvent, now: datetime) -> bool:
    """PUT the minimal record unless one exists; True if this call wrote it. Never raises."""
    if event.results is None:
        return False
    key = event.results.prefix + RUN_RECORD
    launched = _launch_time(ec2, event.instance.instance_id) if event.instance else None
    record = build_minimal_record(event, now=now, launched=launched)
    try:
        s3.put_object(
            Bucket=event.results.bucket,
            Key=key,
            Body=(json.dumps(record, indent=1, sort_keys=True) + "\n").encode(),
            ContentType="application/json",
            IfNoneMatch="*",
        )
    except ClientError as error:
        if error_code(error) in _ALREADY_THERE:
            logger.info("The agent's run record exists; kept it", extra={"key": key})
            return False
        logger.warning("Could not write the run record", extra={"key": key, "error": str(error)})
        return False
    except BotoCoreError as error:
        logger.warning("Could not write the run record", extra={"key": key, "error": str(error)})
        return False
    logger.info("Wrote the launcher's run record", extra={"key": key, "status": record["status"]})
    return True
