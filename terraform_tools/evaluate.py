"""What Terraform itself evaluates for a module with given variables: the planned resources.

A copy of the module (under `.cache/terraform/evaluate/`, so nothing is written into the
repository's tree) gets one `terraform test` file: a `command = plan` run per variable set,
against the shared mocks of its tests/mocks (plus `mock_data` defaults given here).
`terraform test -json -verbose` prints each plan; every resource's planned values are read from
it. Identifiers AWS would assign (ARNs, ids) are the mocks'; every value computed from
variables is Terraform's own.

Results are cached on disk, keyed on the variables, the mock data and the module's content.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terraform_tools import offline as tf_offline

EVALUATIONS = tf_offline.CACHE / "evaluate"


class EvaluationError(RuntimeError):
    """Terraform could not plan the module; the message carries its output."""


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


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".terraform" not in path.parts:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _hcl_block(kind: str, label: str, body: Mapping[str, Any], indent: str) -> str:
    # JSON values are HCL expressions too (HCL accepts `"key": value` in object constructors).
    inner = "".join(
        f"{indent}  {name} = {json.dumps(value)}\n" for name, value in sorted(body.items())
    )
    head = f'{kind} "{label}"' if label else kind
    return f"{indent}{head} {{\n{inner}{indent}}}\n"


def _test_file(
    runs: Mapping[str, Mapping[str, Any]],
    mock_data: Mapping[str, Any],
    overrides: Mapping[str, Mapping[str, Any]],
) -> str:
    """One `command = plan` run per variable set; `mock_data` (data source type -> defaults)
    overrides the shared mocks' defaults, e.g. the local AWS's region and account, and
    `overrides` (resource address -> values) the computed values of single resources."""
    inline = "".join(
        f'  mock_data "{kind}" {{\n    defaults = {json.dumps(defaults)}\n  }}\n'
        for kind, defaults in sorted(mock_data.items())
    )
    text = (
        "# Written by terraform_tools/evaluate.py.\n"
        'mock_provider "aws" {\n  override_during = plan\n  source = "./tests/mocks"\n'
        + inline
        + "}\n"
        'mock_provider "archive" {\n  override_during = plan\n  source = "./tests/mocks"\n}\n'
    )
    for address, values in sorted(overrides.items()):
        text += (
            f"override_resource {{\n  target = {address}\n  override_during = plan\n"
            f"  values = {json.dumps(values)}\n}}\n"
        )
    for name, variables in runs.items():
        text += f'run "{name}" {{\n  command = plan\n'
        text += _hcl_block("variables", "", variables, "  ")
        text += "}\n"
    return text


def _key(
    variables: Mapping[str, Any],
    mock_data: Mapping[str, Any],
    rewrites: Sequence[tuple[str, str]],
    overrides: Mapping[str, Mapping[str, Any]],
    tree: str,
) -> str:
    material = json.dumps(
        {
            "variables": variables,
            "mock_data": mock_data,
            "rewrites": list(rewrites),
            "overrides": overrides,
        },
        sort_keys=True,
    )
    return hashlib.sha256((material + tree).encode()).hexdigest()[:20]


def evaluate(
    variables: Mapping[str, Any],
    root: Path = tf_offline.TERRAFORM_DIR,
    cache: Path = EVALUATIONS,
    *,
    mock_data: Mapping[str, Any] | None = None,
    rewrites: Sequence[tuple[str, str]] = (),
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Evaluation:
    """Plan `root` (a copy of it) with `variables` over the mocks; the planned resources.
    `rewrites` are (text, replacement) pairs applied to the copy's .tf files, each of which
    must find its text; `overrides` set computed values of single resources (by address)."""
    (evaluation,) = evaluate_many(
        [variables], root, cache, mock_data=mock_data, rewrites=rewrites, overrides=overrides
    )
    return evaluation


def evaluate_many(
    variable_sets: Sequence[Mapping[str, Any]],
    root: Path = tf_offline.TERRAFORM_DIR,
    cache: Path = EVALUATIONS,
    *,
    mock_data: Mapping[str, Any] | None = None,
    rewrites: Sequence[tuple[str, str]] = (),
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Evaluation]:
    """`evaluate` for each variable set, in order; the ones not cached are planned by one
    `terraform test` (one run block each), which costs little more than planning one."""
    data = dict(mock_data or {})
    fixed = {address: dict(values) for address, values in (overrides or {}).items()}
    tree = _tree_digest(root)
    every = [dict(variables) for variables in variable_sets]
    keys = [_key(variables, data, rewrites, fixed, tree) for variables in every]
    cache.mkdir(parents=True, exist_ok=True)
    # One planner at a time per cache (pytest-xdist workers often want the same plan): the
    # second waits, then finds the first one's results.
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = {
            key: variables
            for key, variables in zip(keys, every, strict=True)
            if not (cache / f"{key}.json").exists()
        }
        if missing:
            _plan(
                missing, mock_data=data, rewrites=rewrites, overrides=fixed, root=root, cache=cache
            )
    return [Evaluation(json.loads((cache / f"{key}.json").read_text())) for key in keys]


def _rewrite(tree: Path, rewrites: Sequence[tuple[str, str]]) -> None:
    found = dict.fromkeys((text for text, _ in rewrites), 0)
    for path in sorted(tree.rglob("*.tf")):
        original = content = path.read_text(encoding="utf-8")
        for text, replacement in rewrites:
            found[text] += content.count(text)
            content = content.replace(text, replacement)
        if content != original:
            path.write_text(content, encoding="utf-8")
    missing = [text for text, count in found.items() if count == 0]
    if missing:
        raise EvaluationError(f"rewrites found nowhere in the module's .tf files: {missing}")


def _plan(
    runs: Mapping[str, Mapping[str, Any]],
    *,
    mock_data: Mapping[str, Any],
    rewrites: Sequence[tuple[str, str]],
    overrides: Mapping[str, Mapping[str, Any]],
    root: Path,
    cache: Path,
) -> None:
    work = cache / f"work.{os.getpid()}" / "terraform"
    shutil.rmtree(work.parent, ignore_errors=True)
    try:
        shutil.copytree(root, work, ignore=shutil.ignore_patterns(".terraform*", "*.tftest.hcl"))
        _rewrite(work, rewrites)
        named = {f"plan_{key}": variables for key, variables in runs.items()}
        (work / "tests" / "evaluate.tftest.hcl").write_text(_test_file(named, mock_data, overrides))
        env = tf_offline.environment(work.parent / "data", tf_offline.install())
        done = tf_offline.init(work, env)
        if done.returncode == 0:
            done = tf_offline.run(
                ["test", "-json", "-verbose", "-no-color", "-filter=tests/evaluate.tftest.hcl"],
                work,
                env,
            )
        plans = _planned_resources(done.stdout)
        if done.returncode != 0 or set(plans) != set(named):
            raise EvaluationError(_errors(done.stdout) or done.stderr or done.stdout[-4000:])
        for name, resources in plans.items():
            target = cache / f"{name.removeprefix('plan_')}.json"
            partial = target.with_suffix(".tmp")
            partial.write_text(json.dumps(resources))
            partial.replace(target)
    finally:
        shutil.rmtree(work.parent, ignore_errors=True)


def _messages(stdout: str) -> list[dict[str, Any]]:
    messages = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            messages.append(json.loads(line))
    return messages


def _planned_resources(stdout: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Run name -> its planned resources (address -> planned values)."""
    plans = {}
    for message in _messages(stdout):
        if message.get("type") == "test_plan":
            plans[message["@testrun"]] = {
                change["address"]: change["change"]["after"]
                for change in message["test_plan"].get("resource_changes", [])
                if change["change"].get("after") is not None
            }
    return plans


def _errors(stdout: str) -> str:
    return "\n".join(
        f"{m['diagnostic']['summary']}: {m['diagnostic'].get('detail', '')}"
        for m in _messages(stdout)
        if m.get("type") == "diagnostic" and m["diagnostic"].get("severity") == "error"
    )
