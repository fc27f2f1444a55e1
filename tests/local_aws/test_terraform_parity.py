"""What the local run deploys is what terraform/ declares: its resources, and their values as
Terraform plans them (with the local AWS's identifiers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2

from local_aws.deployment import (
    DEPLOY_STEPS,
    TERRAFORM_COUNTERPARTS,
    TERRAFORM_DIR,
    LocalSettings,
)

PARITY_TYPES = frozenset(
    {
        "aws_sfn_state_machine",
        "aws_sfn_activity",
        "aws_launch_template",
        "aws_lambda_function",
        "aws_s3_bucket",
        "aws_cloudwatch_event_rule",
        "aws_scheduler_schedule",
        "aws_cloudwatch_log_group",
    }
)


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document: dict[str, Any] = hcl2.load(handle)
    return document


def _unquote(name: str) -> str:
    return name.strip('"')


def _resources(directory: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, name, body) of every resource declared in ``directory``'s .tf files."""
    found = []
    for path in sorted(directory.glob("*.tf")):
        for block in _load(path).get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    found.append((_unquote(rtype), _unquote(name), body))
    return found


def _module_instances() -> dict[str, Path]:
    """Root module calls: instance name -> module directory."""
    instances = {}
    for path in sorted(TERRAFORM_DIR.glob("*.tf")):
        for block in _load(path).get("module", []):
            for name, body in block.items():
                source = _unquote(body["source"])
                instances[_unquote(name)] = (TERRAFORM_DIR / source).resolve()
    return instances


def terraform_addresses() -> set[str]:
    addresses = {f"{t}.{n}" for t, n, _ in _resources(TERRAFORM_DIR) if t in PARITY_TYPES}
    for instance, directory in _module_instances().items():
        addresses |= {
            f"module.{instance}.{t}.{n}" for t, n, _ in _resources(directory) if t in PARITY_TYPES
        }
    return addresses


def test_every_terraform_resource_of_the_local_run_has_a_local_counterpart() -> None:
    missing = terraform_addresses() - set(TERRAFORM_COUNTERPARTS)
    assert not missing, f"declared in terraform/ but not deployed locally: {sorted(missing)}"


def test_every_local_counterpart_is_declared_in_terraform() -> None:
    extra = set(TERRAFORM_COUNTERPARTS) - terraform_addresses()
    assert not extra, f"deployed locally but not declared in terraform/: {sorted(extra)}"


def test_every_counterpart_step_is_run_by_deploy() -> None:
    assert set(TERRAFORM_COUNTERPARTS.values()) <= set(DEPLOY_STEPS)


def test_local_settings_defaults_are_terraforms_variable_defaults() -> None:
    defaults = {
        name: body.get("default")
        for block in _load(TERRAFORM_DIR / "variables.tf")["variable"]
        for name, body in block.items()
    }
    settings = LocalSettings()
    for field in (
        "name",
        "region",
        "model_prefix",
        "schedule_expression",
        "schedule_timezone",
        "sweeper_schedule_expression",
    ):
        assert f'"{getattr(settings, field)}"' == defaults[f'"{field}"'], field
    for field in (
        "max_runtime_seconds",
        "heartbeat_timeout_seconds",
        "task_wait_seconds",
        "activity_timeout_seconds",
        "execution_timeout_seconds",
        "max_instance_lifetime_minutes",
        "allow_root_volume_fallback",
    ):
        assert getattr(settings, field) == defaults[f'"{field}"'], field
    assert [f'"{t}"' for t in settings.instance_types] == defaults['"instance_types"']
    assert [f'"{t}"' for t in settings.model_command] == defaults['"model_command"']
    assert [f'"{t}"' for t in settings.warm_paths] == defaults['"warm_paths"']
    assert settings.model_shell_command is None
    assert defaults['"model_shell_command"'] is None
