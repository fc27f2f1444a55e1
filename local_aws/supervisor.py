"""The local instance: the real agent as a process per instance the emulator's EC2 runs.

A poll loop (every ``poll_seconds``) watches the project's instances in the emulator:

- a new instance in ``pending``/``running``: its user data (base64 cloud-config, the launch
  template's, rendered by Terraform's template) is decoded, the agent configuration that
  ``write_files`` would write to ``/etc/instance-agent/config.json`` is taken from it and adapted
  only where a laptop must differ (see ``adapt_agent_config``), a fake IMDS is started for it, and
  ``python -m instance_agent run --config <file>`` runs in its own process group, its output in
  ``<instance dir>/agent.log``;
- the agent's ``shutdown_command`` (``shutdown -h now`` on EC2, where the launch template's
  shutdown behaviour ``terminate`` ends the instance) creates a file the loop sees; the loop then
  terminates the instance in the emulator;
- an instance ``shutting-down``/``terminated`` in the emulator: its process group is killed
  (SIGKILL: the machine is gone, nothing gets to clean up).

The NVMe instance store is a directory. The agent's own discovery, mkfs and mount code runs
unchanged: a fake sysfs tree names an "Amazon EC2 NVMe Instance Storage" controller, and
``mkfs.xfs``/``mount``/``mdadm`` shims first on the agent's PATH check their arguments, then
"mount" by creating the mount-point directory and adding a line to the agent's mount table (its
``storage.mounts_file``). Shims rather than a loop device because a loop device needs root and
``mkfs.xfs``, which neither a fresh laptop nor this CI image has.
"""

from __future__ import annotations

import base64
import binascii
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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import yaml  # type: ignore[import-untyped]  # no stubs pinned; safe_load only

from local_aws import process_tree
from local_aws.imds import FakeImds, describe_from_ec2
from local_aws.server import LocalAws

AGENT_CONFIG_PATH = "/etc/instance-agent/config.json"
INSTANCE_STORE_MODEL = "Amazon EC2 NVMe Instance Storage"
EBS_MODEL = "Amazon Elastic Block Store"
REPO_ROOT = Path(__file__).resolve().parent.parent
# The embedded demo model's scorer (local_aws/demo_model/score.py) in place of the GPU model.
DEMO_MODEL_COMMAND = (sys.executable, "-m", "local_aws.demo_model.score")

_LIVE_STATES = frozenset({"pending", "running"})
_GONE_STATES = frozenset({"shutting-down", "terminated", "stopping", "stopped"})


class UserDataError(ValueError):
    """The instance's user data does not carry the agent configuration the agent needs."""


class KillPoint(enum.Enum):
    """When the supervisor kills the agent on purpose (the failure matrix's knobs)."""

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
    kill_agent: KillPoint | None = None
    echo_output: bool = False
    """Also copy the agent's output to this process's stderr, prefixed with the instance id."""


@dataclasses.dataclass(frozen=True)
class InstanceEvent:
    """One moment of an instance's life, for the timeline (``at`` is ``time.time()``)."""

    instance_id: str
    name: str
    at: float
    detail: str = ""


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
        """The instance's /proc/uptime: seconds since launch, kept current by the supervisor."""
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
    def log(self) -> Path:
        return self.root / "agent.log"


