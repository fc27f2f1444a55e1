"""Running the model: the command line, its environment contract, streaming, the time limit.

The model sees (on the host, or inside the container):
  MODEL_DIR   the verified model copy (read-only in a container)
  OUTPUT_DIR  where it writes its results; everything there is uploaded
  TASK_INPUT  path of a JSON file holding the activity task's input (``parameters`` included)
  RUN_NAME    the execution name, also the results prefix's last part
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from instance_agent.activity import TaskLostError
from instance_agent.config import RunSettings
from instance_agent.errors import ModelCommandFailed, ModelRunTimedOut

log = logging.getLogger("instance_agent.model")

CONTAINER_MODEL_DIR = "/model"
CONTAINER_OUTPUT_DIR = "/output"
CONTAINER_TASK_INPUT = "/task-input.json"


@dataclasses.dataclass(frozen=True)
class RunPaths:
    model_dir: Path
    output_dir: Path
    task_input: Path
    run_name: str


@dataclasses.dataclass(frozen=True)
class ModelCommand:
    args: list[str]
    env: dict[str, str]
    container_name: str | None


def container_name(run_name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in run_name)
    return f"instance-agent-{safe}"[:128]


def build_command(run: RunSettings, paths: RunPaths) -> ModelCommand:
    """The host command with the contract in its environment, or the `docker run` line."""
    if not run.container_image:
        env = {
            "MODEL_DIR": str(paths.model_dir),
            "OUTPUT_DIR": str(paths.output_dir),
            "TASK_INPUT": str(paths.task_input),
            "RUN_NAME": paths.run_name,
        }
        return ModelCommand(list(run.command), env, None)
    name = container_name(paths.run_name)
    args = [
        "docker",
        "run",
        "--rm",
        "--name",
        name,
        "--gpus",
        "all",
        "-v",
        f"{paths.model_dir}:{CONTAINER_MODEL_DIR}:ro",
        "-v",
        f"{paths.output_dir}:{CONTAINER_OUTPUT_DIR}",
        "-v",
        f"{paths.task_input}:{CONTAINER_TASK_INPUT}:ro",
        "-e",
        f"MODEL_DIR={CONTAINER_MODEL_DIR}",
        "-e",
        f"OUTPUT_DIR={CONTAINER_OUTPUT_DIR}",
        "-e",
        f"TASK_INPUT={CONTAINER_TASK_INPUT}",
        "-e",
        f"RUN_NAME={paths.run_name}",
        *run.docker_args,
        run.container_image,
        *run.command,
    ]
    return ModelCommand(args, {}, name)


def _stream(stream: IO[str] | None, out: logging.Logger) -> None:
    if stream is None:
        return
    for line in stream:
        out.info("%s", line.rstrip("\n"))


def _kill_group(process: subprocess.Popen[str], grace: float) -> None:
    """SIGTERM the whole process group, then SIGKILL after ``grace`` seconds."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    # Children may outlive the leader: SIGKILL the group whatever the leader did.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_model(
    command: ModelCommand,
    max_runtime_seconds: float,
    *,
    kill_grace_seconds: float = 10.0,
    cancel: threading.Event | None = None,
    poll_seconds: float = 0.2,
    cwd: Path | None = None,
) -> float:
    """Run to completion and return the seconds it took; raise on failure, timeout or cancel."""
    log.info("model command: %s", " ".join(command.args))
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            command.args,
            env={**os.environ, **command.env},
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
            # Its own process group, so a timeout kills the model's children too.
            start_new_session=True,
        )
    except OSError as exc:
        raise ModelCommandFailed(
            f"cannot start the model command {command.args[0]!r}: {exc}"
        ) from exc
    reader = threading.Thread(target=_stream, args=(process.stdout, log), daemon=True)
    reader.start()
    deadline = started + max_runtime_seconds
    reason: str | None = None
    try:
        while process.poll() is None:
            if cancel is not None and cancel.is_set():
                reason = "cancelled"
            elif time.monotonic() >= deadline:
                reason = "timeout"
            if reason:
                log.error("model command %s; killing its process group", reason)
                _kill_group(process, kill_grace_seconds)
                _stop_container(command.container_name)
                break
            time.sleep(poll_seconds)
    except BaseException:
        # SIGTERM (the agent's Terminated) or a bug unwinds through here: the model runs in a
        # session of its own, so nothing else would stop it before the instance shuts down.
        log.error(  # noqa: TRY400 - the agent logs the exception itself when it reports it
            "the agent is stopping; killing the model command's process group"
        )
        _kill_group(process, kill_grace_seconds)
        _stop_container(command.container_name)
        raise
    reader.join(timeout=5)
    seconds = time.monotonic() - started
    if reason == "timeout":
        raise ModelRunTimedOut(
            f"the model command ran past max_runtime_seconds={max_runtime_seconds:g} and was killed"
        )
    if reason == "cancelled":
        raise TaskLostError("the model run was stopped because the task is gone")
    if process.returncode != 0:
        raise ModelCommandFailed(
            f"the model command exited with code {process.returncode} after {seconds:.1f} s"
        )
    log.info("model command succeeded in %.1f s", seconds)
    return seconds


def _stop_container(name: str | None) -> None:
    # Killing the docker CLI does not stop its container: ask the daemon too.
    if name is None:
        return
    subprocess.run(["docker", "kill", name], capture_output=True, check=False, timeout=30)


def write_task_input(path: Path, task_input: Mapping[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(task_input, indent=2, sort_keys=True) + "\n", encoding="utf-8")
