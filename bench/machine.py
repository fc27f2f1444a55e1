"""The machine and tool versions a result was measured with (part of every JSON result)."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

_PYTHON_PACKAGES = ("boto3", "botocore", "s3transfer", "awscrt", "awscli")


def _first_line(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _meminfo_gib(field: str) -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _filesystem(path: Path) -> str | None:
    """The type of the filesystem holding ``path`` (longest mount point that contains it)."""
    best, kind = "", None
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    resolved = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) >= 3:
            mount_point = fields[1]
            inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) > len(best):
                best, kind = mount_point, f"{fields[2]} on {mount_point} ({fields[0]})"
    return kind


def machine_info(tools: dict[str, str], work_dir: Path) -> dict[str, Any]:
    """CPU, cores, memory, kernel, page-cache settings, load, and every client's version."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in _PYTHON_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    commands = {
        "s5cmd": [tools["s5cmd"], "version"],
        "nginx": [tools["nginx"], "-v"],
        "curl": [tools["curl"], "--version"],
        "dd": [tools["dd"], "--version"],
    }
    for name, argv in commands.items():
        versions[name] = _first_line(argv)
    return {
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gib": _meminfo_gib("MemTotal"),
        "memory_available_gib": _meminfo_gib("MemAvailable"),
        "kernel": platform.release(),
        "os": _read("/etc/debian_version"),
        "work_filesystem": _filesystem(work_dir),
        "vm_dirty_ratio": _read("/proc/sys/vm/dirty_ratio"),
        "vm_dirty_background_ratio": _read("/proc/sys/vm/dirty_background_ratio"),
        "loadavg_start": os.getloadavg(),
        "versions": versions,
    }
