"""The installed ``gpurun`` against a kept-running local AWS with no flags: the operator sources
the environment file the demo writes (``local_aws/stack_files.py``) and types the commands."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from local_aws.local_run import LocalRun, Nets
from local_aws.machines import IdleBackend
from local_aws.server import LocalAws
from local_aws.stack_files import StackFiles, terraform_outputs, write_stack_files
from run_contract.tags import EXECUTION_TAG
from tests.conftest import MakeRun
from tests.gpurun.test_installed_command import installed_gpurun
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

OUTPUTS_TF = Path(__file__).resolve().parents[2] / "terraform" / "outputs.tf"
SETTINGS: dict[str, Any] = {
    "heartbeat_timeout_seconds": 30,
    "activity_timeout_seconds": 120,
    "execution_timeout_seconds": 300,
    "max_runtime_seconds": 60,
}


class Operator:
    """A shell with only the environment file sourced: no AWS or gpurun settings of its own."""

    def __init__(self, files: StackFiles, home: Path) -> None:
        self.files = files
        self.home = home

    def gpurun(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        script = 'source "$1" && shift && exec "$@"'
        return subprocess.run(
            ["bash", "-c", script, "operator", str(self.files.env), installed_gpurun(), *argv],
            env={"PATH": "/usr/bin:/bin", "HOME": str(self.home)},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.home,
        )


@pytest.fixture
def kept_running(
    make_run: MakeRun, local_aws: LocalAws, tmp_path: Path
) -> Callable[..., tuple[LocalRun, Operator]]:
    def deploy(**options: Any) -> tuple[LocalRun, Operator]:
        run = make_run(settings=SETTINGS, **options)
        files = write_stack_files(tmp_path / "stack", local_aws, run.deployed)
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        return run, Operator(files, home)

    return deploy


def idle_stack(kept_running: Callable[..., tuple[LocalRun, Operator]]) -> tuple[LocalRun, Operator]:
    """Instances that run nothing (a run waits in RunModel), with the execution-status net."""
    return kept_running(
        publish=False,
        backend=IdleBackend(),
        nets=Nets(execution_rule=True, instance_rule=False, sweeper=False),
    )


def executions(run: LocalRun) -> list[dict[str, Any]]:
    sfn = run.aws.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=run.deployed.state_machine_arn)
    return list(listed["executions"])


def instance_states(run: LocalRun, execution_arn: str) -> set[str]:
    reservations = run.aws.client("ec2").describe_instances(
        Filters=[{"Name": f"tag:{EXECUTION_TAG}", "Values": [execution_arn]}]
    )["Reservations"]
    return {i["State"]["Name"] for r in reservations for i in r["Instances"]}


def test_the_outputs_file_has_the_root_modules_output_names_and_shape(
    kept_running: Callable[..., tuple[LocalRun, Operator]],
) -> None:
    run, operator = idle_stack(kept_running)

    document = json.loads(operator.files.outputs.read_text(encoding="utf-8"))

    declared = set(
        line.split('"')[1]
        for line in OUTPUTS_TF.read_text().splitlines()
        if line.startswith("output ")
    )
    assert set(document) <= declared
    assert document == terraform_outputs(run.deployed)
    assert document["state_machine_arn"]["value"] == run.deployed.state_machine_arn
    assert all(set(entry) == {"sensitive", "type", "value"} for entry in document.values())


def test_run_logs_follow_and_status_work_with_no_flags(
    kept_running: Callable[..., tuple[LocalRun, Operator]],
) -> None:
    _, operator = kept_running()

    started = operator.gpurun("run", "--name", "week-1", "--no-follow")
    assert started.returncode == 0, started.stderr
    assert "  follow: gpurun follow week-1" in started.stdout.splitlines()

    # The default linger: the last lines reach CloudWatch Logs a little after the run ends.
    followed = operator.gpurun("logs", "week-1", "--follow", "--poll-seconds", "0.5")
    assert followed.returncode == 0, followed.stderr
    assert "[agent] " in followed.stdout
    assert followed.stdout.splitlines()[-1] == "week-1 has ended"
    wait_until(
        lambda: "run succeeded" in operator.gpurun("logs", "week-1").stdout,
        60,
        "the agent's last lines shipped",
    )

    status = operator.gpurun("status", "--json")
    assert status.returncode == 0, status.stderr
    (row,) = json.loads(status.stdout)
    assert (row["name"], row["status"]) == ("week-1", "SUCCEEDED")

    logs = operator.gpurun("logs", "week-1")
    assert logs.returncode == 0, logs.stderr
    assert "[agent] " in logs.stdout
    assert "model copy done" in logs.stdout
    assert "run succeeded" in logs.stdout


def test_run_then_cancel_with_no_flags_terminates_the_instance(
    kept_running: Callable[..., tuple[LocalRun, Operator]],
) -> None:
    run, operator = idle_stack(kept_running)
    assert operator.gpurun("run", "--name", "week-2", "--no-follow").returncode == 0
    (execution,) = executions(run)
    wait_until(
        lambda: "running" in instance_states(run, execution["executionArn"]),
        120,
        "week-2's instance running",
    )

    cancelled = operator.gpurun("cancel", "--poll-seconds", "0.5")

    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.splitlines()[-1].startswith("week-2: ABORTED; instance ")
    assert cancelled.stdout.splitlines()[-1].endswith(" terminated")
    assert instance_states(run, execution["executionArn"]) == {"terminated"}


def test_a_second_run_is_refused_with_no_flags_naming_the_first(
    kept_running: Callable[..., tuple[LocalRun, Operator]],
) -> None:
    run, operator = idle_stack(kept_running)
    assert operator.gpurun("run", "--name", "week-3", "--no-follow").returncode == 0

    second = operator.gpurun("run", "--no-follow")

    assert second.returncode == 2
    assert "a run is in progress (week-3)" in second.stderr
    assert [e["name"] for e in executions(run)] == ["week-3"]
    run.aws.client("stepfunctions").stop_execution(executionArn=executions(run)[0]["executionArn"])


def test_a_bad_set_value_is_refused_with_no_flags_and_nothing_starts(
    kept_running: Callable[..., tuple[LocalRun, Operator]],
) -> None:
    run, operator = idle_stack(kept_running)

    refused = operator.gpurun("run", "--set", "max_runtime_seconds=abc")

    assert refused.returncode == 2
    assert "--set max_runtime_seconds: Input should be a valid integer" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert executions(run) == []


def test_without_the_environment_file_gpurun_says_how_to_reach_the_local_aws(
    tmp_path: Path,
) -> None:
    env_file = tmp_path / ".demo" / "stack" / "gpurun.env"
    env_file.parent.mkdir(parents=True)
    env_file.write_text("# a kept-running demo's file\n", encoding="utf-8")

    result = subprocess.run(
        [installed_gpurun(), "status"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "source .demo/stack/gpurun.env" in result.stderr
