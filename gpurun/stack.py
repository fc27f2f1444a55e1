"""Where the deployed stack's names come from: flags, then environment, then Terraform outputs.

Terraform outputs are read lazily, only when a command needs a name no flag or variable gave:
from ``--outputs-file`` or ``$GPURUN_OUTPUTS_FILE`` (a saved ``terraform output -json``; the
local AWS of ``make demo ARGS=--keep-running`` writes one and an environment file naming it) or
by running
``terraform -chdir=<dir> output -json`` in ``--terraform-dir`` (default ``./terraform`` when it
has been initialised).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from gpurun.errors import GpurunError

OUTPUTS_FILE_VARIABLE = "GPURUN_OUTPUTS_FILE"
# Where `make demo ARGS=--keep-running` leaves the environment file of its local AWS.
LOCAL_DEMO_ENV_FILE = Path(".demo/stack/gpurun.env")


@dataclasses.dataclass(frozen=True)
class Field:
    flag: str
    env: str
    output: str


FIELDS: dict[str, Field] = {
    "region": Field("--region", "AWS_REGION", "region"),
    "state_machine_arn": Field(
        "--state-machine-arn", "GPURUN_STATE_MACHINE_ARN", "state_machine_arn"
    ),
    "model_bucket": Field("--bucket", "GPURUN_BUCKET", "model_bucket_name"),
    "activity_arn": Field("--activity-arn", "GPURUN_ACTIVITY_ARN", "activity_arn"),
    "launch_template_id": Field(
        "--launch-template-id", "GPURUN_LAUNCH_TEMPLATE_ID", "launch_template_id"
    ),
    "schedule_name": Field("--schedule-name", "GPURUN_SCHEDULE_NAME", "schedule_name"),
    "agent_log_group": Field("--agent-log-group", "GPURUN_AGENT_LOG_GROUP", "agent_log_group_name"),
    "launcher_log_group": Field(
        "--launcher-log-group", "GPURUN_LAUNCHER_LOG_GROUP", "launcher_log_group_name"
    ),
}


def local_demo_hint() -> str:
    """How to reach a kept-running ``make demo`` from here, when this directory has one."""
    if LOCAL_DEMO_ENV_FILE.is_file():
        return f"; for the local AWS of make demo: source {LOCAL_DEMO_ENV_FILE}"
    return ""


def read_outputs_json(text: str, source: str) -> dict[str, Any]:
    """``terraform output -json`` -> {name: value}."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GpurunError(f"{source} is not JSON ({exc}); save `terraform output -json`") from exc
    if not isinstance(document, dict):
        raise GpurunError(f"{source}: expected the object printed by `terraform output -json`")
    values: dict[str, Any] = {}
    for name, entry in document.items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise GpurunError(
                f"{source}: output {name!r} has no 'value'; save `terraform output -json` as is"
            )
        values[name] = entry["value"]
    return values


class Stack:
    """The stack's names, each resolved once from flag, environment or Terraform output."""

    def __init__(
        self,
        flags: dict[str, str | None],
        *,
        outputs_file: Path | None = None,
        terraform_dir: Path | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self._flags = flags
        self._environ = dict(os.environ if environ is None else environ)
        self._outputs_source = "--outputs-file"
        if outputs_file is None and self._environ.get(OUTPUTS_FILE_VARIABLE):
            outputs_file = Path(self._environ[OUTPUTS_FILE_VARIABLE])
            self._outputs_source = OUTPUTS_FILE_VARIABLE
        self._outputs_file = outputs_file
        self._terraform_dir = terraform_dir
        self._outputs: dict[str, Any] | None = None

    def _terraform_outputs(self) -> dict[str, Any]:
        if self._outputs is not None:
            return self._outputs
        if self._outputs_file is not None:
            try:
                text = self._outputs_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise GpurunError(f"{self._outputs_source} {self._outputs_file}: {exc}") from exc
            self._outputs = read_outputs_json(text, str(self._outputs_file))
            return self._outputs
        directory = self._terraform_dir
        if directory is None:
            default = Path("terraform")
            directory = default if (default / ".terraform").is_dir() else None
        if directory is None:
            self._outputs = {}
            return self._outputs
        terraform = self._environ.get("GPURUN_TERRAFORM") or shutil.which("terraform")
        if terraform is None:
            raise GpurunError(
                "no terraform binary on PATH to read the stack's outputs; install it, set "
                "GPURUN_TERRAFORM, or pass --outputs-file / the names as flags"
            )
        done = subprocess.run(
            [terraform, f"-chdir={directory}", "output", "-json"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise GpurunError(
                f"`terraform -chdir={directory} output -json` failed: {done.stderr.strip()}; "
                "run terraform init/apply there, or pass --outputs-file"
            )
        self._outputs = read_outputs_json(done.stdout, f"terraform output in {directory}")
        return self._outputs

    def get(self, name: str) -> str | None:
        """The value, or None when no source has it."""
        field = FIELDS[name]
        flag_value = self._flags.get(name)
        if flag_value:
            return flag_value
        if name == "region":
            env_value = self._environ.get("AWS_REGION") or self._environ.get("AWS_DEFAULT_REGION")
        else:
            env_value = self._environ.get(field.env)
        if env_value:
            return env_value
        value = self._terraform_outputs().get(field.output)
        return str(value) if value not in (None, "") else None

    def require(self, name: str) -> str:
        """The value, or GpurunError naming the three ways to give it."""
        value = self.get(name)
        if value is None:
            field = FIELDS[name]
            raise GpurunError(
                f"{name} is not known: pass {field.flag}, set {field.env}, or point "
                f"--terraform-dir / --outputs-file at the stack (output {field.output!r})"
                + local_demo_hint()
            )
        return value
