"""The guest image: a Debian bookworm root file system with only what a GPU AMI would have.

Built once per set of inputs with mmdebstrap from the machine's own apt sources (no mirror name
is ever written here), turned into a raw ext4 image with ``mkfs.ext4 -d`` (no loop mount), and
cached outside the clone (``$XDG_CACHE_HOME/scheduled-gpu-model/vm/<key>/``), so every clone and
CI run on the machine reuses it. The key hashes everything that goes into the image: the
package list, the files and edits applied, the build script and the apt sources file.

No project code goes into the image: the agent arrives the way it does on EC2, downloaded by
the user data's bootstrap from S3. The kernel and initrd are copied out for QEMU's direct
kernel boot (no boot loader to emulate under TCG).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from local_aws.vm.host_tools import HostToolsError, ensure_host_tools, privileged

SUITE = "bookworm"
IMAGE_SIZE = "2G"
# What a GPU AMI ships that the instance side uses (python3-numpy: the demo scorer's one need,
# as a Deep Learning AMI's Python has it; rsyslog: the user data's log file for the CloudWatch
# agent); nothing of this project.
PACKAGES = (
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "cloud-init",
    "python3",
    "python3-numpy",
    "mdadm",
    "xfsprogs",
    "e2fsprogs",
    "nvme-cli",
    "curl",
    "ca-certificates",
    "awscli",
    "ifupdown",
    "isc-dhcp-client",
    "iproute2",
    "procps",
    "kmod",
    "rsyslog",
)

# Files of the image, beside what the packages install.
GUEST_FILES: dict[str, str] = {
    # NoCloud only: the seed disk carries user data, meta data and network config. Without this
    # cloud-init would probe EC2's metadata address, which is the fake IMDS here.
    "etc/cloud/cloud.cfg.d/90-local-vm.cfg": "datasource_list: [ NoCloud, None ]\n",
    # The journal on the serial console: the harness reads the agent's log and the boot's
    # progress from the one stream QEMU writes to a file.
    "etc/systemd/journald.conf.d/90-console.conf": (
        "[Journal]\nForwardToConsole=yes\nTTYPath=/dev/ttyS0\nMaxLevelConsole=info\n"
    ),
    "etc/fstab": "LABEL=rootfs / ext4 rw,errors=remount-ro 0 1\n",
    "etc/network/interfaces": (
        "auto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n"
    ),
    "etc/hostname": "localhost\n",
}
# cloud-init modules an image on a fixed-size raw disk with no SSH must not run (locale: no
# locales package; its failure would fail cloud-config.service on every boot).
REMOVED_CLOUD_INIT_MODULES = (
    "locale",
    "growpart",
    "resizefs",
    "ssh",
    "ssh_authkey_fingerprints",
    "keys_to_console",
    "ssh_import_id",
)
# Periodic jobs that would compete for the two emulated CPUs during a run.
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "man-db.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
)

_BUILD_SCRIPT = r"""set -euo pipefail
work="$1"; sources="$2"; owner="$3"; packages="$4"
mmdebstrap --variant=apt --aptopt='Acquire::Check-Valid-Until "false"' \
  --include="$packages" {suite} "$work/rootfs" "$sources"
rootfs="$work/rootfs"
cp -a "$work/overlay/." "$rootfs/"
sed -i -E '/^\s*-\s*({removed})\s*$/d' "$rootfs/etc/cloud/cloud.cfg"
for unit in {masked}; do ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"; done
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
cp -L "$rootfs"/boot/vmlinuz-* "$work/vmlinuz"
cp -L "$rootfs"/boot/initrd.img-* "$work/initrd.img"
mkfs.ext4 -q -L rootfs -d "$rootfs" "$work/rootfs.raw" {size}
rm -rf "$rootfs"
chown "$owner" "$work/vmlinuz" "$work/initrd.img" "$work/rootfs.raw"
"""


class ImageBuildError(RuntimeError):
    """The guest image could not be built; the message carries the build's log tail."""


@dataclasses.dataclass(frozen=True)
class GuestImage:
    """A built image: boot it with ``-kernel``/``-initrd`` over a qcow2 overlay of ``rootfs``."""

    directory: Path
    key: str

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    @property
    def rootfs(self) -> Path:
        return self.directory / "rootfs.raw"

    @property
    def complete(self) -> bool:
        return all(p.is_file() for p in (self.kernel, self.initrd, self.rootfs, self.manifest))

    @property
    def manifest(self) -> Path:
        return self.directory / "image.json"


