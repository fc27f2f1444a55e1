"""The run record (``runs/<execution name>/run.json``): the agent and the launcher both write it,
``gpurun status`` reads it and docs/design.md describes it. Every writer's real output must pass
the one check (``run_contract.run_record.check_record``) and carry exactly the documented fields.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gpurun.status import cost_of, read_run_record
from instance_agent.agent import Agent
from instance_agent.config import parse_config
from launcher.events import StopEvent
from launcher.run_record import build_minimal_record
from run_contract.run_record import FIELDS, RunRecordError, check_record, corrected
from run_contract.s3_layout import run_record_key
from tests.instance_agent.fakes import BUCKET, SCORE, World

DESIGN = Path(__file__).resolve().parents[2] / "docs/design.md"
EXECUTION_ARN = "arn:aws:states:eu-west-1:123456789012:execution:scheduled-gpu-model:run-1"
FAILING_MODEL = "import sys; sys.exit(3)"
AGENT_CONFIG: dict[str, Any] = {
    "region": "eu-west-1",
    "activity_arn": "arn:aws:states:eu-west-1:123456789012:activity:weekly-run",
    "model": {"bucket": BUCKET, "prefix": "models/current/"},
    "task_wait_seconds": 1,
    "max_runtime_seconds": 60,
    "root_volume_gib": 120,
}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield World(tmp_path, s3)


def agent_record(world: World, model_code: str) -> dict[str, Any]:
    """The record the real agent writes after a whole run against the agent tests' fakes."""
    uptime = world.root / "uptime"
    uptime.write_text("42.5 80.0\n", encoding="ascii")
    config = parse_config(
        {
            **AGENT_CONFIG,
            "run": {"command": [sys.executable, "-c", model_code]},
            "metrics": {"file": str(world.root / "metrics.log"), "uptime_file": str(uptime)},
        }
    )
    Agent(config, world.services()).run()
    record = read_run_record(world.s3, BUCKET, "run-1")
    assert record is not None, "the agent wrote no run.json"
    return record


def launcher_record(*, failed: bool) -> dict[str, Any]:
    """The minimal record the launcher's stop writes for a run the agent never reported."""
    event = StopEvent.model_validate(
        {
            "action": "stop",
            "execution_arn": EXECUTION_ARN,
            "instance": {
                "instance_id": "i-0123456789abcdef0",
                "instance_type": "g5.xlarge",
                "subnet_id": "subnet-0a1b2c3d4e5f60718",
                "availability_zone": "eu-west-1a",
                "reused": False,
            },
            "run": {"max_runtime_seconds": 60},
            "error": {"Error": "States.Timeout", "Cause": "no heartbeat"} if failed else None,
            "results": {"bucket": BUCKET, "prefix": "runs/run-1/"},
        }
    )
    now = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
    record = build_minimal_record(event, now=now, launched=now - timedelta(minutes=12))
    # What S3 stores is JSON: compare what a reader gets back.
    parsed: dict[str, Any] = json.loads(json.dumps(record))
    return parsed


def design_fields() -> set[str]:
    """The top-level keys of docs/design.md's run record example."""
    section = DESIGN.read_text(encoding="utf-8").split("## The run record", 1)[1]
    block = re.search(r"```jsonc\n(.*?)```", section, re.S)
    assert block is not None, "docs/design.md: no jsonc block under The run record"
    text = re.sub(r"//[^\n]*", "", block.group(1))
    names: set[str] = set()
    depth = 0
    for position, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        key = re.match(r'"([a-z_]+)":', text[position:])
        if depth == 1 and key:
            names.add(key.group(1))
    return names


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_the_agent_writes_the_one_format(world: World, outcome: str) -> None:
    record = agent_record(world, SCORE if outcome == "succeeded" else FAILING_MODEL)

    check_record(record)
    assert set(record) == set(FIELDS)
    assert record["written_by"] == "agent"
    assert record["status"] == ("SUCCEEDED" if outcome == "succeeded" else "FAILED")


@pytest.mark.parametrize("failed", [False, True])
def test_the_launcher_writes_the_one_format(failed: bool) -> None:
    record = launcher_record(failed=failed)

    check_record(record)
    assert set(record) == set(FIELDS)
    assert record["written_by"] == "launcher"


def test_gpurun_prices_the_launchers_record_from_its_instance_and_lifetime() -> None:
    usd, source = cost_of(launcher_record(failed=True), "eu-west-1")

    assert usd is not None
    assert usd > 0
    assert source == "computed from run.json's instance type and lifetime"


def test_gpurun_takes_the_agents_own_estimate(world: World) -> None:
    record = agent_record(world, SCORE)

    assert cost_of(record, "eu-west-1")[1] == "run.json"


def test_the_design_documents_exactly_the_fields_written() -> None:
    assert design_fields() == set(FIELDS)


def test_a_corrected_record_still_follows_the_format(world: World) -> None:
    fixed = corrected(agent_record(world, SCORE), error=("States.Timeout", "late"), by="launcher")

    check_record(fixed)
    assert fixed["status"] == "FAILED"
    assert fixed["output"] is None
    assert fixed["correction"]["status_was"] == "SUCCEEDED"


def test_gpurun_refuses_a_record_that_breaks_the_format(world: World) -> None:
    broken = {**launcher_record(failed=True), "status": "SUCCEEDED"}  # SUCCEEDED with an error
    world.s3.put_object(Bucket=BUCKET, Key=run_record_key("run-1"), Body=json.dumps(broken))

    with pytest.raises(RunRecordError, match="FAILED record needs an error"):
        read_run_record(world.s3, BUCKET, "run-1")


# ---- the check can fail: each way a writer could drift is caught --------------------------


def _drop_model(record: dict[str, Any]) -> None:
    del record["model"]


def _add_field(record: dict[str, Any]) -> None:
    record["duration"] = 1.0


def _output_on_failure(record: dict[str, Any]) -> None:
    record["output"] = {"bucket": BUCKET, "prefix": "runs/run-1/", "manifest_key": "x"}


def _other_writer(record: dict[str, Any]) -> None:
    record["written_by"] = "operator"


def _error_shape(record: dict[str, Any]) -> None:
    record["error"] = {"Error": "States.Timeout", "Cause": "x"}


@pytest.mark.parametrize(
    "drift", [_drop_model, _add_field, _output_on_failure, _other_writer, _error_shape]
)
def test_a_drifted_record_is_refused(drift: Any) -> None:
    record = copy.deepcopy(launcher_record(failed=True))
    drift(record)

    with pytest.raises(RunRecordError):
        check_record(record)
