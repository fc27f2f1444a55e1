"""``gpurun run`` and ``status`` against the full local AWS, and run.json as the real agent and
the real launcher write it there."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpurun import runs
from local_aws.local_run import LocalRun
from local_aws.server import LocalAws
from tests.conftest import MakeRun
from tests.gpurun.cli_helpers import gpurun_on, run_record
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

# Short limits, as the failure matrix uses: a failing case ends within a minute.
SETTINGS: dict[str, Any] = {
    "heartbeat_timeout_seconds": 6,
    "activity_timeout_seconds": 40,
    "execution_timeout_seconds": 60,
    "max_runtime_seconds": 20,
}
UPTIME_SECONDS = 180.0


@pytest.fixture
def deployed(
    make_run: MakeRun, local_aws: LocalAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., LocalRun]:
    """The stack in the local AWS with the CLI's clients pointed at it."""
    for name, value in local_aws.child_env({}).items():
        monkeypatch.setenv(name, value)
    uptime = tmp_path / "uptime"
    uptime.write_text(f"{UPTIME_SECONDS} 0.0\n", encoding="ascii")

    def deploy(**options: Any) -> LocalRun:
        # The host's /proc/uptime and /var/log are not the emulated instance's.
        options["config_overrides"] = {
            "heartbeat_interval_seconds": 1,
            "metrics": {"file": str(tmp_path / "metrics.log"), "uptime_file": str(uptime)},
        }
        return make_run(settings=SETTINGS, **options)

    return deploy


def log_flags(run: LocalRun) -> list[str]:
    settings = run.deployed.settings
    return [
        "--agent-log-group",
        settings.agent_log_group_name,
        "--launcher-log-group",
        settings.launcher_log_group_name,
    ]


def test_run_follows_a_local_weekly_run_to_success_and_the_agent_writes_run_json(
    deployed: Callable[..., LocalRun], local_aws: LocalAws, tmp_path: Path
) -> None:
    run = deployed()

    result = gpurun_on(
        run, local_aws, "run", "--name", "ops-happy", "--poll-seconds", "0.5", "--timeout", "90"
    )

    assert result.code == 0, result.out + result.err
    assert result.out.splitlines()[-1] == "ops-happy: SUCCEEDED"
    assert "the agent took the task" in result.out
    record = run_record(run, local_aws, "ops-happy")
    assert (record["written_by"], record["status"]) == ("agent", "SUCCEEDED")
    assert record["model"]["version"].startswith("sha256:")
    assert record["output"]["manifest_key"] == "runs/ops-happy/_manifest.json"
    assert record["lifetime_seconds"] == UPTIME_SECONDS
    assert record["cost"]["hourly_usd"] > 0
    (line,) = [json.loads(x) for x in (tmp_path / "metrics.log").read_text().splitlines()]
    assert line["ExecutionName"] == "ops-happy"
    assert line["RunSucceeded"] == 1.0

    rows = gpurun_on(run, local_aws, "status", "--json").json()
    assert rows[0]["name"] == "ops-happy"
    assert rows[0]["cost_source"] == "run.json"


def test_a_failing_model_gets_a_failed_run_json_from_the_agent(
    deployed: Callable[..., LocalRun], local_aws: LocalAws
) -> None:
    run = deployed(model_command=["sh", "-c", "exit 3"])

    result = gpurun_on(
        run, local_aws, "run", "--name", "ops-fail", "--poll-seconds", "0.5", "--timeout", "90"
    )

    assert result.code == 1, result.out + result.err
    record = run_record(run, local_aws, "ops-fail")
    assert (record["written_by"], record["status"]) == ("agent", "FAILED")
    assert record["error"]["error"] == "ModelCommandFailed"


def test_a_refused_start_gets_a_minimal_run_json_from_the_launcher(
    deployed: Callable[..., LocalRun], local_aws: LocalAws
) -> None:
    run = deployed()
    # gpurun run refuses this value itself; an execution started another way still gets one.
    run.start_execution("ops-refused", {"max_runtime_seconds": 0})

    result = gpurun_on(
        run, local_aws, "follow", "ops-refused", "--poll-seconds", "0.5", "--timeout", "60"
    )

    assert result.code == 1, result.out + result.err
    record = run_record(run, local_aws, "ops-refused")
    assert (record["written_by"], record["status"]) == ("launcher", "FAILED")
    assert record["error"]["error"] == "EventValidationError"
    assert record["instance"] == {}
    assert record["input"]["max_runtime_seconds"] == 0


def test_logs_shows_the_agents_real_lines_shipped_as_the_user_datas_cloudwatch_agent_would(
    deployed: Callable[..., LocalRun], local_aws: LocalAws
) -> None:
    run = deployed()
    assert gpurun_on(run, local_aws, "run", "--name", "ops-logs", "--poll-seconds", "0.5").code == 0
    instance = runs.instance_from_history(
        runs.history_events(
            local_aws.client("stepfunctions"),
            runs.execution_arn_of(run.deployed.state_machine_arn, "ops-logs"),
        )
    )
    assert instance is not None
    instance_id = instance["instance_id"]

    def agent_lines() -> list[dict[str, Any]]:
        document = gpurun_on(run, local_aws, "logs", "ops-logs", *log_flags(run), "--json").json()
        return [line for line in document["lines"] if line["source"] == "agent"]

    wait_until(
        lambda: any("run succeeded" in line["message"] for line in agent_lines()),
        30,
        "the agent's last lines shipped",
    )
    streams = {line["stream"] for line in agent_lines()}
    assert streams == {f"{instance_id}/instance-agent", f"{instance_id}/metrics"}
    assert any("task received" in line["message"] for line in agent_lines())


def test_logs_follow_prints_the_agents_lines_as_the_run_goes_and_ends_after_it(
    deployed: Callable[..., LocalRun], local_aws: LocalAws
) -> None:
    run = deployed()
    run.start_execution("ops-follow", {})

    result = gpurun_on(
        run,
        local_aws,
        "logs",
        "ops-follow",
        *log_flags(run),
        "--follow",
        "--json",
        "--poll-seconds",
        "0.5",
        "--linger-seconds",
        "5",
    )

    assert result.code == 0, result.err
    lines = [json.loads(text) for text in result.out.splitlines()]
    messages = [line["message"] for line in lines if line["source"] == "agent"]
    assert any("task received" in m for m in messages)
    assert any("run succeeded" in m for m in messages)
    assert any(line["source"] == "launcher" for line in lines)
    assert (
        local_aws.client("stepfunctions").describe_execution(
            executionArn=runs.execution_arn_of(run.deployed.state_machine_arn, "ops-follow")
        )["status"]
        == "SUCCEEDED"
    )
