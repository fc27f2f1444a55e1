"""What Terraform itself evaluates for terraform/ with given variables: the planned resources.

A copy of terraform/ (under `.cache/terraform/evaluate/`, so nothing is written into the
repository's tree) gets one `terraform test` file: a `command = plan` run against the shared
mocks of terraform/tests/mocks with the given root variables. `terraform test -json -verbose`
prints that plan; each resource's planned values are read from it. Mocked identifiers (ARNs,
ids) are those of terraform/tests/mocks/aws.tfmock.hcl; every value computed from variables is
Terraform's own: the agent configuration inside the user data, the launcher's environment, the
state machine definition.

Results are cached on disk, keyed on the variables and the content of terraform/.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_aws.user_data import agent_config_from_user_data, decode_user_data
from terraform_tools import offline as tf_offline

EVALUATIONS = tf_offline.CACHE / "evaluate"
# Not variables of the local run: placeholders the plan needs.
PLAN_ONLY_VARIABLES = {
    "vpc_id": "vpc-0123456789abcdef0",
    "subnet_ids": ["subnet-0123456789abcdef0"],
    "agent_artifact_path": "versions.tf",
}


class EvaluationError(RuntimeError):
    """Terraform could not plan the root module; the message carries its output."""


@dataclass(frozen=True)
class Evaluation:
    resources: dict[str, dict[str, Any]]  # address -> planned values ("after")

    def resource(self, address: str) -> dict[str, Any]:
        try:
            return self.resources[address]
        except KeyError:
            raise EvaluationError(
                f"the plan has no {address}; planned: {sorted(self.resources)}"
            ) from None

    def user_data(self) -> str:
        template = self.resource("module.launch_template.aws_launch_template.this")
        return decode_user_data(template["user_data"])

    def agent_config(self) -> dict[str, Any]:
        """The agent configuration the user data writes, as Terraform rendered it (read by
        the local AWS's own cloud-config reader)."""
        template = self.resource("module.launch_template.aws_launch_template.this")
        return agent_config_from_user_data(template["user_data"])

    def launcher_environment(self) -> dict[str, str]:
        function = self.resource("module.launcher_function.aws_lambda_function.this")
        variables: dict[str, str] = function["environment"][0]["variables"]
        return variables

    def state_machine_definition(self) -> dict[str, Any]:
        machine = self.resource("module.workflow.aws_sfn_state_machine.this")
        definition: dict[str, Any] = json.loads(machine["definition"])
        return definition


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".terraform" not in path.parts:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _test_file(variables: Mapping[str, Any]) -> str:
    # JSON values are HCL expressions too (HCL accepts `"key": value` in object constructors).
    lines = [f"  {name} = {json.dumps(value)}" for name, value in sorted(variables.items())]
    return (
        "# Written by terraform_tools/evaluate.py.\n"
        'mock_provider "aws" {\n  override_during = plan\n  source = "./tests/mocks"\n}\n'
        'mock_provider "archive" {\n  override_during = plan\n  source = "./tests/mocks"\n}\n'
        "variables {\n" + "\n".join(lines) + "\n}\n"
        'run "evaluate" {\n  command = plan\n}\n'
    )


def evaluate(
    variables: Mapping[str, Any],
    root: Path = tf_offline.TERRAFORM_DIR,
    cache: Path = EVALUATIONS,
) -> Evaluation:
    """Plan `root` (a copy of it) with `variables` over the mocks; the planned resources."""
    every = {**PLAN_ONLY_VARIABLES, **variables}
    key = hashlib.sha256(
        (json.dumps(every, sort_keys=True) + _tree_digest(root)).encode()
    ).hexdigest()[:20]
    cached = cache / f"{key}.json"
    if cached.exists():
        return Evaluation(json.loads(cached.read_text()))
    # Per process: pytest-xdist workers may evaluate the same variables at the same time.
    work = cache / f"{key}.{os.getpid()}" / "terraform"
    shutil.rmtree(work.parent, ignore_errors=True)
    shutil.copytree(root, work, ignore=shutil.ignore_patterns(".terraform*", "*.tftest.hcl"))
    (work / "tests" / "evaluate.tftest.hcl").write_text(_test_file(every))
    env = tf_offline.environment(work.parent / "data", tf_offline.install())
    done = tf_offline.init(work, env)
    if done.returncode == 0:
        done = tf_offline.run(
            ["test", "-json", "-verbose", "-no-color", "-filter=tests/evaluate.tftest.hcl"],
            work,
            env,
        )
    resources = _planned_resources(done.stdout)
    if done.returncode != 0 or resources is None:
        raise EvaluationError(_errors(done.stdout) or done.stderr or done.stdout[-4000:])
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(resources))
    partial.replace(cached)
    shutil.rmtree(work.parent, ignore_errors=True)
    return Evaluation(resources)


def _messages(stdout: str) -> list[dict[str, Any]]:
    messages = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            messages.append(json.loads(line))
    return messages


def _planned_resources(stdout: str) -> dict[str, dict[str, Any]] | None:
    for message in _messages(stdout):
        if message.get("type") == "test_plan":
            return {
                change["address"]: change["change"]["after"]
                for change in message["test_plan"].get("resource_changes", [])
                if change["change"].get("after") is not None
            }
    return None


def _errors(stdout: str) -> str:
    return "\n".join(
        f"{m['diagnostic']['summary']}: {m['diagnostic'].get('detail', '')}"
        for m in _messages(stdout)
        if m.get("type") == "diagnostic" and m["diagnostic"].get("severity") == "error"
    )


def root_variables(settings: Any) -> dict[str, Any]:
    """The root module's variables for a `local_aws.deployment.LocalSettings`."""
    return {
        "name": settings.name,
        "region": settings.region,
        "instance_types": list(settings.instance_types),
        "model_prefix": settings.model_prefix,
        "run_parameters": dict(settings.run_parameters),
        "model_command": list(settings.model_command),
        "model_shell_command": settings.model_shell_command,
        "warm_paths": list(settings.warm_paths),
        "container_image": settings.container_image,
        "max_runtime_seconds": settings.max_runtime_seconds,
        "allow_root_volume_fallback": settings.allow_root_volume_fallback,
        "heartbeat_timeout_seconds": settings.heartbeat_timeout_seconds,
        "task_wait_seconds": settings.task_wait_seconds,
        "activity_timeout_seconds": settings.activity_timeout_seconds,
        "execution_timeout_seconds": settings.execution_timeout_seconds,
        "max_instance_lifetime_minutes": settings.max_instance_lifetime_minutes,
        "root_volume_size_gib": settings.root_volume_size_gib,
        "schedule_expression": settings.schedule_expression,
        "schedule_timezone": settings.schedule_timezone,
        "sweeper_schedule_expression": settings.sweeper_schedule_expression,
        "ami": settings.ami,
    }
