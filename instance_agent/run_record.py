"""``runs/<execution name>/run.json``: what one run was asked, where it ran, how long, what it cost.

The agent writes the full record before it reports success or failure: on success after the
result files and before ``_manifest.json`` (the manifest stays the last object of a results
prefix). Runs the agent never reported (start failed, agent died, heartbeat lost) get a minimal
record from the launcher's ``stop`` instead, written only if none exists. The fields are the
contract in docs/design.md ("The run record"); ``python -m gpurun status`` reads them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from instance_agent import prices

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("instance_agent.run_record")

RUN_RECORD_NAME = "run.json"
FORMAT_VERSION = 1
STATUSES = ("SUCCEEDED", "FAILED")


def utc_now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def record_key(results_prefix: str) -> str:
    """The record's key under the run's results prefix (``runs/<execution name>/``)."""
    if not results_prefix.endswith("/"):
        raise ValueError(f"results prefix {results_prefix!r} must end with '/'")
    return results_prefix + RUN_RECORD_NAME


def cost_record(
    *,
    instance_type: str,
    region: str,
    lifetime_seconds: float | None,
    root_volume_gib: float,
    get_requests: int,
    put_requests: int,
) -> tuple[dict[str, object] | None, str | None]:
    """(the ``cost`` object, None) or (None, why there is no estimate)."""
    if lifetime_seconds is None:
        return None, "the instance lifetime is unknown"
    try:
        estimate = prices.estimate_run_cost(
            instance_type,
            region,
            lifetime_seconds,
            root_volume_gib=root_volume_gib,
            get_requests=get_requests,
            put_requests=put_requests,
        )
    except prices.UnknownPriceError as exc:
        return None, str(exc)
    return estimate.as_record(), None


def build_record(
    *,
    execution_name: str,
    execution_arn: str,
    status: str,
    error: tuple[str, str] | None,
    run_input: Mapping[str, Any],
    instance: Mapping[str, str],
    timings: Mapping[str, float],
    lifetime_seconds: float | None,
    model: Mapping[str, Any] | None,
    output: Mapping[str, str] | None,
    cost: Mapping[str, object] | None,
    cost_note: str | None = None,
    written_by: str = "agent",
) -> dict[str, Any]:
    """The run record as a JSON-ready dict; refuses a status or error that contradict."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r} must be one of {', '.join(STATUSES)}")
    if (status == "FAILED") != (error is not None):
        raise ValueError("a FAILED record needs an error, and a SUCCEEDED one must have none")
    return {
        "format_version": FORMAT_VERSION,
        "written_by": written_by,
        "written_at": utc_now_iso(),
        "execution_name": execution_name,
        "execution_arn": execution_arn,
        "status": status,
        "error": None if error is None else {"error": error[0], "cause": error[1]},
        "input": dict(run_input),
        "instance": dict(instance),
        "timings": dict(timings),
        "lifetime_seconds": None if lifetime_seconds is None else round(lifetime_seconds, 1),
        "model": None if model is None else dict(model),
        "output": None if output is None else dict(output),
        "cost": None if cost is None else dict(cost),
        "cost_note": cost_note,
    }


def write_record(s3: S3Client, bucket: str, results_prefix: str, record: Mapping[str, Any]) -> str:
    """PUT the record (overwriting the launcher's minimal one, if any); returns its key."""
    key = record_key(results_prefix)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=(json.dumps(record, indent=1, sort_keys=True) + "\n").encode(),
        ContentType="application/json",
    )
    log.info("run record written: s3://%s/%s (%s)", bucket, key, record.get("status"))
    return key
