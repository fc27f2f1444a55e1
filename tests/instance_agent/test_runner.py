"""The model runner: success, exit codes, the time limit, streamed output, the command line, and
nothing the model started outliving the run."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from instance_agent.activity import TaskLostError
from instance_agent.config import RunSettings
from instance_agent.errors import ModelCommandFailed, ModelRunTimedOut
from instance_agent.runner import ModelCommand, RunPaths, build_command, run_model
from tests.support.waiting import wait_until

T = TypeVar("T")

# Only a hang guard: each run below returns long before it, or waits for a process that never
# ends on its own (so it would never return at all).
HANG_GUARD_SECONDS = 60
# Longer than any test: a child sleeping this long is only gone if something ended it.
FOREVER = 3600

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


def test_carriage_returns_and_a_last_unterminated_line_are_lines_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As Python's text mode cuts them: a progress bar's updates are lines of the log.
    caplog.set_level("INFO", logger="instance_agent.model")
    run_model(py("import sys; sys.stdout.write('10%\\r50%\\r\\nnext\\r\\nlast')"), 30)
    lines = [r.getMessage() for r in caplog.records if r.name == "instance_agent.model"]
    assert [line for line in lines if not line.startswith("model command")] == [
        "10%",
        "50%",
        "next",
        "last",
    ]


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


def test_a_stopped_model_that_ignores_sigterm_is_sigkilled(tmp_path: Path) -> None:
    got_term = tmp_path / "got-sigterm"
    ready = tmp_path / "ready"
    code = (
        "import pathlib, signal, time\n"
        f"signal.signal(signal.SIGTERM, lambda *_: pathlib.Path({str(got_term)!r}).touch())\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        f"time.sleep({FOREVER})\n"
    )
    # Stopped once its SIGTERM handler is in place (a time limit could strike before that).
    cancel = threading.Event()

    def stop_once_ready() -> None:
        wait_until(ready.exists, 120, "the model ready")
        cancel.set()

    threading.Thread(target=stop_once_ready, daemon=True).start()

    with pytest.raises(TaskLostError):
        returned(lambda: run_model(py(code), 60, kill_grace_seconds=0.5, cancel=cancel))
    assert got_term.exists(), "the model was not sent SIGTERM first"


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
    run = RunSettings(command=["python3", "score.py"], python_candidates=["python3"])
    command = build_command(run, PATHS, which=lambda name: f"/usr/bin/{name}")
    assert command.args == ["python3", "score.py"]
    assert command.env == {
        "MODEL_DIR": "/mnt/s/model",
        "OUTPUT_DIR": "/mnt/s/output",
        "TASK_INPUT": "/mnt/s/task.json",
        "RUN_NAME": "run-1",
        "MODEL_PYTHON": "/usr/bin/python3",
    }
    assert command.cwd == Path("/mnt/s/model")


def test_a_container_gets_gpus_read_only_model_and_the_contract() -> None:
    run = RunSettings(container_image="acme/model:1", command=["score"], docker_args=["--ipc=host"])
    command = build_command(run, PATHS)
    assert command.args == [
        "docker", "run", "--rm", "--pull=never", "--name", "instance-agent-run-1",
        "--gpus", "all",
        "-v", "/mnt/s/model:/model:ro",
        "-v", "/mnt/s/output:/output",
        "-v", "/mnt/s/task.json:/task-input.json:ro",
        "-e", "MODEL_DIR=/model", "-e", "OUTPUT_DIR=/output",
        "-e", "TASK_INPUT=/task-input.json", "-e", "RUN_NAME=run-1",
        "--ipc=host", "acme/model:1", "score",
    ]  # fmt: skip
    assert command.container_name == "instance-agent-run-1"


# ---- nothing the model started outlives the run ---------------------------------------------


def returned(call: Callable[[], T]) -> T:
    """What ``call`` returns, run on a thread; fails if it is still waiting after the hang guard."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_SECONDS)
    assert not thread.is_alive(), f"the run still waits after {HANG_GUARD_SECONDS} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def forking_model(
    pid_file: Path,
    child: str,
    *,
    exit_code: int = 0,
    child_session: bool = False,
    child_ready: Path | None = None,
) -> ModelCommand:
    """A model that starts ``child`` in the background (holding the model's stdout, as an
    inherited descriptor does), writes its pid to ``pid_file``, waits for ``child_ready`` to
    exist if given, says so, and exits."""
    wait = f"while not os.path.exists({str(child_ready)!r}): time.sleep(0.01)\n"
    return py(
        "import os, subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {child!r}], "
        f"start_new_session={child_session})\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        + (wait if child_ready is not None else "")
        + "print('model done', flush=True)\n"
        f"raise SystemExit({exit_code})\n"
    )


