"""The process backend: an instance is the real agent as a host process on a fake machine.

The agent configuration that the user data's ``write_files`` would write to
``/etc/instance-agent/config.json`` is taken from it and adapted only where a laptop must differ
(``adapt_agent_config``); ``python -m instance_agent run --config <file>`` runs in its own
process group, its output in ``<instance dir>/agent.log``.

The NVMe instance store is a directory. The agent's own discovery, mkfs and mount code runs
unchanged: a fake sysfs tree names an "Amazon EC2 NVMe Instance Storage" controller, and
``mkfs.xfs``/``mount``/``mdadm`` shims first on the agent's PATH check their arguments, then
"mount" by creating the mount-point directory and adding a line to the agent's mount table (its
``storage.mounts_file``); a ``shutdown`` shim records each call and powers the machine off.
Shims rather than a loop device because a loop device needs root and ``mkfs.xfs``, which
neither a fresh laptop nor this CI image has. The VM backend (``local_aws/vm/``) runs the same
user data on a real kernel instead.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import enum
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from instance_agent.storage import INSTANCE_STORE_MODEL
from local_aws import process_tree
from local_aws.log_shipping import LogShipper, collect_list
from local_aws.machines import BootRequest
from local_aws.server import LocalAws
from local_aws.user_data import UserDataError, agent_config_from_cloud_config
from run_contract.tags import EXECUTION_TAG

EBS_MODEL = "Amazon Elastic Block Store"
REPO_ROOT = Path(__file__).resolve().parent.parent
# The embedded demo model's scorer (local_aws/demo_model/score.py) in place of the GPU model.
DEMO_MODEL_COMMAND = (sys.executable, "-m", "local_aws.demo_model.score")
AGENT_COMMAND = (sys.executable, "-m", "instance_agent", "run")
# A SIGKILLed process exits when next scheduled: seconds at worst on a loaded machine.
KILL_WAIT_SECONDS = 30.0


class KillPoint(enum.Enum):
    """When the backend kills the agent on purpose (the failure matrix's knobs)."""

    BEFORE_POLL = "before_poll"
    """Right after the process starts: Python has not even imported boto3, let alone polled."""
    AFTER_TASK_TAKEN = "after_task_taken"
    """As soon as the emulator's execution history shows this instance's worker took the task."""


@dataclasses.dataclass(frozen=True)
class InstanceOptions:
    """Per-run knobs; the defaults run the agent exactly as Terraform configures it."""

    instance_store: bool = True
    """False: the fake sysfs names only the EBS root volume (the NoInstanceStore case)."""
    model_command: Sequence[str] | None = None
    """Replaces ``run.command`` (e.g. DEMO_MODEL_COMMAND); None keeps Terraform's."""
    config_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Deep-merged into the adapted agent configuration last
    (e.g. ``{"heartbeat_interval_seconds": 2}``)."""
    env_overrides: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Extra environment variables of the agent process."""
    extra_path: Sequence[str] = ()
    """Directories put on the agent's PATH after the machine's shims (e.g. a fake ``docker``)."""
    kill_agent: KillPoint | None = None
    power_off_after_agent_exit_seconds: float = 60.0
    """The unit's ExecStopPost (`shutdown -h +1`): an agent that exits without shutting the
    instance down itself (killed, crashed) powers the machine off this long after it died."""
    echo_output: bool = False
    """Also copy the agent's output to this process's stderr, prefixed with the instance id."""


@dataclasses.dataclass(frozen=True)
class InstancePaths:
    """Everything one local instance owns, under its own directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "etc" / "instance-agent" / "config.json"

    @property
    def sysfs(self) -> Path:
        return self.root / "sys"

    @property
    def mounts_file(self) -> Path:
        return self.root / "proc-mounts"

    @property
    def mount_point(self) -> Path:
        return self.root / "mnt" / "model-store"

    @property
    def metrics_file(self) -> Path:
        return self.root / "var" / "log" / "instance-agent-metrics.log"

    @property
    def uptime_file(self) -> Path:
        """The instance's /proc/uptime: seconds since launch, kept current by the machine."""
        return self.root / "proc-uptime"

    @property
    def fallback_directory(self) -> Path:
        return self.root / "var" / "lib" / "instance-agent"

    @property
    def shim_bin(self) -> Path:
        return self.root / "bin"

    @property
    def shutdown_request(self) -> Path:
        return self.root / "shutdown-requested"

    @property
    def shutdown_calls(self) -> Path:
        """One line per call of the agent's shutdown command, with its arguments."""
        return self.root / "shutdown-calls"

    @property
    def log(self) -> Path:
        return self.root / "agent.log"


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied; nested objects merge, everything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def adapt_agent_config(
    config: Mapping[str, Any],
    *,
    aws: LocalAws,
    imds_endpoint: str,
    paths: InstancePaths,
    options: InstanceOptions,
) -> dict[str, Any]:
    """Terraform's agent configuration with only what must differ on this machine changed."""
    local: dict[str, Any] = {
        "region": aws.region,
        "endpoint_url": aws.endpoint_url,
        "imds_endpoint": imds_endpoint,
        "storage": {
            "mount_point": str(paths.mount_point),
            "fallback_directory": str(paths.fallback_directory),
            "sysfs_root": str(paths.sysfs),
            "mounts_file": str(paths.mounts_file),
        },
        # The run metrics stay with the instance; its uptime counts from its launch, not the host's,
        # and it has no cloud-init (the host's status.json is not its boot).
        "metrics": {
            "file": str(paths.metrics_file),
            "uptime_file": str(paths.uptime_file),
            "cloud_init_status_file": str(paths.root / "run" / "cloud-init" / "status.json"),
        },
        # No daemons to stop nor directories to bind-mount on this machine.
        "container": {"data_roots": []},
    }
    if options.model_command is not None:
        local["run"] = {"command": list(options.model_command)}
    return deep_merge(deep_merge(config, local), options.config_overrides)


_SHIM_HEADER = """#!/bin/sh
# Local stand-in for {name} (local_aws/process_machine.py): the instance store is a directory.
echo "{name} (local shim): $*" >&2
"""

_MKFS_SHIM = """for last; do :; done
[ -n "$last" ] || {{ echo "mkfs.xfs: no device given" >&2; exit 2; }}
grep -qx "$last" "{devices}" || {{
  echo "mkfs.xfs: $last is not an instance-store device" >&2; exit 1; }}
"""

_MOUNT_SHIM = """[ "$1" = "-o" ] || {{ echo "mount: expected -o OPTIONS DEVICE DIR" >&2; exit 2; }}
options="$2"; device="$3"; target="$4"
[ -n "$target" ] || {{ echo "mount: expected -o OPTIONS DEVICE DIR" >&2; exit 2; }}
mkdir -p "$target" && echo "$device $target xfs rw,$options 0 0" >> "{mounts}"
"""

_MDADM_SHIM = """for arg; do case "$arg" in /dev/md*) echo "$arg" >> "{devices}";; esac; done
"""

# `shutdown -h now` with shutdown behaviour `terminate` ends the instance: here the machine
# records the call and has powered itself off, which the supervisor turns into the termination.
_SHUTDOWN_SHIM = """echo "$*" >> "{calls}"
touch "{request}"
"""


def build_fake_machine(paths: InstancePaths, *, instance_store: bool) -> None:
    """The fake sysfs tree, an empty mount table, and the storage command shims."""
    ebs = paths.sysfs / "class" / "nvme" / "nvme0"
    (ebs / "nvme0n1").mkdir(parents=True, exist_ok=True)
    (ebs / "model").write_text(EBS_MODEL + "\n", encoding="utf-8")
    devices = []
    if instance_store:
        store = paths.sysfs / "class" / "nvme" / "nvme1"
        (store / "nvme1n1").mkdir(parents=True, exist_ok=True)
        # sysfs pads the model to 40 characters; the agent must strip it.
        (store / "model").write_text(f"{INSTANCE_STORE_MODEL:<40}\n", encoding="utf-8")
        devices.append("/dev/nvme1n1")
    paths.mounts_file.write_text("", encoding="utf-8")
    devices_file = paths.root / "instance-store-devices"
    devices_file.write_text("".join(d + "\n" for d in devices), encoding="utf-8")
    paths.shim_bin.mkdir(parents=True, exist_ok=True)
    shims = {
        "mkfs.xfs": _MKFS_SHIM.format(devices=devices_file),
        "mount": _MOUNT_SHIM.format(mounts=paths.mounts_file),
        "mdadm": _MDADM_SHIM.format(devices=devices_file),
        "shutdown": _SHUTDOWN_SHIM.format(
            calls=paths.shutdown_calls, request=paths.shutdown_request
        ),
    }
    for name, body in shims.items():
        shim = paths.shim_bin / name
        shim.write_text(_SHIM_HEADER.format(name=name) + body, encoding="utf-8")
        shim.chmod(0o755)


class ProcessMachine:
    """One emulated instance: its fake machine and its agent process."""

    def __init__(
        self, request: BootRequest, options: InstanceOptions, agent_command: Sequence[str]
    ) -> None:
        self.request = request
        self.options = options
        self.agent_command = list(agent_command)
        self.paths = InstancePaths(request.work_dir)
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.kill_pending = options.kill_agent
        self.execution_arn = _tags(request.described).get(EXECUTION_TAG)
        self.boot_failed = False
        # Every process seen below the agent (the model runs in a session of its own): killed
        # with the instance even if the agent has already exited.
        self.known_pids: set[int] = set()
        self._launched_at = time.monotonic()
        self._echo_thread: threading.Thread | None = None
        self._sfn: Any = None
        self._exited_at: float | None = None
        self._stop_post_recorded = False
        self.log_shipper: LogShipper | None = None

    @property
    def log_path(self) -> Path:
        return self.paths.log

    # -- boot ------------------------------------------------------------------------------

    def boot(self) -> ProcessMachine:
        request = self.request
        self.paths.root.mkdir(parents=True, exist_ok=True)
        try:
            terraform_config = agent_config_from_cloud_config(request.user_data)
        except UserDataError as exc:
            # On EC2 the bootstrap would fail and its `|| shutdown -h now` end the instance.
            request.record("boot_failed", str(exc))
            self.boot_failed = True
            return self
        build_fake_machine(self.paths, instance_store=self.options.instance_store)
        config = adapt_agent_config(
            terraform_config,
            aws=request.aws,
            imds_endpoint=request.imds.endpoint,
            paths=self.paths,
            options=self.options,
        )
        self.paths.config.parent.mkdir(parents=True, exist_ok=True)
        self.paths.config.write_text(json.dumps(config, indent=2), encoding="utf-8")
        self.paths.metrics_file.parent.mkdir(parents=True, exist_ok=True)
        self._write_uptime()
        self._start_log_shipper(config)
        self._spawn()
        return self

    def _start_log_shipper(self, config: Mapping[str, Any]) -> None:
        """The CloudWatch agent the bootstrap starts on EC2: the agent's log and metrics files
        to the groups and streams of the user data's configuration."""
        try:
            entries = collect_list(self.request.user_data, self.request.instance_id)
        except UserDataError as exc:
            self.request.record("no_log_shipping", str(exc))
            return
        metrics_file = Path(str(config.get("metrics", {}).get("file", self.paths.metrics_file)))
        local_files = {
            "/var/log/instance-agent.log": self.paths.log,
            "/var/log/instance-agent-metrics.log": metrics_file,
        }
        self.log_shipper = LogShipper(self.request.aws, entries, local_files).start()

    def _spawn(self) -> None:
        paths = self.paths
        env = self.request.aws.child_env()
        path_entries = [
            str(paths.shim_bin),
            *self.options.extra_path,
            str(Path(sys.executable).parent),
            env.get("PATH", ""),
        ]
        env["PATH"] = os.pathsep.join(entry for entry in path_entries if entry)
        env["PYTHONPATH"] = os.pathsep.join(
            entry for entry in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if entry
        )
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.options.env_overrides)
        log = paths.log.open("ab")
        try:
            process = subprocess.Popen(
                [*self.agent_command, "--config", str(paths.config)],
                cwd=paths.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.options.echo_output else log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as a whole
            )
        finally:
            log.close()
        self.process = process
        self.request.record("agent_started", f"pid {process.pid}")
        if self.options.echo_output and process.stdout is not None:
            self._echo_thread = threading.Thread(
                target=_tee,
                args=(process.stdout, paths.log, self.request.instance_id),
                daemon=True,
            )
            self._echo_thread.start()
        if self.kill_pending is KillPoint.BEFORE_POLL:
            self.kill_pending = None
            self.kill_agent("knob: kill the agent before it polls")

    # -- Machine ---------------------------------------------------------------------------

    def poll(self) -> bool:
        process = self.process
        if process is not None and process.poll() is None:
            self.known_pids |= process_tree.descendants(process.pid)
            self._write_uptime()
        self._reap(wait=False)
        if self.kill_pending is KillPoint.AFTER_TASK_TAKEN and self._task_taken():
            self.kill_pending = None
            self.kill_agent("knob: kill the agent after it took the task")
        return (
            self.boot_failed or self.paths.shutdown_request.exists() or self._exec_stop_post_due()
        )

    def _exec_stop_post_due(self) -> bool:
        if self._exited_at is None:
            return False
        due = time.monotonic() - self._exited_at >= self.options.power_off_after_agent_exit_seconds
        if due and not self._stop_post_recorded:
            self._stop_post_recorded = True
            self.request.record("exec_stop_post", "the agent's unit stopped: powering off")
        return due

    def power_off(self, reason: str) -> None:
        self.kill_agent(reason)
        self._reap(wait=True)
        if self.log_shipper is not None:
            self.log_shipper.stop()

    def live_pids(self) -> set[int]:
        pids = set(self.known_pids)
        if self.process is not None:
            pids.add(self.process.pid)
        return {pid for pid in pids if process_tree.is_alive(pid)}

    # -- the agent process -----------------------------------------------------------------

    def kill_agent(self, reason: str) -> None:
        """SIGKILL the agent's process tree and every model process seen below it."""
        process = self.process
        if process is None:
            return
        killed: set[int] = set()
        if process.poll() is None:
            killed = process_tree.kill_tree(process.pid)
        for pid in self.known_pids - killed:
            if process_tree.is_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        if killed:
            self.known_pids |= killed
            # Like a power-off: the instance is off once every one of its processes is gone.
            survivors = process_tree.wait_gone(killed, KILL_WAIT_SECONDS)
            detail = f"{reason}; still running: {sorted(survivors)}" if survivors else reason
            self.request.record("agent_killed", detail)

    def _reap(self, *, wait: bool) -> None:
        process = self.process
        if process is None or self.exit_code is not None:
            return
        code = process.wait(timeout=10) if wait else process.poll()
        if code is None:
            return
        self.exit_code = code
        self._exited_at = time.monotonic()
        if self._echo_thread is not None:
            self._echo_thread.join(timeout=5)
        self.request.record("process_exited", f"exit code {code}")

    def _task_taken(self) -> bool:
        if self.execution_arn is None or self.process is None:
            return False
        if self._sfn is None:
            self._sfn = self.request.aws.client("stepfunctions")
        try:
            history = self._sfn.get_execution_history(
                executionArn=self.execution_arn, maxResults=1000
            )["events"]
        except self._sfn.exceptions.ExecutionDoesNotExist:
            return False
        return any(
            event["type"] == "ActivityStarted"
            and event.get("activityStartedEventDetails", {})
            .get("workerName", "")
            .endswith(self.request.instance_id)
            for event in history
        )

    def _write_uptime(self) -> None:
        """Refresh the fake /proc/uptime (atomically: the agent may be reading it)."""
        uptime = time.monotonic() - self._launched_at
        partial = self.paths.uptime_file.with_suffix(".partial")
        partial.write_text(f"{uptime:.2f} 0.00\n", encoding="utf-8")
        partial.replace(self.paths.uptime_file)


class ProcessBackend:
    """Boots a ProcessMachine per instance."""

    def __init__(
        self,
        options: InstanceOptions | None = None,
        *,
        agent_command: Sequence[str] = AGENT_COMMAND,
    ) -> None:
        self.options = options or InstanceOptions()
        self.agent_command = list(agent_command)

    def boot(self, request: BootRequest) -> ProcessMachine:
        return ProcessMachine(request, self.options, self.agent_command).boot()

    def close(self) -> None:
        """Nothing is shared between process machines."""


def _tags(described: Mapping[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in described.get("Tags", [])}


def _tee(stream: IO[bytes], log_path: Path, instance_id: str) -> None:
    """Copy the agent's output to its log file and to stderr, each line prefixed."""
    with log_path.open("ab") as log:
        for line in iter(stream.readline, b""):
            log.write(line)
            log.flush()
            sys.stderr.write(f"[{instance_id}] {line.decode('utf-8', 'replace')}")
    stream.close()
