"""The local instance supervisor: a machine per instance the emulator's EC2 runs.

A poll loop (every ``poll_seconds``) watches the project's instances in the emulator:

- a new instance in ``pending``/``running``: a fake IMDSv2 is started for it and the backend
  (``local_aws/machines.py``: the process backend by default, or the VM backend) boots a machine
  from the instance's user data, the launch template's cloud-config rendered by Terraform;
- a machine that powered itself off (``shutdown -h now`` on EC2, where the launch template's
  shutdown behaviour ``terminate`` ends the instance): the loop terminates the instance in the
  emulator;
- an instance ``shutting-down``/``terminated`` in the emulator: the machine is powered off at
  once (the machine is gone, nothing gets to clean up).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from local_aws.imds import FakeImds, describe_from_ec2
from local_aws.machines import BootRequest, Machine, MachineBackend
from local_aws.process_machine import ProcessBackend
from local_aws.server import LocalAws
from local_aws.user_data import UserDataError, decode_user_data

_LIVE_STATES = frozenset({"pending", "running"})
_GONE_STATES = frozenset({"shutting-down", "terminated", "stopping", "stopped"})


@dataclasses.dataclass(frozen=True)
class InstanceEvent:
    """One moment of an instance's life, for the timeline (``at`` is ``time.time()``)."""

    instance_id: str
    name: str
    at: float
    detail: str = ""


@dataclasses.dataclass
class LocalInstance:
    """One emulated instance: its IMDS and the machine a backend booted for it."""

    instance_id: str
    imds: FakeImds | None = None
    machine: Machine | None = None
    gone: bool = False
    shutdown_handled: bool = False


class InstanceSupervisor:
    """Boots a machine for every project instance of the emulator; see the module doc."""

    def __init__(
        self,
        aws: LocalAws,
        *,
        project: str,
        work_dir: Path,
        backend: MachineBackend | None = None,
        poll_seconds: float = 0.2,
    ) -> None:
        self.aws = aws
        self.project = project
        self.work_dir = Path(work_dir)
        self.backend: MachineBackend = backend or ProcessBackend()
        self.poll_seconds = poll_seconds
        self.instances: dict[str, LocalInstance] = {}
        self.events: list[InstanceEvent] = []
        self._ec2 = aws.client("ec2")
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
        """Stop polling, power off every machine still running, stop every fake IMDS."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            for instance in self.instances.values():
                if instance.machine is not None:
                    instance.machine.power_off("supervisor stopped")
                self._stop_imds(instance)
        self.backend.close()
        if self._error is not None:
            raise RuntimeError(f"the instance supervisor failed: {self._error}") from self._error

    def __enter__(self) -> InstanceSupervisor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def error(self) -> BaseException | None:
        """What stopped the loop, if anything did."""
        return self._error

    # -- queries ---------------------------------------------------------------------------

    def events_of(self, instance_id: str) -> list[InstanceEvent]:
        with self._lock:
            return [event for event in self.events if event.instance_id == instance_id]

    def machine_of(self, instance_id: str) -> Machine | None:
        with self._lock:
            instance = self.instances.get(instance_id)
        return instance.machine if instance is not None else None

    def live_pids(self) -> set[int]:
        """Host processes of every machine that are still alive."""
        with self._lock:
            machines = [i.machine for i in self.instances.values() if i.machine is not None]
        return set().union(*(machine.live_pids() for machine in machines))

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
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
        """One pass: boot new instances, end gone ones, terminate the powered-off ones."""
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
                if instance.machine is not None:
                    instance.machine.power_off(f"instance {state} in the emulator")
                self._stop_imds(instance)
        with self._lock:
            instances = list(self.instances.values())
        for instance in instances:
            machine = instance.machine
            if machine is None or instance.gone or instance.shutdown_handled:
                continue
            if machine.poll():
                self._terminate(instance)

    def _boot(self, described: dict[str, Any]) -> None:
        instance_id = described["InstanceId"]
        instance = LocalInstance(instance_id=instance_id)
        with self._lock:
            self.instances[instance_id] = instance
        self._record(instance_id, "launched", described.get("InstanceType", ""))
        try:
            user_data = decode_user_data(
                self._ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")[
                    "UserData"
                ].get("Value", "")
            )
        except UserDataError as exc:
            # cloud-init would find nothing to run; the bootstrap's shutdown never comes. Locally
            # the instance is ended at once, as the failure it is.
            self._record(instance_id, "boot_failed", str(exc))
            self._terminate(instance)
            return
        instance.imds = FakeImds(
            describe_from_ec2(self._ec2, instance_id),
            region=self.aws.region,
            account_id=self.aws.account_id,
            tags_enabled=self._tags_enabled,
            instance_profile_arn=self._instance_profile_arn,
        ).start()
        request = BootRequest(
            instance_id=instance_id,
            described=described,
            user_data=user_data,
            work_dir=self.work_dir / instance_id,
            imds=instance.imds,
            aws=self.aws,
            record=functools.partial(self._record, instance_id),
        )
        instance.machine = self.backend.boot(request)

    def _launch_template_data(self, described: dict[str, Any]) -> dict[str, Any]:
        """The LaunchTemplateData the instance was launched from ({} without a template)."""
        tags = {tag["Key"]: tag["Value"] for tag in described.get("Tags", [])}
        template_id = tags.get("aws:ec2launchtemplate:id")
        if not template_id:
            return {}
        versions = self._ec2.describe_launch_template_versions(
            LaunchTemplateId=template_id,
            Versions=[tags.get("aws:ec2launchtemplate:version", "$Default")],
        )["LaunchTemplateVersions"]
        data: dict[str, Any] = versions[0]["LaunchTemplateData"] if versions else {}
        return data

    def _tags_enabled(self, described: dict[str, Any]) -> bool:
        # moto does not copy the launch template's MetadataOptions onto the instance; AWS does.
        if described.get("MetadataOptions", {}).get("InstanceMetadataTags") == "enabled":
            return True
        options = self._launch_template_data(described).get("MetadataOptions", {})
        return bool(options.get("InstanceMetadataTags") == "enabled")

    def _instance_profile_arn(self, described: dict[str, Any]) -> str | None:
        # Nor its IamInstanceProfile: IMDS serves that profile's credentials on AWS.
        arn = described.get("IamInstanceProfile", {}).get("Arn")
        if arn:
            return str(arn)
        profile = self._launch_template_data(described).get("IamInstanceProfile", {})
        return str(profile["Arn"]) if profile.get("Arn") else None

    def _terminate(self, instance: LocalInstance) -> None:
        """The machine powered itself off: with shutdown behaviour terminate, EC2 ends it."""
        instance.shutdown_handled = True
        self._record(instance.instance_id, "shutdown_requested")
        with contextlib.suppress(self._ec2.exceptions.ClientError):
            self._ec2.terminate_instances(InstanceIds=[instance.instance_id])

    @staticmethod
    def _stop_imds(instance: LocalInstance) -> None:
        if instance.imds is not None:
            instance.imds.stop()
            instance.imds = None


@contextlib.contextmanager
def supervised_instances(
    aws: LocalAws, *, project: str, work_dir: Path, **kwargs: Any
) -> Iterator[InstanceSupervisor]:
    """An InstanceSupervisor that is stopped (every machine powered off) however it ends."""
    supervisor = InstanceSupervisor(aws, project=project, work_dir=work_dir, **kwargs).start()
    try:
        yield supervisor
    finally:
        supervisor.stop()
