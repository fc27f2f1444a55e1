"""A Terraform module's interface, read with python-hcl2: its variables, outputs and module calls.

Shared by the README tables generator (`tests.support.tf_docs`) and the test that the root and
the modules agree on every variable the root passes through (tests/terraform/
test_variable_layers.py). Defaults keep python-hcl2's form, so they compare as written (a string
default is `'"UTC"'`, a list of strings `['"a"', '"b"']`, null is `None`); expressions (types,
validation conditions, module arguments) are their source text without the `${ }` that
python-hcl2 wraps them in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

# Arguments of a `module` block that are not the module's input variables.
MODULE_META_ARGUMENTS = frozenset(
    {"source", "version", "count", "for_each", "depends_on", "providers"}
)

_VARIABLE_REFERENCE = re.compile(r"^var\.([A-Za-z_][A-Za-z0-9_-]*)$")


class NoDefault:
    """The default of a required variable (`default = null` is a default: None)."""

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT = NoDefault()


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    type: str  # the type expression, e.g. list(string), object({a = optional(number, 1)})
    default: Any  # python-hcl2's value, or NO_DEFAULT
    conditions: tuple[str, ...]  # the validation blocks' conditions, in order

    @property
    def required(self) -> bool:
        return self.default is NO_DEFAULT


@dataclass(frozen=True)
class Output:
    name: str
    description: str


@dataclass(frozen=True)
class ModuleCall:
    name: str
    directory: Path  # the called module's directory (local sources only)
    arguments: dict[str, Any]  # input variable -> python-hcl2's value, meta-arguments removed


def expression(value: Any) -> str:
    """Source text of an expression python-hcl2 returned as `${...}` (or as a bare keyword)."""
    text = str(value)
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1]
    return text


def string_literal(value: Any) -> str:
    """The text of a quoted HCL string as python-hcl2 returns it (`'"a \\"b\\""'` -> `a "b"`)."""
    text = str(value)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            decoded: str = json.loads(text)
        except ValueError:
            return text[1:-1]
        return decoded.replace("$${", "${").replace("%%{", "%{")
    return text


def variable_reference(value: Any) -> str | None:
    """The root variable an argument passes as it is (`var.name` -> "name"), else None."""
    if not isinstance(value, str):
        return None
    match = _VARIABLE_REFERENCE.match(expression(value).strip())
    return match.group(1) if match else None


def _label(text: str) -> str:
    return text.strip('"')


def _blocks(directory: Path, kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, body) of every `kind` block of the module's .tf files, in file then line order."""
    found = []
    for path in sorted(directory.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            document = hcl2.load(handle)
        for block in document.get(kind, []):
            for label, body in block.items():
                found.append((_label(label), body))
    return found


def read_variables(directory: Path) -> list[Variable]:
    """The module's `variable` blocks, in declaration order."""
    return [
        Variable(
            name=name,
            description=string_literal(body.get("description", '""')),
            type=expression(body.get("type", "any")),
            default=body.get("default", NO_DEFAULT),
            conditions=tuple(expression(v["condition"]) for v in body.get("validation", [])),
        )
        for name, body in _blocks(directory, "variable")
    ]


def read_outputs(directory: Path) -> list[Output]:
    """The module's `output` blocks, in declaration order."""
    return [
        Output(name=name, description=string_literal(body.get("description", '""')))
        for name, body in _blocks(directory, "output")
    ]


def read_module_calls(directory: Path) -> list[ModuleCall]:
    """The module's calls to local modules (`source = "./..."`), in declaration order."""
    calls = []
    for name, body in _blocks(directory, "module"):
        source = string_literal(body["source"])
        if not source.startswith(("./", "../")):
            continue
        arguments = {
            key: value
            for key, value in body.items()
            if key not in MODULE_META_ARGUMENTS and not key.startswith("__")
        }
        calls.append(ModuleCall(name, (directory / source).resolve(), arguments))
    return calls


def object_attribute_types(type_expression: str) -> dict[str, str]:
    """Attribute -> type of an `object({...})` type expression ({} for any other type)."""
    text = type_expression.strip()
    if not (text.startswith("object({") and text.endswith("})")):
        return {}
    inner = text[len("object({") : -len("})")]
    attributes, depth, start = {}, 0, 0
    for index, char in enumerate(inner + ","):
        if char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
        elif char in ",\n" and depth == 0:
            item = inner[start:index].strip()
            if item:
                key, _, value = item.partition("=")
                attributes[key.strip()] = value.strip()
            start = index + 1
    return attributes
