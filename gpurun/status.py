"""The last runs: status, duration, instance and cost, from run.json or the execution."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from gpurun import runs
from instance_agent import prices
from run_contract.phases import PHASES
from run_contract.run_record import RunRecordError, check_record
from run_contract.s3_layout import NOT_FOUND_CODES, run_record_key


def read_run_record(s3: Any, bucket: str, execution_name: str) -> dict[str, Any] | None:
    """``runs/<name>/run.json``, or None if the run has none (yet); RunRecordError for one
    that does not follow the format (never shown as if it were true)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=run_record_key(execution_name))["Body"]
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in NOT_FOUND_CODES:
            return None
        raise
    try:
        record: Any = json.loads(body.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunRecordError(f"run.json of {execution_name} is not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise RunRecordError(f"run.json of {execution_name} is not a JSON object")
    check_record(record)
    return record


def cost_of(record: dict[str, Any] | None, region: str | None) -> tuple[float | None, str]:
    """(USD, where it came from): the record's own estimate, or one computed from its instance
    type and lifetime (the launcher's minimal record carries no estimate)."""
    if record is None:
        return None, "no run.json"
    cost = record.get("cost")
    if isinstance(cost, dict) and isinstance(cost.get("total_usd"), int | float):
        return float(cost["total_usd"]), "run.json"
    instance = record.get("instance") or {}
    lifetime = record.get("lifetime_seconds")
    instance_type = instance.get("instance_type")
    if not instance_type or not isinstance(lifetime, int | float) or region is None:
        return None, "instance type or lifetime unknown"
    try:
        estimate = prices.estimate_run_cost(instance_type, region, float(lifetime))
    except prices.UnknownPriceError as exc:
        return None, str(exc)
    return estimate.total_usd, "computed from run.json's instance type and lifetime"


def run_rows(
    sfn: Any, s3: Any, state_machine_arn: str, bucket: str, *, region: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = []
    now = datetime.now(UTC)
    for execution in runs.list_executions(sfn, state_machine_arn, limit):
        name = execution["name"]
        started = execution["startDate"]
        stopped = execution.get("stopDate")
        try:
            record = read_run_record(s3, bucket, name)
            usd, cost_source = cost_of(record, region)
        except RunRecordError as exc:
            record, usd, cost_source = None, None, f"run.json refused: {exc}"
        instance = (record or {}).get("instance") or {}
        error = (record or {}).get("error") or {}
        rows.append(
            {
                "name": name,
                "status": execution["status"],
                "started": started.isoformat(),
                "duration_seconds": round(((stopped or now) - started).total_seconds(), 1),
                "instance_type": instance.get("instance_type"),
                "instance_id": instance.get("instance_id"),
                "error": error.get("error"),
                "cost_usd": None if usd is None else round(usd, 4),
                "cost_source": cost_source,
                "record_written_by": (record or {}).get("written_by"),
                "phases": ordered_phases((record or {}).get("timings") or {}),
            }
        )
    return rows


def ordered_phases(timings: dict[str, Any]) -> dict[str, float]:
    """run.json's timings in the order the phases happen (run_contract.phases), then any other."""
    known = [name for name, _ in PHASES if name in timings]
    others = sorted(name for name in timings if name not in dict(PHASES))
    return {
        name: float(timings[name])
        for name in known + others
        if isinstance(timings[name], int | float) and not isinstance(timings[name], bool)
    }


def format_phases(rows: list[dict[str, Any]]) -> str:
    """Each run's phases, launch to results, one line each: the cold start laid out."""
    meaning = dict(PHASES)
    blocks = []
    for row in rows:
        lines = [f"{row['name']} ({row['status']})"]
        phases = row.get("phases") or {}
        if not phases:
            lines.append("  no phase timings (no run.json, or the agent never ran)")
        width = max((len(name) for name in phases), default=0)
        for name, seconds in phases.items():
            lines.append(
                f"  {name.ljust(width)}  {seconds:9.1f} s  {meaning.get(name, '')}".rstrip()
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def format_rows(rows: list[dict[str, Any]]) -> str:
    header = ("NAME", "STATUS", "STARTED", "DURATION", "INSTANCE", "COST", "ERROR")
    lines = [header]
    for row in rows:
        minutes, seconds = divmod(int(row["duration_seconds"]), 60)
        lines.append(
            (
                row["name"],
                row["status"],
                row["started"][:19].replace("T", " "),
                f"{minutes}m{seconds:02d}s",
                row["instance_type"] or "-",
                "-" if row["cost_usd"] is None else f"${row['cost_usd']:.4f}",
                row["error"] or "",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
