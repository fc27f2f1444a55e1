"""The host's Debian packages the VM backend needs, installed on first use.

CI runs on a clean clone of a clean machine: the harness installs what it needs itself, with
apt-get, as root or through a password-less ``sudo -n``. Nothing else is ever installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

# Each command the backend runs, and the Debian package that ships it.
REQUIRED_COMMANDS: dict[str, str] = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "mmdebstrap": "mmdebstrap",
    "cloud-localds": "cloud-image-utils",
    "mkfs.ext4": "e2fsprogs",
}


class HostToolsError(RuntimeError):
    """A host tool is missing and could not be installed; the message says how to fix it."""


def privileged(command: Sequence[str]) -> list[str]:
    """``command`` as root: directly when we are root, else through a password-less sudo."""
    if os.geteuid() == 0:
        return list(command)
    if shutil.which("sudo") is None:
        raise HostToolsError(
            f"{command[0]} needs root: run as root or install sudo with password-less access"
        )
    check = subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False)
    if check.returncode != 0:
        raise HostToolsError(
            f"{command[0]} needs root and `sudo -n true` fails: allow password-less sudo "
            "(or run as root)"
        )
    return ["sudo", "-n", *command]


def missing_packages() -> list[str]:
    """The Debian packages of every required command not on PATH."""
    return sorted(
        {package for command, package in REQUIRED_COMMANDS.items() if not shutil.which(command)}
    )


def ensure_host_tools() -> None:
    """Install (apt-get) the packages of the missing commands; raise if that fails."""
    packages = missing_packages()
    if not packages:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        done = subprocess.run(
            privileged(command), env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise HostToolsError(
                f"{' '.join(command)} failed (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-2000:]}"
            )
    still = missing_packages()
    if still:
        raise HostToolsError(f"still missing after apt-get install: {' '.join(still)}")
