"""``runs/<execution name>/run.json``: what one run was asked, where it ran, how long, what it cost.

The agent writes the full record before it reports success or failure: on success after the
result files and before ``_manifest.json`` (the manifest stays the last object of a results
prefix). Runs the agent never reported (start failed, agent died, heartbeat lost) get a minimal
record from the launcher's ``stop`` instead, written only if none exists. The fields are the
contract in docs/design.md ("The run record"), built by ``run_contract.run_record.new_record``;
``gpurun status`` reads them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from instance_agent import prices
from run_contract.s3_layout import RUN_RECORD

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("instance_agent.run_record")


def record_key(results_prefix: str) -> str:
    """The record's key under the run's results prefix (``runs/<execution name>/``)."""
    if not results_prefix.endswith("/"):
        raise ValueError(f"results prefix {results_prefix!r} must end with '/'")
    return results_prefix + RUN_RECORD


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
