"""The launch template's user data, read as cloud-init would: the cloud-config and its files.

Both local machines start from it: the process backend takes the agent configuration that
``write_files`` would write; the VM backend hands the whole document to a real cloud-init.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs pinned; safe_load only

from instance_agent.config import DEFAULT_CONFIG_PATH

AGENT_CONFIG_PATH = str(DEFAULT_CONFIG_PATH)


class UserDataError(ValueError):
    """The instance's user data does not carry the agent configuration the agent needs."""


def decode_user_data(user_data_b64: str) -> str:
    """EC2's base64 UserData attribute as the cloud-config text it holds."""
    try:
        text = base64.b64decode(user_data_b64, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise UserDataError(f"UserData: not base64 of UTF-8 text ({exc})") from exc
    if not text.startswith("#cloud-config"):
        raise UserDataError("UserData: not a cloud-config document (no '#cloud-config' first line)")
    return text


def _write_files(text: str) -> list[Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserDataError(f"UserData: cloud-config is not valid YAML: {exc}") from exc
    files = document.get("write_files") if isinstance(document, dict) else None
    if not isinstance(files, list):
        raise UserDataError("UserData: cloud-config has no write_files list")
    return files


def encoded_files(text: str) -> list[str]:
    """The base64 `content` of every `write_files` entry encoded b64, as written in the text."""
    return [
        str(entry["content"])
        for entry in _write_files(text)
        if isinstance(entry, dict) and entry.get("encoding") in ("b64", "base64")
    ]


def written_file(text: str, path: str) -> str:
    """The content ``write_files`` writes to ``path`` (decoded from b64 if so encoded)."""
    for entry in _write_files(text):
        if not isinstance(entry, dict) or entry.get("path") != path:
            continue
        content = str(entry.get("content", ""))
        encoding = entry.get("encoding", "text/plain")
        if encoding in ("b64", "base64"):
            return base64.b64decode(content).decode("utf-8")
        if encoding != "text/plain":
            raise UserDataError(
                f"UserData: write_files[{path}].encoding {encoding!r} is not supported here "
                "(use b64 or plain text)"
            )
        return content
    raise UserDataError(f"UserData: write_files has no entry for {path}")


def agent_config_from_cloud_config(text: str) -> dict[str, Any]:
    """The JSON object the user data writes to /etc/instance-agent/config.json."""
    content = written_file(text, AGENT_CONFIG_PATH)
    try:
        config: Any = json.loads(content)
    except json.JSONDecodeError as exc:
        raise UserDataError(f"UserData: {AGENT_CONFIG_PATH} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise UserDataError(f"UserData: {AGENT_CONFIG_PATH} is not a JSON object")
    return config


def agent_config_from_user_data(user_data_b64: str) -> dict[str, Any]:
    """The agent configuration of EC2's base64 UserData attribute."""
    return agent_config_from_cloud_config(decode_user_data(user_data_b64))
