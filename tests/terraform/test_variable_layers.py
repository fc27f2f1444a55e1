"""One layer of variable rules: a root variable the root passes as it is to a module input
(`heartbeat_timeout_seconds = var.heartbeat_timeout_seconds` in terraform/main.tf) has one type,
one default and one validation in both layers (terraform/README.md, "Variables: one rule per
input").

- type: the root declares the module input's type;
- default: when the module input has a default, the root's default is the same (a module input
  without one is the root's to default);
- validation: the module validates its own input; where the root keeps a validation (so that a
  wrong value is reported under the name the user set), its conditions are the module's,
  `var.<root name>` read as `var.<module input>`.

An attribute passed as it is (`run_defaults = { model_prefix = var.model_prefix }`) is compared
the same way, except defaults: its type with the attribute's type, and its conditions with those
of the module's validation blocks that check this attribute alone (`var.run_defaults.model_prefix`).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.tf_module import (
    Variable,
    object_attribute_types,
    read_module_calls,
    read_variables,
    variable_reference,
)

TERRAFORM_DIR = Path(__file__).resolve().parents[2] / "terraform"

# Root variables whose validation is the root's own rule, not one module's: each feeds inputs of
# different meanings in several modules, so no single module's condition could be the root's.
ROOT_RULES = {
    "name": "the project name prefixes the bucket, role, function, state machine, alarm and "
    "launch template names of every module and is the Project tag; its rule (4-32 lowercase "
    "letters, digits and hyphens) is stricter than any one module's name rule",
}


@dataclass(frozen=True)
class PassThrough:
    """A root variable passed as it is to a module input (or to one attribute of it)."""

    root: Variable
    module: str
    module_dir: Path
    input: Variable
    attribute: str | None = None

    def __str__(self) -> str:
        target = f"module.{self.module}.{self.input.name}"
        if self.attribute:
            target += f".{self.attribute}"
        return f"var.{self.root.name} -> {target}"


def pass_throughs(root_dir: Path = TERRAFORM_DIR) -> list[PassThrough]:
    roots = {v.name: v for v in read_variables(root_dir)}
    found = []
    for call in read_module_calls(root_dir):
        inputs = {v.name: v for v in read_variables(call.directory)}
        for argument, value in call.arguments.items():
            module_input = inputs[argument]
            if (name := variable_reference(value)) is not None:
                found.append(PassThrough(roots[name], call.name, call.directory, module_input))
            elif isinstance(value, dict) and _attribute_type(module_input.type, "") is not None:
                for attribute, item in value.items():
                    if (name := variable_reference(item)) is not None:
                        found.append(
                            PassThrough(
                                roots[name], call.name, call.directory, module_input, attribute
                            )
                        )
    return found


def _attribute_type(type_expression: str, attribute: str) -> str | None:
    """Type of one attribute of an object or map type ("" if the object lacks it), else None."""
    text = _normal(type_expression)
    if text.startswith("map(") and text.endswith(")"):
        return text[len("map(") : -1]
    if text.startswith("object("):
        return object_attribute_types(text).get(attribute, "")
    return None


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _renamed(condition: str, root_name: str, target: str) -> str:
    """The root's condition as the module writes it: `var.<root name>` -> `var.<target>`."""
    reference = rf"\bvar\.{re.escape(root_name)}(?![A-Za-z0-9_-])"
    return _normal(re.sub(reference, f"var.{target}", condition))


def _module_conditions(edge: PassThrough) -> list[str]:
    """The module's conditions on what the root variable feeds (the input, or one attribute)."""
    if edge.attribute is None:
        return sorted(_normal(c) for c in edge.input.conditions)
    attribute = re.compile(rf"\bvar\.{re.escape(edge.input.name)}\.([A-Za-z_][A-Za-z0-9_-]*)")
    return sorted(
        _normal(c) for c in edge.input.conditions if set(attribute.findall(c)) == {edge.attribute}
    )


def _target(edge: PassThrough) -> str:
    return edge.input.name if edge.attribute is None else f"{edge.input.name}.{edge.attribute}"


def type_mismatches(edges: list[PassThrough]) -> list[str]:
    mismatches = []
    for edge in edges:
        if edge.attribute is None:
            module_type = edge.input.type
        else:
            module_type = _attribute_type(edge.input.type, edge.attribute) or "?"
        if _normal(edge.root.type) != _normal(module_type):
            mismatches.append(f"{edge}: type {edge.root.type} (root) != {module_type} (module)")
    return mismatches


def default_mismatches(edges: list[PassThrough]) -> list[str]:
    return [
        f"{edge}: default {edge.root.default!r} (root) != {edge.input.default!r} (module)"
        for edge in edges
        if edge.attribute is None
        and not edge.input.required
        and edge.root.default != edge.input.default
    ]