def agent_config_from_user_data(user_data_b64: str) -> dict[str, Any]:
    """The JSON the user data's ``write_files`` writes to /etc/instance-agent/config.json."""
    try:
        text = base64.b64decode(user_data_b64, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise UserDataError(f"UserData: not base64 of UTF-8 text ({exc})") from exc
    if not text.startswith("#cloud-config"):
        raise UserDataError("UserData: not a cloud-config document (no '#cloud-config' first line)")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserDataError(f"UserData: cloud-config is not valid YAML: {exc}") from exc
    files = document.get("write_files") if isinstance(document, dict) else None
    if not isinstance(files, list):
        raise UserDataError("UserData: cloud-config has no write_files list")
    for entry in files:
        if not isinstance(entry, dict) or entry.get("path") != AGENT_CONFIG_PATH:
            continue
        content = str(entry.get("content", ""))
        encoding = entry.get("encoding", "text/plain")
        if encoding in ("b64", "base64"):
            content = base64.b64decode(content).decode("utf-8")
        elif encoding != "text/plain":
            raise UserDataError(
                f"UserData: write_files[{AGENT_CONFIG_PATH}].encoding {encoding!r} is not "
                "supported here (use b64 or plain text)"
            )
        try:
            config: Any = json.loads(content)
        except json.JSONDecodeError as exc:
            raise UserDataError(f"UserData: {AGENT_CONFIG_PATH} is not valid JSON: {exc}") from exc
        if not isinstance(config, dict):
            raise UserDataError(f"UserData: {AGENT_CONFIG_PATH} is not a JSON object")
        return config
    raise UserDataError(f"UserData: write_files has no entry for {AGENT_CONFIG_PATH}")


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
        # `shutdown -h now` with shutdown behaviour `terminate`: here, ask the supervisor.
        "shutdown_command": ["touch", str(paths.shutdown_request)],
        # The run metrics stay with the instance; its uptime counts from its launch, not the host's.
        "metrics": {"file": str(paths.metrics_file), "uptime_file": str(paths.uptime_file)},
    }
    if options.model_command is not None:
        local["run"] = {"command": list(options.model_command)}
    return deep_merge(deep_merge(config, local), options.config_overrides)


