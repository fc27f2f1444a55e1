"""``python -m instance_agent``: the entry point the systemd unit runs."""

from __future__ import annotations

import platform
import sys
from pathlib import Path


def _add_platform_libraries() -> None:
    """Put the artifact's per-architecture binaries (awscrt's ``_awscrt``) on sys.path.

    The artifact carries x86_64 and aarch64 builds side by side under ``site/_arch/<machine>``;
    in a development checkout the directory does not exist and nothing changes.
    """
    arch_dir = Path(__file__).resolve().parent.parent / "_arch" / platform.machine()
    if arch_dir.is_dir() and str(arch_dir) not in sys.path:
        sys.path.insert(0, str(arch_dir))


_add_platform_libraries()

from instance_agent.cli import main  # noqa: E402  (after the path set-up above)

if __name__ == "__main__":
    sys.exit(main())
