"""``python -m tests.vm.report``: every case's timeline table from ``.vm/<case>/timeline.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.vm.harness import REPORTS_DIR


def report(directory: Path) -> str:
    parts = []
    for path in sorted(directory.glob("*/timeline.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        table = (path.parent / "timeline.txt").read_text(encoding="utf-8")
        killed = " KILLED BY THE HARNESS" if data.get("killed_by_harness") else ""
        parts.append(
            f"== {data['case']}: {data['status']} {data.get('error') or ''} "
            f"({data['seconds']} s, qemu exit {data['qemu_exit_code']}{killed})\n{table}"
        )
    return "\n".join(parts) if parts else f"no timelines under {directory}\n"


if __name__ == "__main__":
    sys.stdout.write(report(Path(sys.argv[1]) if len(sys.argv) > 1 else REPORTS_DIR))
