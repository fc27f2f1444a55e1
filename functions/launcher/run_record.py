"""``runs/<execution name>/run.json`` as ``stop`` leaves it: true to what the workflow saw.

The agent writes the full record (instance_agent/run_record.py) before it reports; a run whose
start failed, whose agent died or whose heartbeat was lost has none, so stop writes a minimal
one with a conditional PUT (``If-None-Match: *``): an existing record, the agent's, wins. One
exception: when the workflow's Catch hands stop an error and the record says SUCCEEDED (the agent
wrote it, then its report failed and it could not retract it), stop corrects it to FAILED with
that error (``If-Match`` on the ETag it read) and deletes the run's ``_manifest.json``.
The fields are those of docs/design.md ("The run record"); without prices here, ``cost`` is null
and ``python -m gpurun status`` computes it from ``instance.instance_type`` and
``lifetime_seconds``. Nothing here raises: terminating the instance is what stop is for.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from launcher.aws_errors import error_code
from launcher.events import StopEvent
from run_contract.run_record import RunRecordError, check_record, corrected, new_record
from run_contract.s3_layout import RESULTS_MANIFEST, RUN_RECORD
from run_contract.statuses import SUCCEEDED

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

_ALREADY_THERE = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_NOT_THERE = frozenset({"404", "NoSuchKey", "NotFound"})


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
    event: StopEvent, *, now: datetime, launched: datetime | None, manifest_exists: bool = True
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
        # Only a manifest that is there: a record never points to results that do not exist.
        output=None
        if failed or results is None or not manifest_exists
        else {
            "bucket": results.bucket,
            "prefix": results.prefix,
            "manifest_key": results.prefix + RESULTS_MANIFEST,
        },
        cost=None,
        cost_note="written by the launcher, which has no price table: gpurun status "
        "estimates it from instance.instance_type and lifetime_seconds",
    )


def _exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in _NOT_THERE:
            return False
        raise
    return True


def record_the_run(s3: S3Client, ec2: EC2Client, event: StopEvent, now: datetime) -> str:
    """``written`` (the minimal record), ``corrected``, ``kept``, or ``none`` (no results
    location, or S3 refused). Never raises."""
    if event.results is None:
        return "none"
    written = write_if_missing(s3, ec2, event, now)
    if written is not None:
        return "written" if written else "none"
    if event.error is not None and correct_if_contradicted(s3, event):
        return "corrected"
    return "kept"


def write_if_missing(s3: S3Client, ec2: EC2Client, event: StopEvent, now: datetime) -> bool | None:
    """PUT the minimal record unless one exists: True if this call wrote it, None if a record
    was already there, False if S3 refused. Never raises."""
    if event.results is None:
        return False
    key = event.results.prefix + RUN_RECORD
    launched = _launch_time(ec2, event.instance.instance_id) if event.instance else None
    try:
        manifest = _exists(s3, event.results.bucket, event.results.prefix + RESULTS_MANIFEST)
    except (ClientError, BotoCoreError) as error:
        logger.warning("Could not check the results manifest", extra={"error": str(error)})
        manifest = False
    record = build_minimal_record(event, now=now, launched=launched, manifest_exists=manifest)
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
            logger.info("The agent's run record exists", extra={"key": key})
            return None
        logger.warning("Could not write the run record", extra={"key": key, "error": str(error)})
        return False
    except BotoCoreError as error:
        logger.warning("Could not write the run record", extra={"key": key, "error": str(error)})
        return False
    logger.info("Wrote the launcher's run record", extra={"key": key, "status": record["status"]})
    return True


def correct_if_contradicted(s3: S3Client, event: StopEvent) -> bool:
    """The workflow failed the run (``event.error``): a SUCCEEDED record becomes FAILED with
    that error and the manifest is deleted. True if this call corrected it. Never raises."""
    if event.results is None or event.error is None:
        return False
    bucket, key = event.results.bucket, event.results.prefix + RUN_RECORD
    try:
        got = s3.get_object(Bucket=bucket, Key=key)
        record = json.loads(got["Body"].read())
        check_record(record)
        if record["status"] != SUCCEEDED:
            return False
        fixed = corrected(record, error=(event.error.Error, event.error.Cause or ""), by="launcher")
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=(json.dumps(fixed, indent=1, sort_keys=True) + "\n").encode(),
            ContentType="application/json",
            IfMatch=got["ETag"],  # an agent's newer record is not overwritten
        )
        s3.delete_object(Bucket=bucket, Key=event.results.prefix + RESULTS_MANIFEST)
    except (ClientError, BotoCoreError, ValueError, RunRecordError) as error:
        logger.warning("Could not correct the run record", extra={"key": key, "error": str(error)})
        return False
    logger.warning(
        "Corrected a SUCCEEDED run record: the workflow failed the run",
        extra={"key": key, "error": event.error.Error},
    )
    return True
