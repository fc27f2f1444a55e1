"""Build the self-contained agent artifact: ``python -m instance_agent.build --output PATH``.

The instance runs the agent at boot on the AMI's own python3 (3.10 or newer) with no PyPI access,
so the artifact carries everything: a tarball with one directory, ``site/``, extracted to
``/opt/instance-agent`` and used as ``PYTHONPATH=/opt/instance-agent/site``:

    site/instance_agent/          the agent's modules
    site/run_contract/            the contracts it shares with the launcher (functions/)
    site/boto3, botocore, ...     pure-Python dependencies (pinned in requirements.txt)
    site/awscrt/                  awscrt's Python part (the same on every platform)
    site/_arch/x86_64/            _awscrt.cpython-310-x86_64-linux-gnu.so, _awscrt.abi3.so
    site/_arch/aarch64/           the same for Graviton GPU instances (g5g)

awscrt publishes a CPython-3.10 wheel and an abi3 wheel for 3.11+; both are vendored per
architecture, and ``python -m instance_agent`` puts ``_arch/<machine>`` on sys.path. Wheels only
(``--only-binary=:all:``): nothing is compiled, so the build is the same on any machine. The
tarball is reproducible: sorted entries, zero mtimes and owners.
"""

from __future__ import annotations

import argparse
import gzip
import io
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = Path(__file__).resolve().parent
CONTRACT = REPO / "functions" / "run_contract"
PURE_PACKAGES = ("boto3", "botocore")  # s3transfer, jmespath, dateutil, six, urllib3 follow
ARCHES = {"x86_64": "manylinux2014_x86_64", "aarch64": "manylinux2014_aarch64"}
PYTHON_TARGETS = ("3.10", "3.11")  # 3.11 selects awscrt's abi3 wheel, valid for 3.11+
MIN_PYTHON = "3.10"


class BuildError(Exception):
    """The artifact could not be built; the message says which step and why."""


def pins(requirements: Path, names: Sequence[str]) -> list[str]:
    """``name==version`` for each name, from requirements.txt (the one place versions live)."""
    found: dict[str, str] = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;#]+)", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    missing = [name for name in names if name.lower() not in found]
    if missing:
        raise BuildError(f"{requirements}: no exact pin (name==version) for {', '.join(missing)}")
    return [f"{name}=={found[name.lower()]}" for name in names]


def pip_install(
    target: Path,
    requirements: Sequence[str],
    platform: str,
    python_version: str,
    find_links: Path | None,
) -> None:
    args = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--only-binary=:all:",
        "--platform",
        platform,
        "--python-version",
        python_version,
        "--implementation",
        "cp",
    ]
    if find_links is not None:
        args += ["--no-index", "--find-links", str(find_links)]
    args += list(requirements)
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(
            f"pip install {' '.join(requirements)} for {platform}/cp{python_version} failed:\n"
            f"{done.stderr.strip()[-3000:]}"
        )


def _copy_package(source: Path, destination: Path) -> None:
    """A package's modules (subpackages included), without caches or anything else."""
    for module in sorted(source.rglob("*.py")):
        if "__pycache__" in module.parts:
            continue
        target = destination / module.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(module, target)


def copy_agent(site: Path) -> None:
    """The agent, and the contract package it shares with the launcher (functions/)."""
    _copy_package(PACKAGE, site / "instance_agent")
    shutil.copy2(PACKAGE / "README.md", site / "instance_agent" / "README.md")
    _copy_package(CONTRACT, site / "run_contract")


def vendor_awscrt(site: Path, pin: str, scratch: Path, find_links: Path | None) -> None:
    """awscrt's Python part once in site/, its native module per arch under site/_arch/."""
    for arch, platform in ARCHES.items():
        arch_dir = site / "_arch" / arch
        arch_dir.mkdir(parents=True)
        for version in PYTHON_TARGETS:
            unpacked = scratch / f"awscrt-{arch}-{version}"
            pip_install(unpacked, [pin], platform, version, find_links)
            natives = list(unpacked.glob("_awscrt*.so"))
            if not natives:
                raise BuildError(f"{pin} for {platform}/cp{version} has no _awscrt module")
            for native in natives:
                shutil.copy2(native, arch_dir / native.name)
            if not (site / "awscrt").exists():
                shutil.copytree(unpacked / "awscrt", site / "awscrt")
                for info in unpacked.glob("awscrt-*.dist-info"):
                    shutil.copytree(info, site / info.name)


def _clean(site: Path) -> None:
    for cache in list(site.rglob("__pycache__")):
        shutil.rmtree(cache)
    # pip --target leaves console scripts built for this machine's interpreter.
    shutil.rmtree(site / "bin", ignore_errors=True)


def write_tarball(root: Path, output: Path) -> None:
    """A reproducible tar.gz of ``root``'s content: same inputs, same bytes."""

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
        return info

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            tar.add(
                path, arcname=path.relative_to(root).as_posix(), recursive=False, filter=normalise
            )
    output.parent.mkdir(parents=True, exist_ok=True)
    with (
        output.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
    ):
        gz.write(buffer.getvalue())


def build(output: Path, requirements: Path, find_links: Path | None = None) -> Path:
    boto_pins = pins(requirements, PURE_PACKAGES)
    (awscrt_pin,) = pins(requirements, ["awscrt"])
    with tempfile.TemporaryDirectory(prefix="instance-agent-build-") as tmp:
        staging = Path(tmp) / "root"
        site = staging / "site"
        # Pure-Python wheels: one install, valid for every architecture.
        pip_install(site, boto_pins, ARCHES["x86_64"], MIN_PYTHON, find_links)
        vendor_awscrt(site, awscrt_pin, Path(tmp), find_links)
        copy_agent(site)
        _clean(site)
        write_tarball(staging, output)
    return output


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "dist" / "instance-agent.tar.gz")
    parser.add_argument("--requirements", type=Path, default=REPO / "requirements.txt")
    parser.add_argument(
        "--find-links", type=Path, default=None, help="build offline from a directory of wheels"
    )
    args = parser.parse_args(argv)
    try:
        path = build(args.output, args.requirements, args.find_links)
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
