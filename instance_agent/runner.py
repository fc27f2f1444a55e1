"""Running the model: the command line, its environment contract, streaming, the time limit,
and ending its whole process tree with the run.

The model contract (instance_agent/README.md, "The model", is its full text). The model sees (on
the host, or inside the container):
  MODEL_DIR     the verified model copy (read-only in a container)
  OUTPUT_DIR    where it writes its results; everything there is uploaded
  TASK_INPUT    path of a JSON file holding the activity task's input (``parameters`` included)
  RUN_NAME      the execution name, also the results prefix's last part
  MODEL_PYTHON  (host only) the Python found from ``run.python_candidates``

The command is, in this order: ``run.shell_command`` (``/bin/sh -c``, so the variables expand),
``run.command`` (an argument list, no shell, nothing expanded), or the model's own ``run.sh``
(``/bin/sh $MODEL_DIR/run.sh``). On the host it runs in MODEL_DIR with the agent's environment
plus the variables; in a container, in the image's working directory. Exit code 0 is success;
anything else (or a signal) is ModelCommandFailed. Its stdout and stderr are one stream, logged
line by line by the agent; the last lines go into a failure's cause.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from instance_agent import process_group, systemd_scope
from instance_agent.activity import TaskLostError
from instance_agent.config import MODEL_ENTRY_POINT, RunSettings
from instance_agent.errors import ModelCommandFailed, ModelEntryPointMissing, ModelRunTimedOut
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
    cwd: Path | None = None


def container_name(run_name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in run_name)
    return f"instance-agent-{safe}"[:128]


def find_python(
    candidates: Sequence[str], which: Callable[[str], str | None] = shutil.which
) -> str | None:
    """The first candidate that is an executable file (a bare name: looked up on PATH)."""
    for candidate in candidates:
        if os.path.isabs(candidate):
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
        else:
            found = which(candidate)
            if found:
                return found
    return None


def python_env(
    candidates: Sequence[str],
    base_path: str,
    which: Callable[[str], str | None] = shutil.which,
) -> dict[str, str]:
    """MODEL_PYTHON, and PATH with an absolute candidate's directory first (a venv's bin/)."""
    python = find_python(candidates, which)
    if python is None:
        log.warning(
            "none of run.python_candidates (%s) exists: MODEL_PYTHON is not set",
            ", ".join(candidates),
        )
        return {}
    env = {"MODEL_PYTHON": python}
    if python in candidates and os.path.isabs(python):
        directory = os.path.dirname(python)
        env["PATH"] = os.pathsep.join(p for p in (directory, base_path) if p)
    log.info("MODEL_PYTHON=%s", python)
    return env


def host_args(run: RunSettings, model_dir: Path) -> list[str]:
    """The host command line: the shell string, the argument list, or the model's run.sh."""
    if run.shell_command is not None:
        return ["/bin/sh", "-c", run.shell_command]
    if run.command:
        return list(run.command)
    entry_point = model_dir / MODEL_ENTRY_POINT
    if not entry_point.is_file():
        raise ModelEntryPointMissing(
            f"no model command is set (run.command and run.shell_command are empty; Terraform's "
            f"model_command and model_shell_command) and the model has no {MODEL_ENTRY_POINT} at "
            f"its top ({entry_point}): publish the model folder with its {MODEL_ENTRY_POINT} "
            "(gpurun publish-model checks it), or set a command"
        )
    # Through sh: S3 keeps no file modes, so the copied run.sh is not executable.
    return ["/bin/sh", str(entry_point)]


def build_command(
    run: RunSettings,
    paths: RunPaths,
    *,
    which: Callable[[str], str | None] = shutil.which,
) -> ModelCommand:
    """The host command with the contract in its environment, or the `docker run` line."""
    if not run.container_image:
        env = {
            "MODEL_DIR": str(paths.model_dir),
            "OUTPUT_DIR": str(paths.output_dir),
            "TASK_INPUT": str(paths.task_input),
            "RUN_NAME": paths.run_name,
            **python_env(run.python_candidates, os.environ.get("PATH", ""), which),
        }
        return ModelCommand(host_args(run, paths.model_dir), env, None, cwd=paths.model_dir)
    name = container_name(paths.run_name)
    if run.shell_command is not None:
        container_command = ["sh", "-c", run.shell_command]
    else:
        container_command = list(run.command)
    args = [
        "docker",
        "run",
        "--rm",
        # Pulled at boot (container_image.py); a pull here would count in max_runtime_seconds.
        "--pull=never",
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
        *container_command,
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
    on_first_output: Callable[[float], None] | None = None,
) -> float:
    """Run to completion and return the seconds it took; raise on failure, timeout or cancel.

    The model leads a session (and process group) of its own and, with ``scope_unit``, runs in
    that transient systemd scope. However it ends, nothing it started outlives the run: the group
    gets SIGTERM, then SIGKILL ``kill_grace_seconds`` later, and the scope is stopped.
    ``cwd`` None runs it in ``command.cwd``; ``on_first_output`` gets the seconds from the start
    to the model's first line of output, once.
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
            cwd=cwd if cwd is not None else command.cwd,
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
    first_line = None
    if on_first_output is not None:
        report = on_first_output

        def first_line() -> None:
            report(time.monotonic() - started)

    output = OutputLines(process.stdout.fileno(), log, on_first_line=first_line)
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
            f"the model command {exit_text(process.returncode)} after {seconds:.1f} s"
        )
    log.info("model command succeeded in %.1f s", seconds)
    return seconds


def exit_text(returncode: int) -> str:
    """How the model ended, as Popen's returncode tells it (negative: killed by that signal)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


def _stop_container(name: str | None) -> None:
    # Killing the docker CLI does not stop its container: ask the daemon too.
    if name is None:
        return
    subprocess.run(["docker", "kill", name], capture_output=True, check=False, timeout=30)


def write_task_input(path: Path, task_input: Mapping[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(task_input, indent=2, sort_keys=True) + "\n", encoding="utf-8")
