"""The timing bounds of run_contract.limits are the ones Terraform's root variables validate,
and the beat Terraform configures leaves room for four beats in a heartbeat timeout."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
import pytest

from local_aws import terraform_values
from local_aws.deployment import LocalSettings
from run_contract.limits import (
    EXECUTION_TIMEOUT_SECONDS,
    HEARTBEAT_INTERVAL_FLOOR_SECONDS,
    HEARTBEAT_TIMEOUT_SECONDS_MIN,
    MAX_RUNTIME_SECONDS,
)

ROOT = Path(__file__).resolve().parents[2] / "terraform"


def root_conditions() -> dict[str, str]:
    """Variable name -> its validation conditions, joined, as written in terraform/variables.tf."""
    with (ROOT / "variables.tf").open(encoding="utf-8") as handle:
        parsed: dict[str, Any] = hcl2.load(handle)
    conditions = {}
    for block in parsed["variable"]:
        for name, body in block.items():
            conditions[name.strip('"')] = " && ".join(
                str(v["condition"]) for v in body.get("validation", [])
            )
    return conditions


def bounds_in(condition: str, variable: str) -> tuple[int | None, int | None]:
    low = re.search(rf"var\.{variable} >= (\d+)", condition)
    high = re.search(rf"var\.{variable} <= (\d+)", condition)
    return (int(low[1]) if low else None, int(high[1]) if high else None)


@pytest.mark.parametrize(
    ("variable", "bounds"),
    [
        ("max_runtime_seconds", MAX_RUNTIME_SECONDS),
        ("heartbeat_timeout_seconds", (HEARTBEAT_TIMEOUT_SECONDS_MIN, None)),
        ("execution_timeout_seconds", EXECUTION_TIMEOUT_SECONDS),
    ],
)
def test_terraform_validates_the_same_bounds(variable: str, bounds: tuple[int, int | None]) -> None:
    assert bounds_in(root_conditions()[variable], variable) == bounds


def test_the_agents_beat_is_terraforms_formula() -> None:
    main = (ROOT / "main.tf").read_text(encoding="utf-8")
    assert (
        f"heartbeat_interval_seconds = max({HEARTBEAT_INTERVAL_FLOOR_SECONDS}, "
        "floor(var.heartbeat_timeout_seconds / 4))"
    ) in main
    # 10 s: below Terraform's bound, as a local run may set it (LOCAL_RELAXATIONS).
    timeouts = (10, HEARTBEAT_TIMEOUT_SECONDS_MIN, 21, 240, 3601)
    planned = terraform_values.plan_many(
        [LocalSettings(heartbeat_timeout_seconds=t) for t in timeouts], account_id="123456789012"
    )
    for timeout, values in zip(timeouts, planned, strict=True):
        beat = values.agent_config()["heartbeat_interval_seconds"]
        assert beat == max(HEARTBEAT_INTERVAL_FLOOR_SECONDS, timeout // 4)
        assert beat * 4 <= max(timeout, 4 * HEARTBEAT_INTERVAL_FLOOR_SECONDS)  # four beats fit
