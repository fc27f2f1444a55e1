"""The installed ``gpurun`` command (``[project.scripts]``), run as a process the way an
operator runs it: Ctrl-C while following a run."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from local_aws.server import LocalAws
from tests.support.waiting import wait_until
from tests.support.workflow import WeeklyRun

# Runs through the local AWS (deployed workflow, executions): make unit leaves them out.
pytestmark = pytest.mark.slow


def installed_gpurun() -> str:
    """The console script next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "gpurun"
    found = str(beside) if beside.exists() else shutil.which("gpurun")
    assert found, "gpurun is not installed: run `make setup` (pip install -e .)"
    return found


def test_the_command_is_installed_and_shows_its_subcommands() -> None:
    result = subprocess.run(
        [installed_gpurun(), "--help"], capture_output=True, text=True, check=False, timeout=60
    )

    assert result.returncode == 0
    for command in ("run", "follow", "cancel", "status", "logs"):
        assert command in result.stdout


@pytest.mark.slow
def test_ctrl_c_while_following_says_the_run_goes_on_and_exits_130(
    weekly_run: WeeklyRun, local_aws: LocalAws
) -> None:
    process = subprocess.Popen(
        [
            installed_gpurun(),
            "run",
            "--name",
            "interrupted-1",
            "--state-machine-arn",
            weekly_run.state_machine_arn,
            "--poll-seconds",
            "0.2",
        ],
        # On a hang, SIGABRT makes it print every thread's stack (see below).
        env={**local_aws.child_env(), "PYTHONFAULTHANDLER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        for line in process.stdout or []:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        wait_until(lambda: any("StartInstance" in line for line in lines), 60, "a phase shown")

        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=90)  # a loaded machine is slow to unwind, not wrong
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            process.wait(timeout=30)
            stacks = process.stderr.read() if process.stderr else ""
            pytest.fail(f"gpurun still running 90 s after Ctrl-C; its threads:\n{stacks}")
    finally:
        if process.poll() is None:
            process.kill()
    err = process.stderr.read() if process.stderr else ""

    assert code == 130
    assert "Traceback" not in err
    (message,) = err.splitlines()
    assert "interrupted-1 goes on running" in message
    assert "gpurun follow interrupted-1" in message
    assert "gpurun cancel interrupted-1" in message
    arn = weekly_run.sfn.list_executions(stateMachineArn=weekly_run.state_machine_arn)[
        "executions"
    ][0]["executionArn"]
    assert weekly_run.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    weekly_run.sfn.stop_execution(executionArn=arn)
