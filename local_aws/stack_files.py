"""The local stack as an operator's tools see a real one: outputs and an environment file.

``outputs.json`` has the shape of ``terraform output -json`` (the root module's output names,
``terraform/outputs.tf``), so ``gpurun --outputs-file`` reads it as it reads a real stack's. The
environment file points the AWS SDKs (boto3, the AWS CLI) at the emulator with its fake
credentials and names the outputs file for ``gpurun``: after ``source``-ing it, every ``gpurun``
command works with no flags. Both files describe a running emulator only: ``remove`` deletes them
when it stops, so they never point at a dead endpoint.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from gpurun.stack import LOCAL_DEMO_ENV_FILE, OUTPUTS_FILE_VARIABLE
from local_aws.deployment import Deployment
from local_aws.server import LocalAws

OUTPUTS_FILE = "outputs.json"
ENV_FILE = LOCAL_DEMO_ENV_FILE.name
# The child environment's keys an operator's shell needs (endpoint, region, fake credentials).
_SHELL_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_EC2_METADATA_DISABLED",
)


@dataclasses.dataclass(frozen=True)
class StackFiles:
    outputs: Path
    env: Path

    def remove(self) -> None:
        self.outputs.unlink(missing_ok=True)
        self.env.unlink(missing_ok=True)


def terraform_outputs(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """The root module's outputs the local stack has, as ``terraform output -json`` prints them."""
    settings = deployment.settings
    values: dict[str, Any] = {
        "region": settings.region,
        "state_machine_arn": deployment.state_machine_arn,
        "model_bucket_name": deployment.bucket_name,
        "activity_arn": deployment.activity_arn,
        "launcher_function_name": deployment.launcher_function_name,
        "launch_template_id": deployment.launch_template_id,
        "agent_log_group_name": settings.agent_log_group_name,
        "launcher_log_group_name": settings.launcher_log_group_name,
        "schedule_name": deployment.weekly_schedule_name,
    }
    return {
        name: {"sensitive": False, "type": "string", "value": value}
        for name, value in values.items()
        if value
    }


def env_lines(aws: LocalAws, outputs: Path) -> list[str]:
    """``export`` lines for a POSIX shell: the SDKs at the emulator, gpurun at the outputs."""
    env = aws.child_env({})
    variables = {key: env[key] for key in _SHELL_VARIABLES if key in env}
    variables[OUTPUTS_FILE_VARIABLE] = str(outputs.resolve())
    lines = [f"export {key}={shlex.quote(value)}" for key, value in variables.items()]
    # The venv's console scripts (gpurun, aws) first, when this Python has them.
    scripts = Path(sys.executable).parent
    if (scripts / "gpurun").exists():
        lines.append(f'export PATH={shlex.quote(str(scripts))}:"$PATH"')
    return lines


def write_stack_files(directory: Path, aws: LocalAws, deployment: Deployment) -> StackFiles:
    """Write both files into ``directory`` (each complete, or not there at all)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = StackFiles(directory / OUTPUTS_FILE, directory / ENV_FILE)
    _write_whole(files.outputs, json.dumps(terraform_outputs(deployment), indent=2) + "\n")
    header = [
        f"# The local AWS at {aws.endpoint_url}, while it runs (deleted when it stops).",
        f"# source {files.env}   then: gpurun status",
    ]
    _write_whole(files.env, "\n".join([*header, *env_lines(aws, files.outputs)]) + "\n")
    return files


def _write_whole(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
