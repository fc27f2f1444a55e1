"""`terraform validate` with the offline provider stand-in catches what the HCL checker cannot.

Each defect is planted in a copy of terraform/ and validated there (only the module it is in,
to keep the run short); the old offline checker (terraform_tools/schema.py) is run on the same
copy to show which defects only Terraform itself catches.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import pytest

from terraform_tools import offline as tf_offline
from terraform_tools import schema as tf_schema

TERRAFORM_DIR = tf_offline.TERRAFORM_DIR


@dataclass(frozen=True)
class Defect:
    file: str  # relative to terraform/
    old: str
    new: str
    module: str  # the module validated, relative to terraform/ ("." for the root)
    message: str  # in Terraform's diagnostics


BAD_REFERENCE = Defect(
    "modules/launcher_function/main.tf",
    'resources = ["${aws_cloudwatch_log_group.this.arn}:*"]',
    'resources = ["${aws_cloudwatch_log_group.launcher.arn}:*"]',
    "modules/launcher_function",
    "Reference to undeclared resource",
)
BAD_ATTRIBUTE = Defect(
    "modules/launch_template/outputs.tf",
    "aws_launch_template.this.latest_version",
    "aws_launch_template.this.last_version",
    "modules/launch_template",
    'no argument, nested block, or exported attribute named "last_version"',
)
WRONG_TYPE = Defect(
    "modules/launch_template/main.tf",
    "vpc_security_group_ids               = [aws_security_group.this.id]",
    "vpc_security_group_ids               = aws_security_group.this.id",
    "modules/launch_template",
    "Incorrect attribute value type",
)
MISSING_MODULE_INPUT = Defect(
    "main.tf",
    "  vpc_id                 = var.vpc_id\n",
    "",
    ".",
    'The argument "vpc_id" is required',
)
BAD_MODULE_OUTPUT = Defect(
    "main.tf",
    "tostring(module.launch_template.launch_template_latest_version)",
    "tostring(module.launch_template.launch_template_version)",
    ".",
    'does not have an attribute named "launch_template_version"',
)
BAD_ROOT_OUTPUT = Defect(
    "outputs.tf",
    "  value       = module.workflow.state_machine_arn\n",
    "  value       = module.workflow.state_machine_id\n",
    ".",
    'does not have an attribute named "state_machine_id"',
)
UNKNOWN_RESOURCE_TYPE = Defect(
    "modules/launch_template/main.tf",
    'resource "aws_launch_template" "this"',
    'resource "aws_launch_templates" "this"',
    "modules/launch_template",
    'The provider hashicorp/aws does not support resource type "aws_launch_templates"',
)
DEFECTS = [
    BAD_REFERENCE,
    BAD_ATTRIBUTE,
    WRONG_TYPE,
    MISSING_MODULE_INPUT,
    BAD_MODULE_OUTPUT,
    BAD_ROOT_OUTPUT,
    UNKNOWN_RESOURCE_TYPE,
]


def copy_of_terraform(tmp_path: Path, *, with_tests: bool = False) -> Path:
    tree = tmp_path / "terraform"
    skipped = [".terraform*"] if with_tests else [".terraform*", "tests"]
    shutil.copytree(TERRAFORM_DIR, tree, ignore=shutil.ignore_patterns(*skipped))
    return tree


def plant(tree: Path, defect: Defect) -> None:
    path = tree / defect.file
    text = path.read_text()
    assert text.count(defect.old) == 1, f"{defect.file}: {defect.old!r} is not there once"
    path.write_text(text.replace(defect.old, defect.new))


def validate(tree: Path, module: str, tmp_path: Path) -> tf_offline.Outcome:
    return tf_offline.validate((tree / module).resolve(), tree, tmp_path / "tf-cache")


@pytest.fixture(scope="module")
def old_schemas() -> dict[str, tf_schema.ProviderSchema]:
    return tf_schema.load_schemas()


def old_checker_findings(tree: Path, schemas: dict[str, tf_schema.ProviderSchema]) -> list[str]:
    return [str(f) for f in tf_schema.check_paths([tree], schemas).findings]


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda d: d.message[:40])
def test_terraform_validate_catches_the_planted_defect(defect: Defect, tmp_path: Path) -> None:
    tree = copy_of_terraform(tmp_path)
    plant(tree, defect)

    outcome = validate(tree, defect.module, tmp_path)

    assert not outcome.ok
    assert defect.message in " ".join(outcome.text.split()), outcome.text


@pytest.mark.parametrize(
    "defect", [BAD_REFERENCE, BAD_ATTRIBUTE, WRONG_TYPE, BAD_MODULE_OUTPUT, BAD_ROOT_OUTPUT]
)
def test_the_old_hcl_checker_misses_what_only_terraform_catches(
    defect: Defect, tmp_path: Path, old_schemas: dict[str, tf_schema.ProviderSchema]
) -> None:
    tree = copy_of_terraform(tmp_path)
    plant(tree, defect)

    assert old_checker_findings(tree, old_schemas) == []


def test_the_unchanged_modules_validate_and_nothing_is_written_into_them(tmp_path: Path) -> None:
    tree = copy_of_terraform(tmp_path)
    before = sorted(p.relative_to(tree) for p in tree.rglob("*"))

    outcomes = [validate(tree, module, tmp_path) for module in (".", "modules/launch_template")]

    assert all(o.ok for o in outcomes), [o.text for o in outcomes]
    assert sorted(p.relative_to(tree) for p in tree.rglob("*")) == before


def _values(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if not k.startswith("__")}


def test_the_root_test_plans_with_the_example_tfvars() -> None:
    with (TERRAFORM_DIR / "terraform.tfvars.example").open() as handle:
        example = _values(hcl2.load(handle))
    with (TERRAFORM_DIR / "tests" / "weekly_run.tftest.hcl").open() as handle:
        (variables,) = hcl2.load(handle)["variables"]

    assert _values(variables) == {**example, "agent_artifact_path": '"versions.tf"'}


def test_terraform_test_fails_when_the_launch_template_stops_terminating_or_allows_imdsv1(
    tmp_path: Path,
) -> None:
    tree = copy_of_terraform(tmp_path, with_tests=True)
    template = tree / "modules/launch_template/main.tf"
    text = template.read_text()
    text = text.replace('shutdown_behavior = "terminate"', 'shutdown_behavior = "stop"')
    text = text.replace('http_tokens                 = "required"', 'http_tokens = "optional"')
    template.write_text(text)

    outcome = tf_offline.run_tests(
        tree, tree, tmp_path / "tf-cache", files=["tests/launch_template.tftest.hcl"]
    )

    assert not outcome.ok
    assert 'run "an_os_shutdown_terminates_the_instance"... fail' in outcome.text
    assert 'run "imdsv2_is_required_with_a_hop_for_containers"... fail' in outcome.text
    assert "7 passed, 2 failed" in outcome.text
