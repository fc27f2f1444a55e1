"""Instance-store discovery over a fake sysfs tree, and the disk commands as argument lists."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from instance_agent.config import StorageSettings
from instance_agent.errors import NoInstanceStore
from instance_agent.storage import (
    find_instance_store_disks,
    is_mounted,
    mdadm_create_args,
    mkfs_args,
    mount_args,
    prepare_storage,
)

STORE = "Amazon EC2 NVMe Instance Storage"
EBS = "Amazon Elastic Block Store"


def add_controller(sysfs: Path, number: int, model: str, namespaces: int = 1) -> None:
    controller = sysfs / "class" / "nvme" / f"nvme{number}"
    controller.mkdir(parents=True)
    # sysfs pads the model string with spaces.
    (controller / "model").write_text(f"{model:<40}\n")
    for ns in range(1, namespaces + 1):
        (controller / f"nvme{number}n{ns}").mkdir()


class Recorder:
    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, args: Sequence[str]) -> None:
        self.commands.append(list(args))


def settings(tmp_path: Path, **overrides: object) -> StorageSettings:
    mounts = tmp_path / "mounts"
    if not mounts.exists():
        mounts.write_text("/dev/root / ext4 rw 0 0\n")
    values: dict[str, object] = {
        "sysfs_root": str(tmp_path / "sys"),
        "mounts_file": str(mounts),
        "mount_point": str(tmp_path / "mnt"),
        "fallback_directory": str(tmp_path / "fallback"),
    }
    values.update(overrides)
    return StorageSettings(**values)  # type: ignore[arg-type]


def test_no_nvme_class_means_no_disk(tmp_path: Path) -> None:
    assert find_instance_store_disks(tmp_path / "sys") == []


def test_an_ebs_only_instance_has_no_instance_store(tmp_path: Path) -> None:
    add_controller(tmp_path / "sys", 0, EBS)
    add_controller(tmp_path / "sys", 1, EBS)
    assert find_instance_store_disks(tmp_path / "sys") == []


def test_one_instance_store_disk_is_found_by_model_not_by_number(tmp_path: Path) -> None:
    add_controller(tmp_path / "sys", 0, STORE)
    add_controller(tmp_path / "sys", 1, EBS)  # the root volume enumerated second this boot
    assert find_instance_store_disks(tmp_path / "sys") == [Path("/dev/nvme0n1")]


def test_several_disks_are_listed_in_numeric_order(tmp_path: Path) -> None:
    add_controller(tmp_path / "sys", 0, EBS)
    for number in (10, 2, 1):
        add_controller(tmp_path / "sys", number, STORE)
    assert find_instance_store_disks(tmp_path / "sys") == [
        Path("/dev/nvme1n1"),
        Path("/dev/nvme2n1"),
        Path("/dev/nvme10n1"),
    ]


def test_the_raid_command_stripes_every_disk() -> None:
    disks = [Path("/dev/nvme1n1"), Path("/dev/nvme2n1")]
    assert mdadm_create_args("/dev/md0", disks) == [
        "mdadm",
        "--create",
        "/dev/md0",
        "--run",
        "--level=0",
        "--raid-devices=2",
        "/dev/nvme1n1",
        "/dev/nvme2n1",
    ]


def test_mkfs_skips_the_discard_pass() -> None:
    assert mkfs_args("/dev/md0", ["-f"]) == ["mkfs.xfs", "-K", "-f", "/dev/md0"]


def test_mount_passes_its_options() -> None:
    assert mount_args("/dev/md0", "/mnt/model-store", "noatime") == [
        "mount",
        "-o",
        "noatime",
        "/dev/md0",
        "/mnt/model-store",
    ]


def test_one_disk_is_formatted_and_mounted_without_raid(tmp_path: Path) -> None:
    add_controller(tmp_path / "sys", 1, STORE)
    run = Recorder()
    prepared = prepare_storage(settings(tmp_path), run)
    mnt = str(tmp_path / "mnt")
    assert run.commands == [
        ["mkfs.xfs", "-K", "-f", "/dev/nvme1n1"],
        ["mount", "-o", "noatime", "/dev/nvme1n1", mnt],
    ]
    assert prepared.formatted
    assert prepared.path == Path(mnt)


def test_several_disks_become_one_raid0_array(tmp_path: Path) -> None:
    add_controller(tmp_path / "sys", 1, STORE)
    add_controller(tmp_path / "sys", 2, STORE)
    run = Recorder()
    prepare_storage(settings(tmp_path), run)
    assert [c[0] for c in run.commands] == ["mdadm", "mkfs.xfs", "mount"]
    assert run.commands[1][-1] == "/dev/md0"


def test_an_already_mounted_store_is_not_formatted_again(tmp_path: Path) -> None:
    add_controller(tmp_path / "sys", 1, STORE)
    (tmp_path / "mounts").write_text(f"/dev/nvme1n1 {tmp_path / 'mnt'} xfs rw,noatime 0 0\n")
    run = Recorder()
    prepared = prepare_storage(settings(tmp_path), run)
    assert run.commands == []
    assert not prepared.formatted


def test_a_mount_point_with_a_space_is_recognised(tmp_path: Path) -> None:
    (tmp_path / "mounts").write_text("/dev/md0 /mnt/model\\040store xfs rw 0 0\n")
    assert is_mounted("/mnt/model store", tmp_path / "mounts")


def test_no_instance_store_fails_with_no_instance_store(tmp_path: Path) -> None:
    add_controller(tmp_path / "sys", 0, EBS)
    with pytest.raises(NoInstanceStore, match="allow_root_volume_fallback"):
        prepare_storage(settings(tmp_path), Recorder())


def test_the_fallback_uses_the_root_volume_with_a_loud_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = Recorder()
    prepared = prepare_storage(settings(tmp_path, allow_root_volume_fallback=True), run)
    assert prepared.on_root_volume
    assert prepared.path == tmp_path / "fallback"
    assert prepared.path.is_dir()
    assert run.commands == []
    assert "NO INSTANCE STORE" in caplog.text


def test_a_store_the_image_mounted_elsewhere_is_reused_not_formatted(tmp_path: Path) -> None:
    # The Deep Learning AMIs mount the instance store at /opt/dlami/nvme themselves.
    add_controller(tmp_path / "sys", 0, EBS)
    add_controller(tmp_path / "sys", 1, STORE)
    (tmp_path / "mounts").write_text(
        "/dev/nvme0n1p1 / ext4 rw 0 0\n/dev/nvme1n1 /opt/dlami/nvme xfs rw,noatime 0 0\n"
    )
    run = Recorder()
    prepared = prepare_storage(settings(tmp_path), run)
    assert run.commands == []
    assert prepared.path == Path("/opt/dlami/nvme")
    assert not prepared.formatted
    assert not prepared.on_root_volume


def test_a_mounted_partition_of_the_store_is_reused(tmp_path: Path) -> None:
    add_controller(tmp_path / "sys", 1, STORE)
    (tmp_path / "mounts").write_text("/dev/nvme1n1p1 /scratch xfs rw 0 0\n")
    assert prepare_storage(settings(tmp_path), Recorder()).path == Path("/scratch")


def test_a_mounted_array_built_on_the_store_is_reused(tmp_path: Path) -> None:
    add_controller(tmp_path / "sys", 1, STORE)
    add_controller(tmp_path / "sys", 2, STORE)
    for member in ("nvme1n1", "nvme2n1"):
        slaves = tmp_path / "sys" / "block" / "md127" / "slaves"
        slaves.mkdir(parents=True, exist_ok=True)
        (slaves / member).mkdir()
    (tmp_path / "mounts").write_text("/dev/md127 /opt/dlami/nvme xfs rw 0 0\n")
    run = Recorder()
    prepared = prepare_storage(settings(tmp_path), run)
    assert run.commands == []
    assert prepared.path == Path("/opt/dlami/nvme")


def test_a_mounted_ebs_volume_is_not_taken_for_the_store(tmp_path: Path) -> None:
    add_controller(tmp_path / "sys", 0, EBS)
    add_controller(tmp_path / "sys", 1, STORE)
    (tmp_path / "mounts").write_text("/dev/nvme0n1 /data xfs rw 0 0\n")
    run = Recorder()
    prepared = prepare_storage(settings(tmp_path), run)
    assert [c[0] for c in run.commands] == ["mkfs.xfs", "mount"]
    assert prepared.formatted
