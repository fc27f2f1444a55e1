"""The model runner: success, exit codes, the time limit, streamed output, the command line."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from instance_agent.activity import TaskLostError
from instance_agent.config import RunSettings
from instance_agent.errors import ModelCommandFailed, ModelRunTimedOut
from instance_agent.runner import ModelCommand, RunPaths, build_command, run_model
from tests.support.waiting import wait_until

PATHS = RunPaths(Path("/mnt/s/model"), Path("/mnt/s/output"), Path("/mnt/s/task.json"), "run-1")


def py(code: str) -> ModelCommand:
    return ModelCommand([sys.executable, "-c", code], {"RUN_NAME": "run-1"}, None)


def test_a_successful_command_returns_its_duration() -> None:
    assert run_model(py("pass"), 30) >= 0


def test_a_non_zero_exit_fails_with_the_code() -> None:
    with pytest.raises(ModelCommandFailed, match="exited with code 3"):
        run_model(py("raise SystemExit(3)"), 30)


def test_a_missing_program_fails_with_its_name() -> None:
    with pytest.raises(ModelCommandFailed, match="cannot start the model command"):
        run_model(ModelCommand(["/nonexistent/model"], {}, None), 30)


def test_output_is_streamed_line_by_line_to_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="instance_agent.model")
    run_model(py("import os,sys; print('one'); print(os.environ['RUN_NAME'], file=sys.stderr)"), 30)
    lines = [r.getMessage() for r in caplog.records if r.name == "instance_agent.model"]
    assert "one" in lines
    assert "run-1" in lines


def test_a_line_is_logged_while_the_command_still_runs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="instance_agent.model")
    seen = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(r.getMessage() == "early" for r in caplog.records):
                seen.set()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    run_model(py("import time; print('early', flush=True); time.sleep(1.5)"), 30)
    watcher.join()
    assert seen.is_set()


def test_past_the_limit_the_whole_process_group_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # The model starts a child that ignores SIGTERM: only the group SIGKILL ends it.
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    with pytest.raises(ModelRunTimedOut, match="max_runtime_seconds=1"):
        run_model(py(code), 1, kill_grace_seconds=0.5)
    assert time.monotonic() - started < 10
    child = int(pid_file.read_text())
    # SIGKILL lands at once; a busy machine may take a moment to show it.
    wait_until(lambda: not alive(child), 5, "the killed child gone")


def alive(pid: int) -> bool:
    """Running or sleeping; a zombie waiting for its (orphan) reaper counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def test_a_cancelled_run_is_killed_and_reported_as_task_lost() -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    with pytest.raises(TaskLostError):
        run_model(py("import time; time.sleep(60)"), 60, kill_grace_seconds=0.5, cancel=cancel)


def test_a_host_command_gets_the_environment_contract() -> None:
    command = build_command(RunSettings(command=["python3", "score.py"]), PATHS)
    assert command.args == ["python3", "score.py"]
    assert command.env == {
        "MODEL_DIR": "/mnt/s/model",
        "OUTPUT_DIR": "/mnt/s/output",
        "TASK_INPUT": "/mnt/s/task.json",
        "RUN_NAME": "run-1",
    }


def test_a_container_gets_gpus_read_only_model_and_the_contract() -> None:
    run = RunSettings(container_image="acme/model:1", command=["score"], docker_args=["--ipc=host"])
    command = build_command(run, PATHS)
    assert command.args == [
        "docker", "run", "--rm", "--name", "instance-agent-run-1", "--gpus", "all",
        "-v", "/mnt/s/model:/model:ro",
        "-v", "/mnt/s/output:/output",
        "-v", "/mnt/s/task.json:/task-input.json:ro",
        "-e", "MODEL_DIR=/model", "-e", "OUTPUT_DIR=/output",
        "-e", "TASK_INPUT=/task-input.json", "-e", "RUN_NAME=run-1",
        "--ipc=host", "acme/model:1", "score",
    ]  # fmt: skip
    assert command.container_name == "instance-agent-run-1"
