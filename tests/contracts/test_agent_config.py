"""The agent's configuration keys: Terraform's ``local.agent_config`` builds the object, the
local AWS hands the one Terraform evaluates into the user data to its instances
(local_aws/terraform_values.py), the agent's dataclasses read it, and docs/design.md shows it.
All of them must name the same keys; the local AWS's object is Terraform's, value for value,
with the local AWS's identifiers."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import Any, get_type_hints

import hcl2
import pytest

from instance_agent.config import AgentConfig, parse_config
from local_aws import terraform_values
from local_aws.deployment import Deployment, LocalSettings
from local_aws.user_data import agent_config_from_user_data

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


ACCOUNT = "123456789012"


def local_deployment(settings: LocalSettings) -> Deployment:
    """The identifiers a local deploy would have created."""
    return Deployment(
        settings=settings,
        activity_arn=f"arn:aws:states:{settings.region}:{ACCOUNT}:activity:local-activity",
        bucket_name="local-bucket",
    )


def local_agent_config(
    settings: LocalSettings | None = None, root: Path | None = None, cache: Path | None = None
) -> dict[str, Any]:
    """The agent configuration the local AWS's instances get (from their user data)."""
    settings = settings or LocalSettings()
    values = terraform_values.plan(
        settings, account_id=ACCOUNT, root=root or terraform_values.TERRAFORM_DIR, cache_dir=cache
    )
    return agent_config_from_user_data(values.local_user_data(local_deployment(settings)))


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


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
def test_the_local_aws_hands_its_instances_terraforms_agent_config(
    settings: LocalSettings,
) -> None:
    planned = terraform_values.plan(settings, account_id=ACCOUNT).agent_config()
    local = local_agent_config(settings)
    deployment = local_deployment(settings)

    # Only the identifiers differ: the placeholders Terraform planned with become the local ones.
    assert local["activity_arn"] == deployment.activity_arn
    assert local["model"]["bucket"] == deployment.bucket_name
    assert {**local, "activity_arn": "", "model": {**local["model"], "bucket": ""}} == {
        **planned,
        "activity_arn": "",
        "model": {**planned["model"], "bucket": ""},
    }
    assert "placeholder" not in json.dumps(local)
    assert local["region"] == settings.region
    assert local["max_runtime_seconds"] == settings.max_runtime_seconds


def test_a_key_added_to_terraforms_agent_config_reaches_the_local_instances(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "terraform"
    shutil.copytree(ROOT / "terraform", tree, ignore=shutil.ignore_patterns(".terraform*"))
    main_tf = tree / "main.tf"
    main_tf.write_text(
        main_tf.read_text().replace(
            "    root_volume_gib = var.root_volume_size_gib\n",
            "    root_volume_gib = var.root_volume_size_gib\n    added_key = 1\n",
        )
    )

    local = local_agent_config(root=tree, cache=tmp_path / "evaluations")

    assert key_paths(local) - key_paths(local_agent_config()) == {"added_key"}
    assert local["added_key"] == 1


def test_the_agent_reads_every_key_terraform_sets() -> None:
    unknown = key_paths(terraform_agent_config()) - agent_key_paths()
    assert not unknown, f"keys Terraform sets that the agent does not define: {sorted(unknown)}"


def test_the_design_shows_the_keys_terraform_sets() -> None:
    assert key_paths(design_agent_config()) == key_paths(terraform_agent_config())


def test_the_agent_accepts_the_object_the_local_aws_builds() -> None:
    parse_config(local_agent_config())


def test_the_agent_accepts_the_design_example() -> None:
    parse_config(design_agent_config())


# ---- the checks can fail -----------------------------------------------------------------


def test_a_key_missing_on_one_side_is_named() -> None:
    terraform = key_paths({"metrics": {"namespace": "x"}, "root_volume_gib": 1})
    local = key_paths({"metrics": {}})

    assert terraform - local == {"metrics.namespace", "root_volume_gib"}


@pytest.mark.parametrize("misspelt", [{"heartbeat_seconds": 60}, {"storage": {"mountpoint": "/"}}])
def test_the_agent_defines_no_key_it_was_not_written_for(misspelt: dict[str, Any]) -> None:
    assert key_paths(misspelt) - agent_key_paths()
