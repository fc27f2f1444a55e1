"""One case of the real-boot suite: a weekly run whose instance is a QEMU guest.

Everything but the machine is what ``make demo`` runs: the local AWS, the deployment from
Terraform's declarations, a real Step Functions execution, the launcher's real handler, the
nets. The machine is ``local_aws.vm``'s: the cached Debian image booting the launch template's
user data, the agent arriving as the artifact ``make build`` makes, downloaded from the local S3
by the user data's own bootstrap.

A case waits for events only: QEMU's exit (bounded: a guest that does not power off by itself
in time is killed, and the case fails with its serial console), the execution's end, the
instance's termination. Its timeline goes to ``.vm/<case>/timeline.json``.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local_aws.deployment import REPO_ROOT, LocalSettings
from local_aws.local_run import LocalRun, Nets, RunOutcome
from local_aws.server import LocalAws
from local_aws.vm.artifact import publish_artifact
from local_aws.vm.console import ConsoleLine
from local_aws.vm.image import GuestImage
from local_aws.vm.qemu import QemuMachine, VmBackend, VmOptions
from local_aws.vm.seed import VM_MODEL_COMMAND
from local_aws.vm.timeline import TimelineEntry, timeline_table, vm_timeline, write_timeline

REPORTS_DIR = REPO_ROOT / ".vm"
# Settings every case shares: lifetimes long enough for a TCG boot (minutes), short enough to
# end a stuck case well inside the suite's budget.
BASE_SETTINGS: dict[str, Any] = {
    "model_command": VM_MODEL_COMMAND,
    "max_instance_lifetime_minutes": 60,
    "max_runtime_seconds": 600,
    "execution_timeout_seconds": 1800,
}

_HANGING_AGENT = b'''"""A stand-in agent (tests/vm) that hangs forever: never polls, never exits."""
import time

print("instance-agent stand-in: hanging forever, only the hard deadline can end this", flush=True)
while True:
    time.sleep(3600)
'''


@dataclasses.dataclass(frozen=True)
class VmCase:
    name: str
    expected_status: str
    expected_error: str | None
    power_off_within_seconds: float
    """QEMU must have exited by itself this long after it started."""
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    vm: VmOptions = dataclasses.field(default_factory=VmOptions)
    nets: Nets = dataclasses.field(default_factory=Nets)
    artifact: str = "real"
    """"real" (make build's), "missing" (never published), "hanging" (an agent that hangs)."""


@dataclasses.dataclass
class CaseResult:
    case: VmCase
    outcome: RunOutcome
    machine: QemuMachine
    timeline: list[TimelineEntry]
    seconds: float

    @property
    def console(self) -> list[ConsoleLine]:
        return self.machine.console_lines()

    @property
    def milestones(self) -> dict[str, ConsoleLine]:
        return self.machine.milestones()

    def console_text(self) -> str:
        return "\n".join(line.text for line in self.console)

    def console_tail(self, lines: int = 80) -> str:
        tail = "\n".join(line.text for line in self.console[-lines:])
        return f"serial console ({self.machine.log_path}), last {lines} lines:\n{tail}"


def build_hanging_artifact(destination: Path) -> Path:
    """An artifact the bootstrap accepts (site/instance_agent/) whose agent hangs forever."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(destination, "w:gz") as tar:
        for name, data in (
            ("site/instance_agent/__init__.py", b""),
            ("site/instance_agent/__main__.py", _HANGING_AGENT),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return destination


def run_case(
    case: VmCase,
    *,
    aws: LocalAws,
    image: GuestImage,
    artifacts: Mapping[str, Path],
    model_dir: Path,
) -> CaseResult:
    """Run the case to its end; every part it started is stopped on return."""
    work_dir = REPORTS_DIR / case.name
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    settings = LocalSettings(**{**BASE_SETTINGS, **case.settings})
    backend = VmBackend(case.vm, image=image)
    started = time.monotonic()
    with LocalRun(
        aws,
        settings=settings,
        work_dir=work_dir,
        model_dir=model_dir,
        backend=backend,
        nets=case.nets,
    ) as run:
        if case.artifact != "missing":
            publish_artifact(aws, artifacts[case.artifact], run.deployed.bucket_name)
        execution_arn = run.start_execution(f"vm-{case.name}-{time.strftime('%H%M%S')}")
        run.instances.wait_for(lambda: bool(backend.machines), 120, "the launch of a VM")
        machine = backend.machines[0]
        if not machine.wait_for_exit(case.power_off_within_seconds):
            machine.kill(f"no power-off within {case.power_off_within_seconds} s of the boot")
        run.wait_for_end(execution_arn, timeout=600)
        run.wait_for_instances_terminated(execution_arn, timeout=120)
        outcome = run.outcome(execution_arn)
    seconds = time.monotonic() - started
    timeline = vm_timeline(
        execution_started_at=outcome.started_at,
        instance_events=outcome.instance_events,
        milestones=machine.milestones(),
    )
    summary = {
        "status": outcome.status,
        "error": outcome.error,
        "qemu_exit_code": machine.exit_code,
        "killed_by_harness": machine.killed,
        "seconds": round(seconds, 1),
        "agent_timings": dict(outcome.record_timings or {}),
    }
    write_timeline(work_dir, case.name, timeline, summary)
    print(timeline_table(f"{case.name}: {outcome.status} {outcome.error or ''}", timeline))
    return CaseResult(case, outcome, machine, timeline, seconds)
