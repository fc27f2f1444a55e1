"""What the local run deploys is what terraform/ declares: resources, template variables, env."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest

from local_aws.deployment import (
    ASL_TEMPLATE,
    DEPLOY_STEPS,
    TEMPLATE_VARIABLES,
    TERRAFORM_COUNTERPARTS,
    TERRAFORM_DIR,
    Deployment,
    LocalSettings,
    asl_variables,
    launcher_environment,
)
from local_aws.terraform_render import render_template_file
from terraform_tools import evaluate as tf_evaluate

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


def _object_keys(text: str) -> set[str]:
    """Top-level keys of an HCL object literal ``{a = ..., b = {...}}`` as hcl2 prints it."""
    inner = text[text.index("{") + 1 : text.rindex("}")]
    keys, depth, start = set(), 0, 0
    for index, char in enumerate(inner + ","):
        if char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
        elif char == "," and depth == 0:
            item = inner[start:index].strip()
            if item:
                keys.add(item.split("=", 1)[0].strip())
            start = index + 1
    return keys


def _balanced_object(text: str, start: int) -> str:
    """The object literal starting at ``text[start] == '{'``, up to its matching brace."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[start : index + 1]
    raise AssertionError(f"unbalanced object literal in {text[start : start + 80]!r}")


def templatefile_calls() -> dict[str, set[str]]:
    """Template file name -> the variable names terraform/'s templatefile() passes it."""
    calls: dict[str, set[str]] = {}
    pattern = re.compile(r'templatefile\("\$\{path\.module\}/([^"]+)",\s*')
    for path in sorted(TERRAFORM_DIR.rglob("*.tf")):
        text = str(_load(path))
        for match in pattern.finditer(text):
            calls[match.group(1)] = _object_keys(_balanced_object(text, match.end()))
    return calls


def test_every_terraform_resource_of_the_local_run_has_a_local_counterpart() -> None:
    missing = terraform_addresses() - set(TERRAFORM_COUNTERPARTS)
    assert not missing, f"declared in terraform/ but not deployed locally: {sorted(missing)}"


def test_every_local_counterpart_is_declared_in_terraform() -> None:
    extra = set(TERRAFORM_COUNTERPARTS) - terraform_addresses()
    assert not extra, f"deployed locally but not declared in terraform/: {sorted(extra)}"


def test_every_counterpart_step_is_run_by_deploy() -> None:
    assert set(TERRAFORM_COUNTERPARTS.values()) <= set(DEPLOY_STEPS)


@pytest.mark.parametrize("template", sorted(TEMPLATE_VARIABLES))
def test_template_variables_are_those_terraform_passes(template: str) -> None:
    calls = templatefile_calls()
    assert template in calls, f"terraform/ has no templatefile() of {template}"
    settings = LocalSettings()
    local = set(TEMPLATE_VARIABLES[template](settings, Deployment(settings=settings)))
    assert local == calls[template]


def test_every_templatefile_in_terraform_is_rendered_locally() -> None:
    assert set(templatefile_calls()) == set(TEMPLATE_VARIABLES)


def test_launcher_environment_names_are_those_terraform_sets() -> None:
    (body,) = [
        b
        for t, _, b in _resources(TERRAFORM_DIR / "modules" / "launcher_function")
        if t == "aws_lambda_function"
    ]
    terraform_names = set(body["environment"][0]["variables"])
    settings = LocalSettings()
    assert set(launcher_environment(settings, Deployment(settings=settings))) == terraform_names


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


# ---- against what Terraform evaluates (terraform_tools/evaluate.py) -------------------------

EVALUATED_SETTINGS = LocalSettings(
    name="parity-check",
    instance_types=("g6.xlarge",),
    run_parameters={"week": 12},
    max_runtime_seconds=900,
    heartbeat_timeout_seconds=120,
    activity_timeout_seconds=3600,
    execution_timeout_seconds=5400,
    max_instance_lifetime_minutes=100,
)


@pytest.fixture(scope="module")
def evaluation() -> tf_evaluate.Evaluation:
    return tf_evaluate.evaluate(tf_evaluate.root_variables(EVALUATED_SETTINGS))


def test_the_launcher_environment_is_the_one_terraform_evaluates(
    evaluation: tf_evaluate.Evaluation,
) -> None:
    terraform = evaluation.launcher_environment()
    # The ids are the mocks' (terraform/tests/mocks); every other value is Terraform's.
    deployment = Deployment(
        settings=EVALUATED_SETTINGS,
        activity_arn=terraform["ACTIVITY_ARN"],
        launch_template_id=terraform["LAUNCH_TEMPLATE_ID"],
        launch_template_version=terraform["LAUNCH_TEMPLATE_VERSION"],
    )

    assert launcher_environment(EVALUATED_SETTINGS, deployment) == terraform


def test_the_state_machine_definition_is_the_one_terraform_evaluates(
    evaluation: tf_evaluate.Evaluation,
) -> None:
    terraform = evaluation.state_machine_definition()
    deployment = Deployment(
        settings=EVALUATED_SETTINGS,
        launcher_function_arn=terraform["States"]["StartInstance"]["Parameters"]["FunctionName"],
        activity_arn=terraform["States"]["RunModel"]["Resource"],
        bucket_name=terraform["States"]["RunModel"]["Parameters"]["model"]["bucket"],
        subnet_ids=list(tf_evaluate.PLAN_ONLY_VARIABLES["subnet_ids"]),
    )
    local = json.loads(
        render_template_file(ASL_TEMPLATE, asl_variables(EVALUATED_SETTINGS, deployment))
    )

    assert local == terraform
