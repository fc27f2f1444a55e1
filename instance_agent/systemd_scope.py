"""A transient systemd scope around the model: the cgroup that nothing it starts can leave.

A process group holds what the model starts, but a child that calls ``setsid()`` (a daemon, a
double fork) leaves it. A cgroup cannot be left that way: under systemd the model runs in a
scope of its own (``systemd-run --scope``, which registers itself as the scope's process and
then execs the model, so the model keeps its pid, its environment and the agent's output pipe),
and stopping the scope once the model has exited ends every process in it. The scope is bound to
the agent's own unit (``BindsTo=``): if the agent dies, systemd stops the scope too.

Without systemd (the tests, the local emulator, an old systemd) the process group is all there
is; ``scope_available()`` says which applies.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger("instance_agent.model")

# sd_booted(3): this directory exists only when systemd is PID 1.
SYSTEMD_RUNTIME_DIR = Path("/run/systemd/system")
# `systemd-run -p <dependency>=...` on a scope and `--collect` (Ubuntu 20.04 has 245, Amazon
# Linux 2023 252; Amazon Linux 2's 219 falls back to the process group).
MIN_SYSTEMD_VERSION = 240
# systemctl's exit status for "unit not loaded": a scope whose last process has exited is gone.
_UNIT_NOT_LOADED = 5
_SCOPE_STOP_SLACK_SECONDS = 30


def systemd_run_version() -> int | None:
    """The version of ``systemd-run`` on PATH, or None when there is none that answers."""
    program = shutil.which("systemd-run")
    if program is None:
        return None
    try:
        result = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.match(r"systemd (\d+)", result.stdout)
    return int(found.group(1)) if found else None


def scope_available(
    environ: Mapping[str, str] | None = None,
    *,
    runtime_dir: Path = SYSTEMD_RUNTIME_DIR,
    euid: int | None = None,
    version: Callable[[], int | None] = systemd_run_version,
) -> bool:
    """True when the agent is a systemd system service that may start scopes.

    That is: systemd is PID 1, the agent runs as a unit of it (systemd sets ``INVOCATION_ID``
    for every unit it starts), as root (the system manager starts scopes for root only), and
    ``systemd-run`` is at least ``MIN_SYSTEMD_VERSION``.
    """
    environ = os.environ if environ is None else environ
    if not runtime_dir.is_dir() or not environ.get("INVOCATION_ID"):
        return False
    if (os.geteuid() if euid is None else euid) != 0:
        return False
    found = version()
    if found is None or found < MIN_SYSTEMD_VERSION:
        log.info(
            "systemd-run %s is older than %d or missing: the model runs in a process group only",
            found,
            MIN_SYSTEMD_VERSION,
        )
        return False
    return True


def scope_name(run_name: str) -> str:
    """The scope unit of a run: ``instance-agent-model-<run name>.scope``, in unit-name
    characters."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "_.-") else "-" for c in run_name)
    return f"instance-agent-model-{safe}"[:200] + ".scope"


def own_service(cgroup_text: str) -> str | None:
    """The ``.service`` unit whose cgroup a process is in, from its ``/proc/<pid>/cgroup``."""
    paths = {}
    for line in cgroup_text.splitlines():
        _, controllers, path = line.split(":", 2)
        paths[controllers] = path
    # cgroup v2 (and the unified line of a hybrid setup), else v1's named systemd hierarchy.
    for key in ("", "name=systemd"):
        unit = paths.get(key, "").rstrip("/").rsplit("/", 1)[-1]
        if unit.endswith(".service"):
            return unit
    return None


def _agent_service() -> str | None:
    try:
        return own_service(Path("/proc/self/cgroup").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def scope_command(
    unit: str,
    args: Sequence[str],
    *,
    stop_timeout_seconds: float,
    bound_to: str | None,
    description: str,
) -> list[str]:
    """``args`` run inside the transient scope ``unit``; an argv list, no shell involved.

    Stopping the scope SIGTERMs every process in it and SIGKILLs what is left
    ``stop_timeout_seconds`` later; ``--collect`` unloads it even when it ends failed.
    """
    command = [
        "systemd-run",
        "--scope",
        "--collect",
        "--quiet",
        f"--unit={unit}",
        f"--description={description}",
        "--property=KillMode=control-group",
        # In milliseconds, at least one: TimeoutStopSec=0 would mean "wait forever".
        f"--property=TimeoutStopSec={max(1, round(stop_timeout_seconds * 1000))}ms",
    ]
    if bound_to is not None:
        command.append(f"--property=BindsTo={bound_to}")
    return [*command, "--", *args]


def model_scope_command(unit: str, args: Sequence[str], *, grace_seconds: float) -> list[str]:
    """``scope_command`` for the model of this agent, bound to the agent's own service."""
    return scope_command(
        unit,
        args,
        stop_timeout_seconds=grace_seconds,
        bound_to=_agent_service(),
        description="Model command of the instance agent's run",
    )


def stop_scope(unit: str, grace_seconds: float) -> None:
    """Stop ``unit``, ending whatever is still in it; a scope already gone is fine."""
    try:
        result = subprocess.run(
            ["systemctl", "stop", unit],
            capture_output=True,
            text=True,
            timeout=grace_seconds + _SCOPE_STOP_SLACK_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.error(  # noqa: TRY400 - the reason is in the line; a traceback adds nothing
            "could not stop %s (%s): processes in it may still run", unit, exc
        )
        return
    if result.returncode not in (0, _UNIT_NOT_LOADED):
        log.error("systemctl stop %s exited %d: %s", unit, result.returncode, result.stderr.strip())