_SHIM_HEADER = """#!/bin/sh
# Local stand-in for {name} (local_aws/supervisor.py): the instance store is a directory.
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
    }
    for name, body in shims.items():
        shim = paths.shim_bin / name
        shim.write_text(_SHIM_HEADER.format(name=name) + body, encoding="utf-8")
        shim.chmod(0o755)


@dataclasses.dataclass
class LocalInstance:
    """One emulated instance and its agent process."""

    instance_id: str
    paths: InstancePaths
    imds: FakeImds | None = None
    process: subprocess.Popen[bytes] | None = None
    execution_arn: str | None = None
    kill_pending: KillPoint | None = None
    gone: bool = False
    exit_code: int | None = None
    echo_thread: threading.Thread | None = None
    # Every process seen below the agent (the model runs in a session of its own): killed with
    # the instance even if the agent has already exited.
    known_pids: set[int] = dataclasses.field(default_factory=set)
    launched_at: float = dataclasses.field(default_factory=time.monotonic)

    def write_uptime(self) -> None:
        """Refresh the fake /proc/uptime (atomically: the agent may be reading it)."""
        uptime = time.monotonic() - self.launched_at
        partial = self.paths.uptime_file.with_suffix(".partial")
        partial.write_text(f"{uptime:.2f} 0.00\n", encoding="utf-8")
        partial.replace(self.paths.uptime_file)


class InstanceSupervisor:
    """Runs the real agent for every project instance of the emulator; see the module doc."""

    def __init__(
        self,
        aws: LocalAws,
        *,
        project: str,
        work_dir: Path,
        options: InstanceOptions | None = None,
        poll_seconds: float = 0.2,
        agent_command: Sequence[str] = (sys.executable, "-m", "instance_agent", "run"),
    ) -> None:
        self.aws = aws
        self.project = project
        self.work_dir = Path(work_dir)
        self.options = options or InstanceOptions()
        self.poll_seconds = poll_seconds
        self.agent_command = list(agent_command)
        self.instances: dict[str, LocalInstance] = {}
        self.events: list[InstanceEvent] = []
        self._ec2 = aws.client("ec2")
        self._sfn = aws.client("stepfunctions")
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> InstanceSupervisor:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name="instance-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling, kill every agent still running, stop every fake IMDS."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            for instance in self.instances.values():
                self._kill(instance, "supervisor stopped")
                self._reap(instance, wait=True)
                if instance.imds is not None:
                    instance.imds.stop()
                    instance.imds = None
        if self._error is not None:
            raise RuntimeError(f"the instance supervisor failed: {self._error}") from self._error

    def __enter__(self) -> InstanceSupervisor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- queries ---------------------------------------------------------------------------

    def events_of(self, instance_id: str) -> list[InstanceEvent]:
        with self._lock:
            return [event for event in self.events if event.instance_id == instance_id]

    def wait_for(self, predicate: Any, timeout: float, what: str) -> None:
        """Wait until ``predicate()`` holds; raise TimeoutError naming ``what`` otherwise."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if self._error is not None:
                raise RuntimeError(f"the instance supervisor failed: {self._error}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout} s")
            time.sleep(0.05)

    def wait_for_event(self, instance_id: str, name: str, timeout: float) -> InstanceEvent:
        found: list[InstanceEvent] = []

        def seen() -> bool:
            found[:] = [e for e in self.events_of(instance_id) if e.name == name]
            return bool(found)

        self.wait_for(seen, timeout, f"event {name!r} of {instance_id}")
        return found[0]

    # -- the loop --------------------------------------------------------------------------

    def _record(self, instance_id: str, name: str, detail: str = "") -> None:
        with self._lock:
            self.events.append(InstanceEvent(instance_id, name, time.time(), detail))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # surfaced by stop() and wait_for()
                self._error = exc
                return
            self._stop.wait(self.poll_seconds)

    def _project_instances(self) -> list[dict[str, Any]]:
        pages = self._ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "tag:Project", "Values": [self.project]}]
        )
        return [
            instance
            for page in pages
            for reservation in page["Reservations"]
            for instance in reservation["Instances"]
        ]

    def poll_once(self) -> None:
        """One pass: launch new instances, end gone ones, act on requests and knobs."""
        for described in self._project_instances():
            instance_id = described["InstanceId"]
            state = described["State"]["Name"]
            with self._lock:
                instance = self.instances.get(instance_id)
            if instance is None and state in _LIVE_STATES:
                self._boot(described)
            elif instance is not None and state in _GONE_STATES and not instance.gone:
                instance.gone = True
                self._record(instance_id, "terminated", state)
                self._kill(instance, f"instance {state} in the emulator")
                if instance.imds is not None:
                    instance.imds.stop()
                    instance.imds = None
        with self._lock:
            instances = list(self.instances.values())
        for instance in instances:
            if instance.process is not None and instance.process.poll() is None:
                instance.known_pids |= process_tree.descendants(instance.process.pid)
                instance.write_uptime()
            self._reap(instance, wait=False)
            if not instance.gone and instance.paths.shutdown_request.exists():
                self._terminate(instance)
            if instance.kill_pending is KillPoint.AFTER_TASK_TAKEN and self._task_taken(instance):
                instance.kill_pending = None
                self._kill(instance, "knob: kill the agent after it took the task")

    def _boot(self, described: dict[str, Any]) -> None:
        instance_id = described["InstanceId"]
        paths = InstancePaths(self.work_dir / instance_id)
        paths.root.mkdir(parents=True, exist_ok=True)
        tags = {tag["Key"]: tag["Value"] for tag in described.get("Tags", [])}
        instance = LocalInstance(
            instance_id=instance_id,
            paths=paths,
            execution_arn=tags.get("StepFunctionsExecution"),
            kill_pending=self.options.kill_agent,
        )
        with self._lock:
            self.instances[instance_id] = instance
        self._record(instance_id, "launched", described.get("InstanceType", ""))
        try:
            user_data = self._ec2.describe_instance_attribute(
                InstanceId=instance_id, Attribute="userData"
            )["UserData"].get("Value", "")
            terraform_config = agent_config_from_user_data(user_data)
        except UserDataError as exc:
            # On EC2 the bootstrap would fail and its `|| shutdown -h now` end the instance.
            self._record(instance_id, "boot_failed", str(exc))
            self._terminate(instance)
            return
        build_fake_machine(paths, instance_store=self.options.instance_store)
        instance.imds = FakeImds(
            describe_from_ec2(self._ec2, instance_id),
            region=self.aws.region,
            account_id=self.aws.account_id,
            tags_enabled=self._tags_enabled,
        ).start()
        config = adapt_agent_config(
            terraform_config,
            aws=self.aws,
            imds_endpoint=instance.imds.endpoint,
            paths=paths,
            options=self.options,
        )
        paths.config.parent.mkdir(parents=True, exist_ok=True)
        paths.config.write_text(json.dumps(config, indent=2), encoding="utf-8")
        paths.metrics_file.parent.mkdir(parents=True, exist_ok=True)
        instance.write_uptime()
        self._spawn(instance)

    def _tags_enabled(self, described: dict[str, Any]) -> bool:
        # moto does not copy the launch template's MetadataOptions onto the instance; AWS does.
        if described.get("MetadataOptions", {}).get("InstanceMetadataTags") == "enabled":
            return True
        tags = {tag["Key"]: tag["Value"] for tag in described.get("Tags", [])}
        template_id = tags.get("aws:ec2launchtemplate:id")
        if not template_id:
            return False
        versions = self._ec2.describe_launch_template_versions(
            LaunchTemplateId=template_id,
            Versions=[tags.get("aws:ec2launchtemplate:version", "$Default")],
        )["LaunchTemplateVersions"]
        options = versions[0]["LaunchTemplateData"].get("MetadataOptions", {}) if versions else {}
        return bool(options.get("InstanceMetadataTags") == "enabled")

    def _spawn(self, instance: LocalInstance) -> None:
        paths = instance.paths
        env = self.aws.child_env()
        path_entries = [str(paths.shim_bin), str(Path(sys.executable).parent), env.get("PATH", "")]
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
        instance.process = process
        self._record(instance.instance_id, "agent_started", f"pid {process.pid}")
        if self.options.echo_output and process.stdout is not None:
            instance.echo_thread = threading.Thread(
                target=_tee, args=(process.stdout, paths.log, instance.instance_id), daemon=True
            )
            instance.echo_thread.start()
        if instance.kill_pending is KillPoint.BEFORE_POLL:
            instance.kill_pending = None
            self._kill(instance, "knob: kill the agent before it polls")

    def _task_taken(self, instance: LocalInstance) -> bool:
        if instance.execution_arn is None or instance.process is None:
            return False
        try:
            history = self._sfn.get_execution_history(
                executionArn=instance.execution_arn, maxResults=1000
            )["events"]
        except self._sfn.exceptions.ExecutionDoesNotExist:
            return False
        return any(
            event["type"] == "ActivityStarted"
            and event.get("activityStartedEventDetails", {})
            .get("workerName", "")
            .endswith(instance.instance_id)
            for event in history
        )

    def _terminate(self, instance: LocalInstance) -> None:
        self._record(instance.instance_id, "shutdown_requested")
        with contextlib.suppress(self._ec2.exceptions.ClientError):
            self._ec2.terminate_instances(InstanceIds=[instance.instance_id])
        # Mark handled; the next poll sees the state change and kills the process group.
        with contextlib.suppress(FileNotFoundError):
            instance.paths.shutdown_request.rename(
                instance.paths.shutdown_request.with_suffix(".handled")
            )

    def _kill(self, instance: LocalInstance, reason: str) -> None:
        process = instance.process
        if process is None:
            return
        killed: set[int] = set()
        if process.poll() is None:
            killed = process_tree.kill_tree(process.pid)
        for pid in instance.known_pids - killed:
            if process_tree.is_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        if killed:
            instance.known_pids |= killed
            self._record(instance.instance_id, "agent_killed", reason)

    def _reap(self, instance: LocalInstance, *, wait: bool) -> None:
        process = instance.process
        if process is None or instance.exit_code is not None:
            return
        code = process.wait(timeout=10) if wait else process.poll()
        if code is None:
            return
        instance.exit_code = code
        if instance.echo_thread is not None:
            instance.echo_thread.join(timeout=5)
        self._record(instance.instance_id, "process_exited", f"exit code {code}")


def _tee(stream: IO[bytes], log_path: Path, instance_id: str) -> None:
    """Copy the agent's output to its log file and to stderr, each line prefixed."""
    with log_path.open("ab") as log:
        for line in iter(stream.readline, b""):
            log.write(line)
            log.flush()
            sys.stderr.write(f"[{instance_id}] {line.decode('utf-8', 'replace')}")
    stream.close()


@contextlib.contextmanager
def supervised_instances(
    aws: LocalAws, *, project: str, work_dir: Path, **kwargs: Any
) -> Iterator[InstanceSupervisor]:
    """An InstanceSupervisor that is stopped (every agent killed) however the block ends."""
    supervisor = InstanceSupervisor(aws, project=project, work_dir=work_dir, **kwargs).start()
    try:
        yield supervisor
    finally:
        supervisor.stop()
