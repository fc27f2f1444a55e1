"""The configuration file: defaults, refusals that name the key, the README's table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from instance_agent.config import load_config, parse_config, settings_table
from instance_agent.errors import ConfigError

README = Path(__file__).resolve().parents[2] / "instance_agent" / "README.md"


def test_the_keys_terraform_writes_parse_with_defaults_for_the_rest(
    base_config: dict[str, Any],
) -> None:
    config = parse_config(base_config)
    assert config.model.prefix == "models/current/"
    assert config.run.command == ["python3", "/opt/model/score.py"]
    assert config.shutdown_command == ["shutdown", "-h", "now"]
    assert config.storage.sysfs_root == "/sys"
    assert config.imds_endpoint == "http://169.254.169.254"
    assert config.endpoint_url is None
    assert config.copy.max_concurrency is None


def test_an_unknown_key_is_refused_by_its_dotted_name(base_config: dict[str, Any]) -> None:
    base_config["storage"]["mount_piont"] = "/mnt/x"
    with pytest.raises(ConfigError, match=r"storage\.mount_piont: unknown key"):
        parse_config(base_config)


def test_an_unknown_top_level_key_is_refused(base_config: dict[str, Any]) -> None:
    base_config["heartbeat"] = 30
    with pytest.raises(ConfigError, match=r"^heartbeat: unknown key"):
        parse_config(base_config)


def test_a_wrong_type_names_the_key_and_the_expected_type(base_config: dict[str, Any]) -> None:
    base_config["heartbeat_interval_seconds"] = "60"
    with pytest.raises(
        ConfigError, match=r"heartbeat_interval_seconds: expected integer, got \"60\""
    ):
        parse_config(base_config)


def test_a_boolean_is_not_accepted_as_a_number(base_config: dict[str, Any]) -> None:
    base_config["task_wait_seconds"] = True
    with pytest.raises(ConfigError, match="task_wait_seconds: expected integer"):
        parse_config(base_config)


def test_a_wrong_list_item_names_its_index(base_config: dict[str, Any]) -> None:
    base_config["run"]["command"] = ["python3", 7]
    with pytest.raises(ConfigError, match=r"run\.command\[1\]: expected string"):
        parse_config(base_config)


def test_a_missing_required_key_is_named(base_config: dict[str, Any]) -> None:
    del base_config["activity_arn"]
    with pytest.raises(ConfigError, match="activity_arn: required key is missing"):
        parse_config(base_config)


def test_a_model_prefix_without_a_trailing_slash_is_refused(base_config: dict[str, Any]) -> None:
    base_config["model"]["prefix"] = "models/current"
    with pytest.raises(ConfigError, match=r"model\.prefix: .* must end with '/'"):
        parse_config(base_config)


def test_no_command_and_no_image_means_the_models_own_run_sh(base_config: dict[str, Any]) -> None:
    base_config["run"] = {"command": []}

    run = parse_config(base_config).run

    assert (run.command, run.shell_command, run.container_image) == ([], None, None)


def test_a_shell_command_is_one_string(base_config: dict[str, Any]) -> None:
    base_config["run"] = {"shell_command": 'python3 "$MODEL_DIR/score.py"'}

    assert parse_config(base_config).run.shell_command == 'python3 "$MODEL_DIR/score.py"'


def test_a_command_and_a_shell_command_together_are_refused(base_config: dict[str, Any]) -> None:
    base_config["run"] = {"command": ["python3"], "shell_command": "python3"}
    with pytest.raises(ConfigError, match=r"run\.command and run\.shell_command: set one"):
        parse_config(base_config)


def test_a_blank_shell_command_is_refused(base_config: dict[str, Any]) -> None:
    base_config["run"] = {"shell_command": "  "}
    with pytest.raises(ConfigError, match=r"run\.shell_command: must not be blank"):
        parse_config(base_config)


def test_an_empty_python_candidate_list_is_refused(base_config: dict[str, Any]) -> None:
    base_config["run"] = {"command": ["x"], "python_candidates": []}
    with pytest.raises(ConfigError, match=r"run\.python_candidates: give at least one"):
        parse_config(base_config)


def test_warm_paths_must_be_absolute(base_config: dict[str, Any]) -> None:
    base_config["warm"] = {"paths": ["opt/pytorch"]}
    with pytest.raises(ConfigError, match=r"warm\.paths\[0\]: 'opt/pytorch' must be an absolute"):
        parse_config(base_config)


def test_a_container_data_root_must_be_a_runtime_directory(base_config: dict[str, Any]) -> None:
    base_config["container"] = {"data_roots": ["/var/lib"]}
    with pytest.raises(ConfigError, match=r"container\.data_roots\[0\]: '/var/lib' must be"):
        parse_config(base_config)


def test_an_empty_shutdown_command_is_refused(base_config: dict[str, Any]) -> None:
    base_config["shutdown_command"] = []
    with pytest.raises(ConfigError, match="shutdown_command: must not be empty"):
        parse_config(base_config)


def test_a_bad_copy_setting_names_its_key(base_config: dict[str, Any]) -> None:
    base_config["copy"] = {"part_size_mb": 0}
    with pytest.raises(ConfigError, match=r"copy\.part_size_mb"):
        parse_config(base_config)


def test_a_file_that_is_not_json_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"config\.json is not valid JSON"):
        load_config(path)


def test_a_missing_file_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_config(tmp_path / "absent.json")


def test_a_file_round_trips(tmp_path: Path, base_config: dict[str, Any]) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(base_config))
    assert load_config(path).activity_arn == base_config["activity_arn"]


def test_every_setting_has_a_description() -> None:
    for line in settings_table().splitlines()[2:]:
        assert line.rstrip("| ").split("|")[-1].strip(), line


def test_the_readme_settings_table_is_the_one_generated_from_the_code() -> None:
    assert settings_table() in README.read_text(encoding="utf-8"), (
        "instance_agent/README.md is out of date: paste `python -m instance_agent.config`"
    )
