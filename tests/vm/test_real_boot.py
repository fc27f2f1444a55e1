"""The instance side on a real Linux guest: the launch template's user data booting under QEMU.

Each case is a real execution of the state machine whose instance is a VM; each proves the
execution's end (status and error), that the guest powered itself off (QEMU exited by itself,
never killed by the harness) within its bound, and what the serial console showed.
``make test`` runs the happy path; ``make vm-test`` runs them all.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from local_aws.local_run import Nets
from local_aws.server import LocalAws
from local_aws.vm.image import GuestImage
from local_aws.vm.qemu import VmOptions
from local_aws.vm.seed import DLAMI_MOUNT_POINT, SeedOptions
from tests.vm.harness import CaseResult, VmCase, run_case

pytestmark = [pytest.mark.slow, pytest.mark.vm, pytest.mark.timeout(1800)]

# The model's own failure, and an agent SIGKILLed while its model runs (the model does it).
FAILING_MODEL = ["sh", "-c", "echo 'the model failed on purpose' >&2; exit 3"]
KILLING_MODEL = [
    "sh",
    "-c",
    "kill -KILL $(systemctl show --property MainPID --value instance-agent.service); sleep 600",
]


@pytest.fixture
def run(
    local_aws: LocalAws,
    guest_image: GuestImage,
    agent_artifacts: dict[str, Path],
    vm_model: Path,
) -> object:
    def run_one(case: VmCase) -> CaseResult:
        return run_case(
            case, aws=local_aws, image=guest_image, artifacts=agent_artifacts, model_dir=vm_model
        )

    return run_one


def assert_powered_off_by_itself(result: CaseResult) -> None:
    machine = result.machine
    assert not machine.killed, f"the harness had to kill the VM\n{result.console_tail()}"
    assert machine.exit_code == 0, f"QEMU exited with {machine.exit_code}\n{result.console_tail()}"
    assert "power_down" in result.milestones, f"no 'reboot: Power down'\n{result.console_tail()}"


def assert_ended(result: CaseResult, status: str, error: str | None) -> None:
    outcome = result.outcome
    assert (outcome.status, outcome.error) == (status, error), (
        f"{outcome.status} {outcome.error}: {outcome.cause}\n{result.console_tail()}"
    )
    assert outcome.all_instances_terminated, outcome.instance_states


def assert_console_shows(result: CaseResult, *milestones: str) -> None:
    missing = [name for name in milestones if name not in result.milestones]
    assert not missing, f"the console never showed {missing}\n{result.console_tail()}"


def at(result: CaseResult, milestone: str) -> float:
    return result.milestones[milestone].at


def test_happy_path_on_two_instance_store_disks(run) -> None:  # type: ignore[no-untyped-def]
    result = run(VmCase("happy-path", "SUCCEEDED", None, power_off_within_seconds=1200))
    assert_ended(result, "SUCCEEDED", None)
    assert_powered_off_by_itself(result)
    assert_console_shows(
        result,
        "deadline_armed",
        "agent_service_started",
        "instance_store_found",
        "raid_created",
        "mkfs",
        "mounted",
        "copy_done",
        "task_received",
        "run_succeeded",
        "results_uploaded",
        "agent_shutdown",
    )
    # Found by model string, not number: nvme0 is the EBS volume, the store is nvme1 + nvme2.
    assert "/dev/nvme1n1 /dev/nvme2n1" in result.milestones["instance_store_found"].text
    assert "mdadm --create /dev/md0" in result.milestones["raid_created"].text
    assert "mkfs.xfs -K" in result.milestones["mkfs"].text
    # The results, manifest last: every upload line comes before the manifest's summary line.
    text = result.console_text()
    uploads = [m.start() for m in re.finditer(r"uploaded runs/\S+ \(\d+ bytes\)", text)]
    assert len(uploads) >= 2
    assert max(uploads) < text.index("manifest s3://")
    assert result.outcome.manifest_present
    # The agent reports success only once the results (manifest last) are uploaded.
    order = ["deadline_armed", "mounted", "copy_done", "results_uploaded", "run_succeeded"]
    order += ["agent_shutdown", "power_down"]
    assert [at(result, m) for m in order] == sorted(at(result, m) for m in order)


@pytest.mark.vm_matrix
def test_a_failing_model_command_fails_the_run_and_powers_off(run) -> None:  # type: ignore[no-untyped-def]
    vm = VmOptions(seed=SeedOptions(config_overrides={"run": {"command": FAILING_MODEL}}))
    result = run(VmCase("model-fails", "FAILED", "ModelCommandFailed", 1200, vm=vm))
    assert_ended(result, "FAILED", "ModelCommandFailed")
    assert_powered_off_by_itself(result)
    assert_console_shows(result, "run_failed", "agent_shutdown")
    assert "the model failed on purpose" in result.console_text()


@pytest.mark.vm_matrix
def test_an_agent_killed_mid_run_powers_off_through_exec_stop_post(run) -> None:  # type: ignore[no-untyped-def]
    vm = VmOptions(seed=SeedOptions(config_overrides={"run": {"command": KILLING_MODEL}}))
    result = run(VmCase("agent-killed", "ABORTED", "InstanceLost", 1200, vm=vm))
    # The agent held the task: no one else has its token, so the instance-lost rule stops the
    # execution (functions/launcher/lost_instances.py).
    assert_ended(result, "ABORTED", "InstanceLost")
    assert_powered_off_by_itself(result)
    assert_console_shows(result, "task_received", "agent_killed", "exec_stop_post")
    # ExecStopPost's `shutdown -h +1`: the power-off comes a minute after the agent died.
    delay = at(result, "power_down") - at(result, "agent_killed")
    assert 55 <= delay <= 150, f"power-off {delay:.0f} s after the kill\n{result.console_tail()}"
    assert "agent_shutdown" not in result.milestones


@pytest.mark.vm_matrix
def test_a_bootstrap_that_cannot_download_the_agent_powers_off_at_once(run) -> None:  # type: ignore[no-untyped-def]
    result = run(VmCase("no-artifact", "FAILED", "InstanceLost", 900, artifact="missing"))
    assert_ended(result, "FAILED", "InstanceLost")
    assert_powered_off_by_itself(result)
    assert_console_shows(result, "artifact_download_failed", "bootstrap_failed")
    assert "agent_start" not in result.milestones
    assert at(result, "power_down") - at(result, "bootstrap_failed") < 60


@pytest.mark.vm_matrix
def test_the_hard_deadline_powers_off_an_agent_that_hangs_forever(run) -> None:  # type: ignore[no-untyped-def]
    minutes = 5  # the launcher refuses a shorter instance lifetime
    case = VmCase(
        "hard-deadline",
        "FAILED",
        "InstanceLost",
        power_off_within_seconds=1200,
        settings={"max_instance_lifetime_minutes": minutes, "max_runtime_seconds": 60},
        artifact="hanging",
        # Only the deadline may end this instance: the sweeper would terminate it first.
        nets=Nets(sweeper=False),
    )
    result = run(case)
    assert_ended(result, "FAILED", "InstanceLost")
    assert_powered_off_by_itself(result)
    assert_console_shows(result, "deadline_armed", "agent_service_started", "deadline_fired")
    assert "hanging forever" in result.console_text()
    fired = at(result, "deadline_fired") - at(result, "deadline_armed")
    assert minutes * 60 - 2 <= fired <= minutes * 60 + 15, f"fired after {fired:.1f} s"
    # Nothing but the deadline ended it: no ACPI press from a termination came first.
    events = [e.name for e in result.outcome.instance_events]
    assert "acpi_powerdown" not in events[: events.index("vm_powered_off")]


@pytest.mark.vm_matrix
def test_no_instance_store_fails_the_run_with_no_instance_store(run) -> None:  # type: ignore[no-untyped-def]
    vm = VmOptions(instance_store_disks=0)
    result = run(VmCase("no-instance-store", "FAILED", "NoInstanceStore", 1200, vm=vm))
    assert_ended(result, "FAILED", "NoInstanceStore")
    assert_powered_off_by_itself(result)
    assert_console_shows(result, "agent_shutdown")
    assert "mkfs" not in result.milestones


@pytest.mark.vm_matrix
def test_an_instance_store_the_image_mounted_is_reused(run) -> None:  # type: ignore[no-untyped-def]
    vm = VmOptions(instance_store_disks=1, seed=SeedOptions(dlami_mount=True))
    result = run(VmCase("dlami-mount", "SUCCEEDED", None, 1200, vm=vm))
    assert_ended(result, "SUCCEEDED", None)
    assert_powered_off_by_itself(result)
    assert_console_shows(result, "mounted", "copy_done", "run_succeeded", "results_uploaded")
    assert "reusing its mount" in result.milestones["mounted"].text
    assert DLAMI_MOUNT_POINT in result.milestones["mounted"].text
    assert "mkfs" not in result.milestones  # the agent formatted nothing