SLEEPING_CHILD = f"import time; time.sleep({FOREVER})"


@pytest.fixture
def pid_file(tmp_path: Path) -> Iterator[Path]:
    """Where the model writes its child's pid; a child still alive after the test is killed."""
    path = tmp_path / "child.pid"
    yield path
    if path.exists() and alive(int(path.read_text())):
        os.kill(int(path.read_text()), signal.SIGKILL)


def test_a_background_child_is_ended_when_the_model_exits(pid_file: Path) -> None:
    # A grace far beyond the hang guard: the child ends on SIGTERM, nobody waits for the grace.
    returned(lambda: run_model(forking_model(pid_file, SLEEPING_CHILD), 30, kill_grace_seconds=600))

    child = int(pid_file.read_text())
    wait_until(lambda: not alive(child), 10, "the model's background child gone")


def test_the_models_exit_code_is_reported_when_its_child_is_ended(pid_file: Path) -> None:
    model = forking_model(pid_file, SLEEPING_CHILD, exit_code=3)

    with pytest.raises(ModelCommandFailed, match="exited with code 3"):
        returned(lambda: run_model(model, 30, kill_grace_seconds=600))
    wait_until(lambda: not alive(int(pid_file.read_text())), 10, "the model's child gone")


def test_a_left_over_child_that_ignores_sigterm_is_sigkilled(
    pid_file: Path, tmp_path: Path
) -> None:
    got_term = tmp_path / "got-sigterm"
    ready = tmp_path / "child-ready"
    child = (
        "import pathlib, signal, time\n"
        "signal.signal(signal.SIGTERM, "
        f"lambda *_: pathlib.Path({str(got_term)!r}).touch())\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        f"time.sleep({FOREVER})\n"
    )
    model = forking_model(pid_file, child, child_ready=ready)

    returned(lambda: run_model(model, 30, kill_grace_seconds=0.5))

    wait_until(lambda: not alive(int(pid_file.read_text())), 10, "the child SIGKILLed")
    assert got_term.exists(), "the child was not sent SIGTERM first"


def test_left_over_processes_are_named_in_the_log(
    pid_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="instance_agent.model")

    returned(lambda: run_model(forking_model(pid_file, SLEEPING_CHILD), 30, kill_grace_seconds=600))

    assert f"left 1 process(es) running ({pid_file.read_text()})" in caplog.text


def test_the_run_does_not_wait_on_a_pipe_held_by_a_process_that_left_the_group(
    pid_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A child in a session of its own is out of reach of the process group (only a systemd scope
    # ends it); it holds the output pipe open for as long as it lives.
    caplog.set_level("INFO", logger="instance_agent.model")
    model = forking_model(pid_file, SLEEPING_CHILD, child_session=True)

    returned(lambda: run_model(model, 30, kill_grace_seconds=600))

    assert alive(int(pid_file.read_text())), "the escaped child ended: the test proves nothing"
    lines = [r.getMessage() for r in caplog.records if r.name == "instance_agent.model"]
    assert "model done" in lines
