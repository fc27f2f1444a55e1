"""What a local instance runs on: the seam between the instance supervisor and a machine.

The supervisor (``local_aws/supervisor.py``) watches the emulator's EC2 and, for every project
instance that appears, asks a ``MachineBackend`` to boot a machine from the instance's user data.
Two backends exist: the process backend (the real agent as a host process on a fake sysfs, fast,
used by the matrix) and the VM backend (a real Linux guest under QEMU booted with the same user
data, used by ``make vm-test`` and ``make demo ARGS=--vm``). The supervisor does the rest the
same way for both: it terminates the instance in EC2 when the machine powered itself off
(``shutdown -h`` with shutdown behaviour ``terminate``), and pulls the plug on the machine when
EC2 says the instance is shutting down or terminated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from local_aws.imds import FakeImds
from local_aws.server import LocalAws

RecordEvent = Callable[[str, str], None]
"""``record(name, detail)``: one moment of the instance's life, for the timeline."""


@dataclasses.dataclass(frozen=True)
class BootRequest:
    """Everything a backend gets to boot one instance."""

    instance_id: str
    described: Mapping[str, Any]
    """The instance's DescribeInstances entry (type, placement, tags, launch time)."""
    user_data: str
    """The launch template's user data, decoded: the cloud-config text Terraform rendered."""
    work_dir: Path
    """This instance's own directory (logs, disks, seeds); the backend owns what is inside."""
    imds: FakeImds
    """This instance's IMDSv2, already started on 127.0.0.1 (``imds.endpoint``)."""
    aws: LocalAws
    record: RecordEvent


class Machine(Protocol):
    """One booted local instance."""

    @property
    def log_path(self) -> Path:
        """The agent's log (process backend) or the serial console (VM backend)."""
        ...

    def poll(self) -> bool:
        """Called at every supervisor tick; True once the machine has powered itself off."""
        ...

    def power_off(self, reason: str) -> None:
        """EC2 says the instance is gone: stop the machine now, nothing gets to clean up."""
        ...

    def live_pids(self) -> set[int]:
        """Host processes of this machine still alive (none once it is powered off)."""
        ...


class MachineBackend(Protocol):
    """Boots machines for the supervisor."""

    def boot(self, request: BootRequest) -> Machine:
        """Start the machine; raise nothing for a bad user data: record it and power off."""
        ...

    def close(self) -> None:
        """Release what the backend shares between machines (caches stay on disk)."""
        ...


class IdleMachine:
    """A booted instance whose image runs nothing: no agent, never powers itself off."""

    def __init__(self, request: BootRequest) -> None:
        self._log = request.work_dir / "console.log"
        request.work_dir.mkdir(parents=True, exist_ok=True)
        self._log.write_text("an idle machine: nothing runs at boot\n", encoding="utf-8")
        self._powered_off = False

    @property
    def log_path(self) -> Path:
        return self._log

    def poll(self) -> bool:
        return False

    def power_off(self, reason: str) -> None:
        self._powered_off = True

    def live_pids(self) -> set[int]:
        return set()


class IdleBackend:
    """Instances that run nothing, for tests that play the agent through the activity API."""

    def boot(self, request: BootRequest) -> IdleMachine:
        request.record("booted_idle", "no agent on this machine")
        return IdleMachine(request)

    def close(self) -> None:
        """Nothing is shared between idle machines."""
