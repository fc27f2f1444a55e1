"""Fake ``docker``, ``systemctl`` and ``mount`` executables for the image-pull tests (there is no
Docker engine here): each appends its argv (and its stdin, for ``docker login``) as one JSON line
to ``calls.jsonl``. ``systemctl is-active`` answers 0 (active) unless the unit is named in
``INACTIVE``. ``docker pull`` touches ``pull-started``, then sleeps ``PULL_SECONDS`` and
fails with ``PULL_ERROR`` if that file exists; ``docker run`` writes ``predictions.csv`` into the
directory mounted at /output."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

_TOOL = """#!{python}
import json, os, sys, time
from pathlib import Path

state = Path({state!r})
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
entry = {{"tool": name, "args": args}}
if name == "docker" and args[:1] == ["login"]:
    entry["stdin"] = sys.stdin.read()
with (state / "calls.jsonl").open("a") as calls:
    calls.write(json.dumps(entry) + "\\n")
if name == "systemctl" and args[:1] == ["is-active"]:
    inactive = state / "INACTIVE"
    sys.exit(3 if inactive.exists() and args[-1] in inactive.read_text().split() else 0)
if name == "docker" and args[:1] == ["pull"]:
    (state / "pull-started").touch()
    seconds = state / "PULL_SECONDS"
    time.sleep(float(seconds.read_text()) if seconds.exists() else 0)
    if (state / "PULL_ERROR").exists():
        print((state / "PULL_ERROR").read_text(), file=sys.stderr)
        sys.exit(1)
    print("Status: Downloaded newer image for " + args[-1])
if name == "docker" and args[:1] == ["run"]:
    for flag, value in zip(args, args[1:]):
        if flag == "-v" and value.split(":")[1] == "/output":
            Path(value.split(":")[0], "predictions.csv").write_text("row,score\\n0,1\\n")
    print("container ran " + " ".join(args))
"""


def install(directory: Path) -> Path:
    """Write the fakes into ``directory/bin``; returns the state directory (``directory``)."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("docker", "systemctl", "mount"):
        tool = bin_dir / name
        tool.write_text(_TOOL.format(python=sys.executable, state=str(directory)))
        tool.chmod(0o755)
    return directory


def path_with(directory: Path) -> str:
    return os.pathsep.join((str(directory / "bin"), os.environ.get("PATH", "")))


def calls(directory: Path) -> list[dict[str, Any]]:
    file = directory / "calls.jsonl"
    if not file.exists():
        return []
    return [json.loads(line) for line in file.read_text().splitlines()]