def cache_root() -> Path:
    """Outside the clone, shared by every clone of the machine's user."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scheduled-gpu-model" / "vm"


def apt_sources_file() -> Path:
    """The machine's own apt sources: mmdebstrap takes the file as its mirror argument."""
    directory = Path("/etc/apt/sources.list.d")
    candidates = sorted(directory.glob("*.sources")) + sorted(directory.glob("*.list"))
    candidates.append(Path("/etc/apt/sources.list"))
    for candidate in candidates:
        if candidate.is_file() and candidate.stat().st_size > 0:
            return candidate
    raise ImageBuildError(
        "no apt sources file found (/etc/apt/sources.list.d/*.sources, *.list, "
        "/etc/apt/sources.list): the image is built from the machine's own Debian mirror"
    )


def build_script() -> str:
    return _BUILD_SCRIPT.format(
        suite=SUITE,
        removed="|".join(REMOVED_CLOUD_INIT_MODULES),
        masked=" ".join(MASKED_UNITS),
        size=IMAGE_SIZE,
    )


def image_key(sources_text: str) -> str:
    """A hash of every input of the image: a change to any of them builds a new one."""
    inputs = {
        "suite": SUITE,
        "packages": PACKAGES,
        "files": GUEST_FILES,
        "script": build_script(),
        "sources": sources_text,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Parallel test workers and CI jobs share the cache: one builds, the others wait for it.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_image(
    cache: Path | None = None, *, say: Callable[[str], None] = lambda _line: None
) -> GuestImage:
    """The cached image for the current inputs, built first if there is none."""
    root = cache or cache_root()
    sources = apt_sources_file()
    key = image_key(sources.read_text(encoding="utf-8"))
    image = GuestImage(root / key, key)
    if image.complete:
        return image
    with _locked(root / f"{key}.lock"):
        if image.complete:
            return image
        ensure_host_tools()
        say(f"building the guest image {key} (Debian {SUITE}, mmdebstrap; a few minutes)")
        started = time.monotonic()
        _build(image, sources)
        seconds = time.monotonic() - started
        image.manifest.write_text(
            json.dumps({"key": key, "packages": PACKAGES, "build_seconds": round(seconds, 1)}),
            encoding="utf-8",
        )
        say(f"guest image {key} built in {seconds:.0f} s")
    return image


def _build(image: GuestImage, sources: Path) -> None:
    image.directory.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{image.key}.", dir=image.directory.parent))
    try:
        for relative, content in GUEST_FILES.items():
            target = work / "overlay" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        script = work / "build.sh"
        script.write_text(build_script(), encoding="utf-8")
        log = work / "build.log"
        command = privileged(
            [
                "bash",
                str(script),
                str(work),
                str(sources),
                f"{os.getuid()}:{os.getgid()}",
                ",".join(PACKAGES),
            ]
        )
        with log.open("wb") as out:
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise ImageBuildError(
                f"building the guest image failed (exit {done.returncode}):\n{tail}"
            )
        image.directory.mkdir(parents=True, exist_ok=True)
        for name in ("vmlinuz", "initrd.img", "rootfs.raw", "build.log"):
            (work / name).replace(image.directory / name)
    finally:
        _remove_build_directory(work)


def _mounts_under(directory: Path) -> list[str]:
    prefix = str(directory.resolve()) + "/"
    with open("/proc/mounts", encoding="utf-8") as mounts:
        targets = [line.split()[1] for line in mounts if len(line.split()) > 1]
    return [target for target in targets if target.startswith(prefix)]


def _remove_build_directory(work: Path) -> None:
    # An interrupted mmdebstrap (root mode) can leave the host's /proc, /sys or /dev mounted in
    # the root file system: deleting through them would delete the host's own files.
    left = _mounts_under(work)
    if left:
        raise ImageBuildError(
            f"the interrupted build left mounts under {work} ({', '.join(left)}): unmount them "
            f"(umount -R {work}/rootfs), then remove {work}"
        )
    subprocess.run(privileged(["rm", "-rf", "--one-file-system", str(work)]), check=False)
    shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    """``python -m local_aws.vm.image``: build (or find) the cached image; print where it is."""
    started = time.monotonic()
    try:
        image = ensure_image(say=print)
    except (ImageBuildError, HostToolsError, OSError) as exc:
        print(f"vm image: {exc}")
        return 1
    print(f"vm image: {image.directory} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
