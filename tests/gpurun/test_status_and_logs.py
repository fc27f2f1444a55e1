"""``gpurun status`` and ``gpurun logs`` against a small stack in moto."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import boto3

from gpurun import logs
from run_contract.run_record import new_record
from tests.gpurun.cli_helpers import gpurun
from tests.gpurun.conftest import AGENT_LOG_GROUP, REGION, SmallStack

INSTANCE = {
    "instance_id": "i-0123456789abcdef0",
    "instance_type": "g4dn.xlarge",
    "subnet_id": "subnet-1",
    "availability_zone": "eu-west-1a",
    "reused": False,
}


def _record(name: str, written_by: str, **fields: Any) -> dict[str, Any]:
    """A record in the one format (run_contract), as the agent or the launcher writes it."""
    values: dict[str, Any] = {
        "written_by": written_by,
        "execution_name": name,
        "execution_arn": f"arn:aws:states:{REGION}:123456789012:execution:weekly-run:{name}",
        "status": "SUCCEEDED",
        "error": None,
        "run_input": {},
        "instance": {k: INSTANCE[k] for k in ("instance_id", "instance_type")},
        "timings": {},
        "lifetime_seconds": 600.0,
        "model": None,
        "output": None,
        "cost": None,
        "cost_note": None,
    }
    values.update(fields)
    return new_record(**values)


def agent_record(name: str) -> dict[str, Any]:
    return _record(name, "agent", cost={"total_usd": 0.0912})


def launcher_record(name: str) -> dict[str, Any]:
    return _record(
        name,
        "launcher",
        status="FAILED",
        error=("States.HeartbeatTimeout", ""),
        instance={"instance_id": "i-0aaaaaaaaaaaaaaaa", "instance_type": "g5.xlarge"},
        lifetime_seconds=1800.0,
    )


# ---- status ---------------------------------------------------------------------------------


def test_status_lists_the_newest_runs_first_with_their_cost(small_stack: SmallStack) -> None:
    for name in ("week-1", "week-2", "week-3"):
        small_stack.run(name)
    small_stack.put_record("week-3", agent_record("week-3"))

    rows = gpurun("status", *small_stack.flags(), "--json").json()

    assert [r["name"] for r in rows] == ["week-3", "week-2", "week-1"]
    assert rows[0]["status"] == "SUCCEEDED"
    assert rows[0]["cost_usd"] == 0.0912
    assert rows[0]["cost_source"] == "run.json"
    assert rows[0]["instance_type"] == "g4dn.xlarge"


def test_status_computes_the_cost_of_a_launcher_record_from_type_and_lifetime(
    small_stack: SmallStack,
) -> None:
    small_stack.run("week-9")
    small_stack.put_record("week-9", launcher_record("week-9"))

    (row,) = gpurun("status", *small_stack.flags(), "--json").json()

    # g5.xlarge in eu-west-1 for half an hour.
    assert row["cost_usd"] == round(1.123 / 2, 4)
    assert row["error"] == "States.HeartbeatTimeout"
    assert row["record_written_by"] == "launcher"


def test_status_shows_no_figure_from_a_record_that_breaks_the_format(
    small_stack: SmallStack,
) -> None:
    small_stack.run("week-7")
    small_stack.put_record("week-7", {**agent_record("week-7"), "status": "FAILED"})

    (row,) = gpurun("status", *small_stack.flags(), "--json").json()

    assert row["cost_usd"] is None
    assert row["cost_source"].startswith("run.json refused: run record: a FAILED record")
    assert row["record_written_by"] is None


def test_status_shows_a_dash_for_a_run_without_a_record(small_stack: SmallStack) -> None:
    small_stack.run("week-5")

    result = gpurun("status", *small_stack.flags())

    assert result.code == 0
    header, line = result.out.splitlines()
    assert header.split() == ["NAME", "STATUS", "STARTED", "DURATION", "INSTANCE", "COST", "ERROR"]
    assert line.startswith("week-5")
    assert "SUCCEEDED" in line
    assert line.split()[-1] == "-"


def test_status_last_limits_the_number_of_runs(small_stack: SmallStack) -> None:
    for name in ("a-1", "a-2", "a-3"):
        small_stack.run(name)

    rows = gpurun("status", *small_stack.flags(), "--last", "2", "--json").json()

    assert len(rows) == 2


def test_status_without_a_state_machine_says_how_to_name_it(small_stack: SmallStack) -> None:
    result = gpurun("status", "--region", REGION, "--bucket", small_stack.bucket)

    assert result.code == 2
    assert "--state-machine-arn" in result.err
    assert "GPURUN_STATE_MACHINE_ARN" in result.err


# ---- logs -----------------------------------------------------------------------------------


def put_lines(group: str, stream: str, messages: list[str]) -> None:
    logs = boto3.client("logs", region_name=REGION)
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)],
    )


def test_logs_shows_the_agent_lines_of_the_runs_instance_only(small_stack: SmallStack) -> None:
    small_stack.run("week-7", INSTANCE)
    group = "/ops-test/instance-agent"
    put_lines(group, f"{INSTANCE['instance_id']}/instance-agent", ["model copy done", "scored"])
    put_lines(group, "i-0ffffffffffffffff/instance-agent", ["another run's line"])

    result = gpurun("logs", "week-7", *small_stack.flags())

    assert result.code == 0
    assert "[agent] model copy done" in result.out
    assert "[agent] scored" in result.out
    assert "another run's line" not in result.out


def test_logs_shows_launcher_lines_naming_the_run_or_its_instance(small_stack: SmallStack) -> None:
    small_stack.run("week-8", INSTANCE)
    put_lines(
        "/aws/lambda/ops-test-launcher",
        "2026/11/24/[$LATEST]abc",
        [
            '{"message": "Instance ready", "execution_arn": "arn:...:week-8"}',
            f'{{"message": "Termination done", "terminated": ["{INSTANCE["instance_id"]}"]}}',
            '{"message": "Instance ready", "execution_arn": "arn:...:week-4"}',
        ],
    )

    lines = gpurun("logs", "week-8", *small_stack.flags(), "--json").json()["lines"]

    messages = [line["message"] for line in lines]
    assert len(messages) == 2
    assert all(line["source"] == "launcher" for line in lines)
    assert "week-4" not in " ".join(messages)


def test_logs_of_a_run_that_never_got_an_instance_says_so(small_stack: SmallStack) -> None:
    small_stack.run("week-6")

    result = gpurun("logs", "week-6", *small_stack.flags())

    assert result.code == 0
    assert "never got an instance" in result.out


def test_logs_of_an_unknown_run_points_to_status(small_stack: SmallStack) -> None:
    result = gpurun("logs", "no-such-run", *small_stack.flags())

    assert result.code == 2
    assert "gpurun status" in result.err


def test_logs_of_a_missing_log_group_is_an_error_naming_the_group_and_the_fix(
    small_stack: SmallStack,
) -> None:
    small_stack.run("week-9", INSTANCE)
    boto3.client("logs", region_name=REGION).delete_log_group(logGroupName=AGENT_LOG_GROUP)

    result = gpurun("logs", "week-9", *small_stack.flags())

    assert result.code == 2
    assert f"log group '{AGENT_LOG_GROUP}' does not exist in {REGION}" in result.err
    assert "check --agent-log-group" in result.err
    assert "logs can take a minute" not in result.out + result.err


def test_an_agent_milestone_is_the_text_after_its_logger_name() -> None:
    line = "2026-12-02T20:46:15Z INFO instance_agent.copy: copy progress: 1/2 bytes (50.0%)"

    assert logs.agent_milestone(line) == "copy progress: 1/2 bytes (50.0%)"
    assert (
        logs.agent_milestone("2026-12-02T20:46:15Z INFO instance_agent.agent: debug detail") is None
    )
    assert logs.agent_milestone("copy progress: a line not from the agent's logger") is None


def test_follow_shows_the_agents_milestones_with_the_copys_progress(
    small_stack: SmallStack,
) -> None:
    small_stack.run("week-10", INSTANCE)
    put_lines(
        AGENT_LOG_GROUP,
        f"{INSTANCE['instance_id']}/instance-agent",
        [
            "2026-12-02T20:46:15Z INFO instance_agent.copy: copy progress: 1/2 bytes (50.0%)",
            "2026-12-02T20:46:15Z INFO instance_agent.agent: some detail",
            "2026-12-02T20:46:16Z INFO instance_agent.agent: model copy done: 1 file(s)",
        ],
    )

    result = gpurun("follow", "week-10", *small_stack.flags(), "--json")

    assert result.code == 0, result.err
    agent = [e["message"] for e in result.json_lines() if e.get("phase") == "Agent"]
    assert agent == ["copy progress: 1/2 bytes (50.0%)", "model copy done: 1 file(s)"]
