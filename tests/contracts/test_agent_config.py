"""The agent's configuration keys: Terraform's ``local.agent_config`` builds the object, the
local AWS builds the same object for its instances, the agent's dataclasses read it, and
docs/design.md shows it. All four must name the same keys; the local AWS's object must be the
one Terraform itself evaluates into the user data (terraform_tools/evaluate.py), value for
value."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any, get_type_hints

import hcl2
import pytest

from instance_agent.config import AgentConfig, parse_config
from local_aws.deployment import LocalSettings, agent_config
from terraform_tools import evaluate as tf_evaluate

ROOT = Path(__file__).resolve().parents[2]
MAIN_TF = ROOT / "terraform/main.tf"
DESIGN = ROOT / "docs/design.md"


def terraform_agent_config() -> dict[str, Any]:
    """``local.agent_config`` of terraform/main.tf, values as HCL expression strings."""
    with MAIN_TF.open(encoding="utf-8") as handle:
        parsed = hcl2.load(handle)
    for block in parsed["locals"]:
        if "agent_config" in block:
            config: dict[str, Any] = block["agent_config"]
            return config
    raise AssertionError("terraform/main.tf has no local.agent_config")


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key of a nested object, dotted (``storage.mount_point``)."""
    if not isinstance(value, dict):
        return set()
    paths: set[str] = set()
    for key, item in value.items():
        path = f"{prefix}{key}"
        paths.add(path)
        paths |= key_paths(item, path + ".")
    return paths


def agent_key_paths(cls: type[Any] = AgentConfig, prefix: str = "") -> set[str]:
    """Every key the agent's configuration dataclasses accept."""
    hints = get_type_hints(cls)
    paths: set[str] = set()
    for spec in dataclasses.fields(cls):
        path = f"{prefix}{spec.name}"
        paths.add(path)
        if dataclasses.is_dataclass(hints[spec.name]):
            paths |= agent_key_paths(hints[spec.name], path + ".")
    return paths


def design_agent_config() -> dict[str, Any]:
    """The JSON example under docs/design.md's "The agent's configuration"."""
    text = DESIGN.read_text(encoding="utf-8")
    section = text.split("## The agent's configuration", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block is not None, "docs/design.md: no JSON block under The agent's configuration"
    parsed: dict[str, Any] = json.loads(block.group(1))
    return parsed


def local_agent_config() -> dict[str, Any]:
    return agent_config(
        LocalSettings(), activity_arn="arn:aws:states:eu-west-1:1:activity:a", bucket="b"
    )


SETTINGS = {
    "defaults": LocalSettings(),
    "every_knob_turned": LocalSettings(
        name="other-project",
        region="us-east-1",
        model_prefix="models/v2/",
        model_command=("python3", "-m", "score"),
        container_image="public.ecr.aws/acme/model:1.2",
        max_runtime_seconds=600,
        allow_root_volume_fallback=True,
        heartbeat_timeout_seconds=60,
        task_wait_seconds=120,
        root_volume_size_gib=200,
    ),
}


def evaluated_agent_config(root: Path, settings: LocalSettings, cache: Path) -> dict[str, Any]:
    variables = tf_evaluate.root_variables(settings)
    return tf_evaluate.evaluate(variables, root=root, cache=cache).agent_config()


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
def test_the_local_aws_builds_the_agent_config_terraform_evaluates(settings: LocalSettings) -> None:
    terraform = evaluated_agent_config(ROOT / "terraform", settings, tf_evaluate.EVALUATIONS)
    # The ids are the mocks' (terraform/tests/mocks); every other value is Terraform's.
    local = agent_config(
        settings, activity_arn=terraform["activity_arn"], bucket=terraform["model"]["bucket"]
    )

    assert local == terraform


def test_a_key_added_to_terraforms_agent_config_is_caught(tmp_path: Path) -> None:
    tree = tmp_path / "terraform"
    shutil.copytree(ROOT / "terraform", tree, ignore=shutil.ignore_patterns(".terraform*"))
    main_tf = tree / "main.tf"
    main_tf.write_text(
        main_tf.read_text().replace(
            "    root_volume_gib = var.root_volume_size_gib\n",
            "    root_volume_gib = var.root_volume_size_gib\n    added_key = 1\n",
        )
    )

    terraform = evaluated_agent_config(tree, LocalSettings(), tmp_path / "evaluations")

    assert key_paths(terraform) - key_paths(local_agent_config()) == {"added_key"}


def test_the_agent_reads_every_key_terraform_sets() -> None:
    unknown = key_paths(terraform_agent_config()) - agent_key_paths()
    assert not unknown, f"keys Terraform sets that the agent does not define: {sorted(unknown)}"


def test_the_design_shows_the_keys_terraform_sets() -> None:
    assert key_paths(design_agent_config()) == key_paths(terraform_agent_config())


def test_the_agent_accepts_the_object_the_local_aws_builds() -> None:
    parse_config(local_agent_config())


def test_the_agent_accepts_the_design_example() -> None:
    parse_config(design_agent_config())


def test_the_heartbeat_interval_is_the_same_fraction_of_the_timeout_on_both_sides() -> None:
    expression = terraform_agent_config()["heartbeat_interval_seconds"]
    match = re.fullmatch(
        r"\$\{max\((\d+), floor\(var\.heartbeat_timeout_seconds / (\d+)\)\)\}", expression
    )
    assert match, f"unexpected heartbeat formula in terraform/main.tf: {expression}"
    floor_seconds, divisor = int(match.group(1)), int(match.group(2))
    for timeout in (10, 19, 20, 21, 59, 60, 240, 301, 3600):
        local = agent_config(
            LocalSettings(heartbeat_timeout_seconds=timeout), activity_arn="a", bucket="b"
        )
        assert local["heartbeat_interval_seconds"] == max(
            floor_seconds, math.floor(timeout / divisor)
        )


# ---- the checks can fail -----------------------------------------------------------------


def test_a_key_missing_on_one_side_is_named() -> None:
    terraform = key_paths({"metrics": {"namespace": "x"}, "root_volume_gib": 1})
    local = key_paths({"metrics": {}})

    assert terraform - local == {"metrics.namespace", "root_volume_gib"}


@pytest.mark.parametrize("misspelt", [{"heartbeat_seconds": 60}, {"storage": {"mountpoint": "/"}}])
def test_the_agent_defines_no_key_it_was_not_written_for(misspelt: dict[str, Any]) -> None:
    assert key_paths(misspelt) - agent_key_paths()