def validation_mismatches(edges: list[PassThrough]) -> list[str]:
    mismatches = []
    for edge in edges:
        if not edge.root.conditions or edge.root.name in ROOT_RULES:
            continue
        root = sorted(_renamed(c, edge.root.name, _target(edge)) for c in edge.root.conditions)
        module = _module_conditions(edge)
        if root != module:
            mismatches.append(
                f"{edge}: validation\n    root:   {root}\n    module: {module or 'none'}"
            )
    return mismatches


def _report(mismatches: list[str]) -> str:
    return "\n  " + "\n  ".join(mismatches)


def test_the_root_finds_pass_through_variables_in_every_module_it_calls() -> None:
    called = {call.name for call in read_module_calls(TERRAFORM_DIR)}
    edges = pass_throughs()
    assert {e.module for e in edges} == called - {"instance_role"}  # it gets only derived values
    assert "var.heartbeat_timeout_seconds -> module.workflow.heartbeat_timeout_seconds" in {
        str(e) for e in edges
    }
    assert "var.model_prefix -> module.workflow.run_defaults.model_prefix" in {
        str(e) for e in edges
    }


def test_a_pass_through_variable_has_the_modules_type_in_the_root() -> None:
    mismatches = type_mismatches(pass_throughs())
    assert not mismatches, _report(mismatches)


def test_a_pass_through_variable_has_the_modules_default_in_the_root() -> None:
    mismatches = default_mismatches(pass_throughs())
    assert not mismatches, _report(mismatches)


def test_a_pass_through_variable_validated_in_the_root_has_the_modules_conditions() -> None:
    mismatches = validation_mismatches(pass_throughs())
    assert not mismatches, _report(mismatches)


@pytest.mark.parametrize("name", sorted(ROOT_RULES))
def test_a_root_rule_is_listed_only_while_it_differs_from_a_modules(name: str) -> None:
    edges = [e for e in pass_throughs() if e.root.name == name and e.attribute is None]
    assert edges, f"var.{name} is no longer passed to a module: remove it from ROOT_RULES"
    differs = [
        e
        for e in edges
        if sorted(_renamed(c, name, _target(e)) for c in e.root.conditions) != _module_conditions(e)
    ]
    assert differs, f"var.{name} now has every module's conditions: remove it from ROOT_RULES"


@pytest.fixture
def terraform_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "terraform"
    shutil.copytree(
        TERRAFORM_DIR, copy, ignore=shutil.ignore_patterns(".terraform*", "build", "*.tfstate*")
    )
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_module_default_that_drifts_from_the_roots_is_reported(terraform_copy: Path) -> None:
    _edit(terraform_copy / "modules/workflow/variables.tf", "default     = 7200", "default = 7300")

    assert default_mismatches(pass_throughs(terraform_copy)) == [
        "var.activity_timeout_seconds -> module.workflow.activity_timeout_seconds: "
        "default 7200 (root) != 7300 (module)"
    ]


def test_a_module_bound_that_drifts_from_the_roots_is_reported(terraform_copy: Path) -> None:
    _edit(
        terraform_copy / "modules/workflow/variables.tf",
        "var.activity_timeout_seconds >= 60",
        "var.activity_timeout_seconds >= 30",
    )

    (mismatch,) = validation_mismatches(pass_throughs(terraform_copy))
    assert mismatch.startswith(
        "var.activity_timeout_seconds -> module.workflow.activity_timeout_seconds: validation"
    )
    assert ">= 60" in mismatch
    assert ">= 30" in mismatch


def test_a_module_type_that_drifts_from_the_roots_is_reported(terraform_copy: Path) -> None:
    _edit(
        terraform_copy / "modules/workflow/variables.tf",
        "model_prefix        = string",
        "model_prefix        = any",
    )

    assert type_mismatches(pass_throughs(terraform_copy)) == [
        "var.model_prefix -> module.workflow.run_defaults.model_prefix: "
        "type string (root) != any (module)"
    ]


def test_a_module_attribute_bound_that_drifts_from_the_roots_is_reported(
    terraform_copy: Path,
) -> None:
    _edit(
        terraform_copy / "modules/workflow/variables.tf",
        "var.run_defaults.max_runtime_seconds >= 1",
        "var.run_defaults.max_runtime_seconds >= 0",
    )

    (mismatch,) = validation_mismatches(pass_throughs(terraform_copy))
    assert mismatch.startswith(
        "var.max_runtime_seconds -> module.workflow.run_defaults.max_runtime_seconds: validation"
    )
