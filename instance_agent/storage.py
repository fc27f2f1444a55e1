"""The local NVMe instance store: discovery, RAID0, mkfs, mount.

Disks are found by their model string under a sysfs root (tests point it at a fake tree), never
by device number: `nvme0n1` may be the EBS root volume on one boot and an instance-store disk on
the next. Every command is built as an argument list (tests assert them) and executed through
``run_command``, the one place the agent touches the disks.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from instance_agent.config import StorageSettings
from instance_agent.errors import AgentFailure, NoInstanceStore

log = logging.getLogger("instance_agent.storage")

INSTANCE_STORE_MODEL = "Amazon EC2 NVMe Instance Storage"
_CONTROLLER = re.compile(r"^nvme(\d+)$")
_NAMESPACE = re.compile(r"^nvme(\d+)n(\d+)$")

CommandRunner = Callable[[Sequence[str]], None]


class StorageCommandFailed(AgentFailure):
    """mdadm, mkfs or mount failed; reported as AgentError with the command and its output."""


def run_command(args: Sequence[str]) -> None:
    """Run one storage command; a non-zero exit raises with the command and its stderr."""
    log.info("running: %s", " ".join(args))
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, check=False)
    except OSError as exc:
        raise StorageCommandFailed(f"{args[0]}: cannot run it: {exc}") from exc
    if done.returncode != 0:
        raise StorageCommandFailed(
            f"{' '.join(args)} exited with code {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()[-2000:]}"
        )


def find_instance_store_disks(sysfs_root: Path) -> list[Path]:
    """The block devices (``/dev/nvmeNnM``) of every instance-store NVMe namespace."""
    nvme_class = sysfs_root / "class" / "nvme"
    if not nvme_class.is_dir():
        return []
    disks: list[tuple[int, int, str]] = []
    for controller in nvme_class.iterdir():
        if not _CONTROLLER.match(controller.name):
            continue
        try:
            model = (controller / "model").read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if model != INSTANCE_STORE_MODEL:
            continue
        for entry in controller.iterdir():
            match = _NAMESPACE.match(entry.name)
            if match:
                disks.append((int(match.group(1)), int(match.group(2)), entry.name))
    # Numeric order keeps the RAID member order stable and readable (nvme2n1 before nvme10n1).
    return [Path("/dev") / name for _, _, name in sorted(disks)]


def mdadm_create_args(raid_device: str, disks: Sequence[Path]) -> list[str]:
    """Stripe the disks into one RAID0 array; --run skips the interactive confirmation."""
    return [
        "mdadm",
        "--create",
        raid_device,
        "--run",
        "--level=0",
        f"--raid-devices={len(disks)}",
        *(str(disk) for disk in disks),
    ]


def mkfs_args(device: str, extra: Sequence[str]) -> list[str]:
    """XFS with -K: the discard pass over a fresh NVMe disk is what makes formatting slow."""
    return ["mkfs.xfs", "-K", *extra, device]


def mount_args(device: str, mount_point: str, options: str) -> list[str]:
    return ["mount", "-o", options, device, mount_point]


def _unescape_mount_field(field: str) -> str:
    # /proc/mounts writes spaces, tabs, newlines and backslashes as octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def is_mounted(mount_point: str, mounts_file: Path) -> bool:
    try:
        lines = mounts_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    target = str(Path(mount_point))
    return any(
        len(parts) >= 2 and _unescape_mount_field(parts[1]) == target
        for parts in (line.split() for line in lines)
    )


def _mount_entries(mounts_file: Path) -> list[tuple[str, str]]:
    """(device, mount point) of every line of a /proc/mounts-format file."""
    try:
        lines = mounts_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [
        (_unescape_mount_field(parts[0]), _unescape_mount_field(parts[1]))
        for parts in (line.split() for line in lines)
        if len(parts) >= 2
    ]


def _on_disks(device: str, disk_names: set[str], sysfs_root: Path) -> bool:
    """Whether a mounted device is an instance-store disk, one of its partitions, or an array
    (md) or other stacked device built on them (its ``slaves`` in sysfs)."""
    if not device.startswith("/dev/"):
        return False
    name = Path(device).name
    if name in disk_names:
        return True
    if any(re.fullmatch(rf"{re.escape(disk)}p\d+", name) for disk in disk_names):
        return True
    slaves = sysfs_root / "block" / name / "slaves"
    try:
        members = {entry.name for entry in slaves.iterdir()}
    except OSError:
        return False
    return any(member in disk_names or member.rsplit("p", 1)[0] in disk_names for member in members)


def existing_instance_store_mount(
    disks: Sequence[Path], mounts_file: Path, sysfs_root: Path
) -> Path | None:
    """Where the image already mounted the instance store, if it did (the Deep Learning AMIs
    mount it at /opt/dlami/nvme themselves): formatting it again would fail or destroy it."""
    names = {disk.name for disk in disks}
    if not names:
        return None
    for device, mount_point in _mount_entries(mounts_file):
        if _on_disks(device, names, sysfs_root):
            return Path(mount_point)
    return None


@dataclasses.dataclass(frozen=True)
class PreparedStorage:
    path: Path
    disks: tuple[Path, ...]
    on_root_volume: bool
    formatted: bool


def prepare_storage(settings: StorageSettings, run: CommandRunner = run_command) -> PreparedStorage:
    """Make the instance store ready at the mount point, or fall back (only when allowed)."""
    mount_point = settings.mount_point
    disks = find_instance_store_disks(Path(settings.sysfs_root))
    if is_mounted(mount_point, Path(settings.mounts_file)):
        # A restarted agent: the array is already formatted and mounted; formatting again would
        # throw away a model copy in progress.
        log.info("%s is already mounted; not formatting again", mount_point)
        return PreparedStorage(Path(mount_point), tuple(disks), False, False)
    existing = existing_instance_store_mount(
        disks, Path(settings.mounts_file), Path(settings.sysfs_root)
    )
    if existing is not None:
        log.info(
            "the instance store (%s) is already mounted at %s by the image: reusing its mount, "
            "not formatting it",
            " ".join(str(d) for d in disks),
            existing,
        )
        return PreparedStorage(existing, tuple(disks), False, False)
    if not disks:
        if not settings.allow_root_volume_fallback:
            raise NoInstanceStore(
                f"no NVMe disk with model {INSTANCE_STORE_MODEL!r} under "
                f"{settings.sysfs_root}/class/nvme; choose an instance type with instance store "
                "(g4dn, g5, g6, p4d...) or set storage.allow_root_volume_fallback"
            )
        fallback = Path(settings.fallback_directory)
        log.warning(
            "NO INSTANCE STORE: using %s on the root volume; a volume restored from a snapshot "
            "reads at a few MB/s on first access, so the model copy and load will be SLOW",
            fallback,
        )
        fallback.mkdir(parents=True, exist_ok=True)
        return PreparedStorage(fallback, (), True, False)
    log.info("instance-store disks: %s", " ".join(str(d) for d in disks))
    if len(disks) == 1:
        device = str(disks[0])
    else:
        run(mdadm_create_args(settings.raid_device, disks))
        device = settings.raid_device
    run(mkfs_args(device, settings.mkfs_options))
    Path(mount_point).mkdir(parents=True, exist_ok=True)
    run(mount_args(device, mount_point, settings.mount_options))
    return PreparedStorage(Path(mount_point), tuple(disks), False, True)
