"""The copy settings are defined once: the configuration file's ``copy.*`` keys and the engine's
CopySettings have the same defaults, accept and refuse the same values (the configuration gives
sizes in MiB and KiB, the engine in bytes) and say the same thing when they refuse one."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from instance_agent.config import COPY_KEYS, CopySettingsConfig, parse_config
from instance_agent.errors import ConfigError
from instance_agent.model_copy import CopySettings, MiB

README = Path(__file__).resolve().parents[2] / "instance_agent" / "README.md"
KiB = 1024

# (copy.* key, a value in its unit, accepted): the edges of every range, and past them.
EDGES = [
    ("part_size_mb", 0, False),
    ("part_size_mb", 1, True),
    ("part_size_mb", 1024, True),
    ("part_size_mb", 1025, False),
    ("part_size_mb", None, True),
    ("max_concurrency", 0, False),
    ("max_concurrency", 1, True),
    ("max_concurrency", 256, True),
    ("max_concurrency", 257, False),
    ("max_concurrency", None, True),
    ("slice_size_kib", 63, False),
    ("slice_size_kib", 64, True),
    ("slice_size_kib", 65536, True),
    ("slice_size_kib", 65537, False),
    ("transport", "auto", True),
    ("transport", "http", True),
    ("transport", "boto3", True),
    ("transport", "curl", False),
    ("part_retries", -1, False),
    ("part_retries", 0, True),
    ("retry_base_seconds", 0.0, False),
    ("retry_base_seconds", 0.001, True),
    ("retry_max_seconds", -1.0, False),
    ("retry_max_seconds", 60.0, True),
    ("progress_interval_seconds", 0.0, False),
    ("progress_interval_seconds", 5.0, True),
]


def engine_value(key: str, value: Any) -> tuple[str, Any]:
    name, scale, _unit = COPY_KEYS[key]
    return name, value if value is None else value * scale


def config_refusal(base_config: dict[str, Any], key: str, value: Any) -> str | None:
    try:
        parse_config({**base_config, "copy": {key: value}})
    except ConfigError as error:
        return str(error)
    return None


def engine_refusal(key: str, value: Any) -> str | None:
    name, converted = engine_value(key, value)
    try:
        CopySettings(**{name: converted})
    except ValueError as error:
        return str(error)
    return None


def test_the_configuration_defaults_are_the_engine_defaults(base_config: dict[str, Any]) -> None:
    assert parse_config(base_config).copy.engine_settings() == CopySettings()


def test_the_documented_progress_interval_of_5_seconds_is_the_default_of_both() -> None:
    assert CopySettingsConfig().progress_interval_seconds == 5.0
    assert CopySettings().progress_interval_seconds == 5.0


def test_every_configuration_key_gives_an_engine_setting() -> None:
    engine_fields = {spec.name for spec in dataclasses.fields(CopySettings)}
    config_fields = {spec.name for spec in dataclasses.fields(CopySettingsConfig)}
    assert set(COPY_KEYS) == config_fields
    assert {name for name, _scale, _unit in COPY_KEYS.values()} == engine_fields


@pytest.mark.parametrize(("key", "value", "accepted"), EDGES)
def test_the_configuration_and_the_engine_accept_and_refuse_the_same_values(
    base_config: dict[str, Any], key: str, value: Any, accepted: bool
) -> None:
    assert (config_refusal(base_config, key, value) is None) is accepted
    assert (engine_refusal(key, value) is None) is accepted


@pytest.mark.parametrize(
    ("key", "value", "in_the_configuration", "in_the_engine"),
    [
        (
            "part_size_mb",
            0,
            "copy.part_size_mb is 0: give 1 to 1024 MiB, or null to choose from the model size",
            "part_size is 0: give 65536 to 1073741824 bytes, or None to choose from the model size",
        ),
        (
            "max_concurrency",
            257,
            "copy.max_concurrency is 257: give 1 to 256, or null to choose from the CPU count",
            "max_concurrency is 257: give 1 to 256, or None to choose from the CPU count",
        ),
        (
            "slice_size_kib",
            63,
            "copy.slice_size_kib is 63: give 64 to 65536 KiB",
            "slice_size is 64512: give 65536 to 67108864 bytes",
        ),
        (
            "transport",
            "curl",
            "copy.transport is 'curl': give one of auto, http, boto3",
            "transport is 'curl': give one of auto, http, boto3",
        ),
        (
            "part_retries",
            -1,
            "copy.part_retries is -1: give an integer >= 0",
            "part_retries is -1: give an integer >= 0",
        ),
        (
            "retry_base_seconds",
            0.0,
            "copy.retry_base_seconds is 0.0: give a number of seconds > 0",
            "retry_base_seconds is 0.0: give a number of seconds > 0",
        ),
    ],
)
def test_a_refusal_says_the_same_in_both_each_in_its_own_units(
    base_config: dict[str, Any],
    key: str,
    value: Any,
    in_the_configuration: str,
    in_the_engine: str,
) -> None:
    assert config_refusal(base_config, key, value) == in_the_configuration
    assert engine_refusal(key, value) == in_the_engine


def test_the_configuration_converts_units_only(base_config: dict[str, Any]) -> None:
    copy = {
        "part_size_mb": 32,
        "max_concurrency": 4,
        "slice_size_kib": 256,
        "transport": "boto3",
        "part_retries": 2,
        "retry_base_seconds": 0.5,
        "retry_max_seconds": 2.0,
        "progress_interval_seconds": 1.0,
    }
    settings = parse_config({**base_config, "copy": copy}).copy.engine_settings()
    assert settings == CopySettings(
        part_size=32 * MiB,
        max_concurrency=4,
        slice_size=256 * KiB,
        transport="boto3",
        part_retries=2,
        retry_base_seconds=0.5,
        retry_max_seconds=2.0,
        progress_interval_seconds=1.0,
    )


def test_the_readme_table_shows_the_engine_defaults() -> None:
    text = README.read_text(encoding="utf-8")
    shown = dict(re.findall(r"^\| `copy\.(\w+)` \| [^|]+ \| `([^`]*)` \|", text, re.M))
    assert set(shown) == set(COPY_KEYS)
    engine = CopySettings()
    for key, (name, scale, _unit) in COPY_KEYS.items():
        default = getattr(engine, name)
        in_key_units = default if default is None or scale == 1 else default // scale
        assert shown[key] == json.dumps(in_key_units), key
