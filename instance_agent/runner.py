"""Running the model: the command line, its environment contract, streaming, the time limit,
and ending its whole process tree with the run.

The model sees (on the host, or inside the container):
  MODEL_DIR   the verified model copy (read-only in a container)
  OUTPUT_DIR  where it writes its results; everything there is uploaded
  TASK_INPUT  path of a JSON file holding the activity task's input (``parameters`` included)
  RUN_NAME    the execution name, also the results prefix's last part
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from instance_agent import process_group, systemd_scope
from instance_agent.activity import TaskLostError
from instance_agent.config import RunSettings
from instance_agent.errors import ModelCommandFailed, ModelRunTimedOut
from instance_agent.output_lines import OutputLines

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


def _exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether the model has exited, leaving it unreaped (WNOWAIT): while it is a zombie its pid,
    which is also its process group's id, cannot be given to another process."""
    try:
        state = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True  # reaped already
    return state is not None


def _end_tree(
    process: subprocess.Popen[bytes],
    scope_unit: str | None,
    container: str | None,
    grace_seconds: float,
    *,
    exited: bool,
) -> None:
    """End everything the run started: the process group, the scope, the container; reap."""
    if exited:
        left = process_group.live_members(process.pid)
        if left:
            log.warning(
                "the model command exited and left %d process(es) running (%s): ending them",
                len(left),
                ", ".join(map(str, left)),
            )
    process_group.end_group(process.pid, grace_seconds)
    if scope_unit is not None:
        # Whatever left the process group (setsid, a double fork) is still in the scope.
        systemd_scope.stop_scope(scope_unit, grace_seconds)
    if not exited:
        _stop_container(container)
    process.wait()


def run_model(
    command: ModelCommand,
    max_runtime_seconds: float,
    *,
    kill_grace_seconds: float = 10.0,
    cancel: threading.Event | None = None,
    poll_seconds: float = 0.2,
    cwd: Path | None = None,
    scope_unit: str | None = None,
) -> float:
    """Run to completion and return the seconds it took; raise on failure, timeout or cancel.

    The model leads a session (and process group) of its own and, with ``scope_unit``, runs in
    that transient systemd scope. However it ends, nothing it started outlives the run: the group
    gets SIGTERM, then SIGKILL ``kill_grace_seconds`` later, and the scope is stopped.
    """
    log.info("model command: %s", " ".join(command.args))
    args = list(command.args)
    if scope_unit is not None:
        log.info("the model runs in the transient systemd scope %s", scope_unit)
        args = systemd_scope.model_scope_command(scope_unit, args, grace_seconds=kill_grace_seconds)
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            args,
            env={**os.environ, **command.env},
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own session and process group: everything it starts can be ended as one.
            start_new_session=True,
        )
    except OSError as exc:
        raise ModelCommandFailed(
            f"cannot start the model command {command.args[0]!r}: {exc}"
        ) from exc
    assert process.stdout is not None  # noqa: S101 - stdout=PIPE
    output = OutputLines(process.stdout.fileno(), log)
    output.start()
    deadline = started + max_runtime_seconds
    reason: str | None = None
    try:
        while not _exited(process):
            if cancel is not None and cancel.is_set():
                reason = "cancelled"
            elif time.monotonic() >= deadline:
                reason = "timeout"
            if reason:
                log.error("model command %s; killing its process group", reason)
                break
            time.sleep(poll_seconds)
        _end_tree(
            process,
            scope_unit,
            command.container_name,
            kill_grace_seconds,
            exited=reason is None,
        )
    except BaseException:
        # SIGTERM (the agent's Terminated) or a bug unwinds through here: the model runs in a
        # session of its own, so nothing else would stop it before the instance shuts down.
        log.error(  # noqa: TRY400 - the agent logs the exception itself when it reports it
            "the agent is stopping; killing the model command's process group"
        )
        _end_tree(process, scope_unit, command.container_name, kill_grace_seconds, exited=False)
        raise
    finally:
        # Every process of the run is gone (or escaped it): log what is left in the pipe, even
        # if an escaped process still holds it open.
        output.stop()
        process.stdout.close()
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
