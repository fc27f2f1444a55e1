"""``runs/<execution name>/run.json``: one run's record, written by the agent or the launcher.

The agent writes the full record; for a run it never reported, the launcher's ``stop`` writes a
minimal one (only if none exists), and corrects one whose status the execution contradicts.
``gpurun status`` reads it. Both writers build it with ``new_record`` and readers check it with
``check_record``, so the format is this module's alone (docs/design.md, "The run record").
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from run_contract.statuses import FAILED, SUCCEEDED

FORMAT_VERSION = 1
WRITERS = ("agent", "launcher")
STATUSES = (SUCCEEDED, FAILED)
FIELDS = (
    "format_version",
    "written_by",
    "written_at",
    "execution_name",
    "execution_arn",
    "status",
    "error",
    "input",
    "instance",
    "timings",
    "lifetime_seconds",
    "model",
    "output",
    "cost",
    "cost_note",
    "correction",
)
INSTANCE_FIELDS = ("instance_id", "instance_type", "availability_zone")
OUTPUT_FIELDS = ("bucket", "prefix", "manifest_key")


class RunRecordError(ValueError):
    """A record that does not follow the format, or contradicts itself."""


def utc_now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_record(
    *,
    written_by: str,
    execution_name: str,
    execution_arn: str,
    status: str,
    error: tuple[str, str] | None,
    run_input: Mapping[str, Any] | None,
    instance: Mapping[str, Any],
    timings: Mapping[str, float],
    lifetime_seconds: float | None,
    model: Mapping[str, Any] | None,
    output: Mapping[str, str] | None,
    cost: Mapping[str, object] | None,
    cost_note: str | None,
    written_at: str | None = None,
) -> dict[str, Any]:
    """The record as a JSON-ready dict; refuses one that contradicts itself."""
    record = {
        "format_version": FORMAT_VERSION,
        "written_by": written_by,
        "written_at": written_at or utc_now_iso(),
        "execution_name": execution_name,
        "execution_arn": execution_arn,
        "status": status,
        "error": None if error is None else {"error": error[0], "cause": error[1]},
        "input": None if run_input is None else dict(run_input),
        "instance": dict(instance),
        "timings": {phase: round(float(seconds), 3) for phase, seconds in timings.items()},
        "lifetime_seconds": None if lifetime_seconds is None else round(lifetime_seconds, 1),
        "model": None if model is None else dict(model),
        "output": None if output is None else dict(output),
        "cost": None if cost is None else dict(cost),
        "cost_note": cost_note,
        "correction": None,
    }
    check_record(record)
    return record


def corrected(record: Mapping[str, Any], *, error: tuple[str, str], by: str) -> dict[str, Any]:
    """``record`` marked FAILED with ``error``, because the execution failed after it was
    written (its results are not the run's: no output); ``correction`` says what changed."""
    fixed = dict(record)
    fixed.update(
        status=FAILED,
        error={"error": error[0], "cause": error[1]},
        output=None,
        correction={
            "by": by,
            "at": utc_now_iso(),
            "status_was": record.get("status"),
            "reason": "the execution failed after this record was written",
        },
    )
    check_record(fixed)
    return fixed


def check_record(record: Mapping[str, Any]) -> None:
    """Raise RunRecordError unless ``record`` follows the format and agrees with itself."""
    missing = [name for name in FIELDS if name not in record]
    unknown = sorted(set(record) - set(FIELDS))
    if missing or unknown:
        raise RunRecordError(f"run record: missing {missing}, unknown {unknown}")
    if record["format_version"] != FORMAT_VERSION:
        raise RunRecordError(f"run record: format_version {record['format_version']!r}")
    if record["written_by"] not in WRITERS:
        raise RunRecordError(f"run record: written_by {record['written_by']!r} not in {WRITERS}")
    status, error = record["status"], record["error"]
    if status not in STATUSES:
        raise RunRecordError(f"run record: status {status!r} must be one of {STATUSES}")
    if (status == FAILED) != (error is not None):
        raise RunRecordError("run record: a FAILED record needs an error, a SUCCEEDED one none")
    if error is not None and set(error) != {"error", "cause"}:
        raise RunRecordError(f"run record: error must have error and cause, got {sorted(error)}")
    if status == FAILED and record["output"] is not None:
        raise RunRecordError("run record: a FAILED run has no output to point to")
    unknown_instance = sorted(set(record["instance"]) - set(INSTANCE_FIELDS))
    if unknown_instance:
        raise RunRecordError(f"run record: unknown instance fields {unknown_instance}")
    if record["output"] is not None and set(record["output"]) != set(OUTPUT_FIELDS):
        raise RunRecordError(f"run record: output must have exactly {OUTPUT_FIELDS}")
