"""The launch template's user data, rendered by Terraform: the agent's systemd unit it writes."""

from __future__ import annotations

import pytest

from local_aws import terraform_values
from local_aws.deployment import LocalSettings
from local_aws.user_data import written_file

AGENT_UNIT = "/etc/systemd/system/instance-agent.service"


def directives(unit: str, section: str) -> list[tuple[str, str]]:
    """``(key, value)`` of each line of ``[section]``, in order (systemd allows repeated keys)."""
    found: list[tuple[str, str]] = []
    current = None
    for raw in unit.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section:
            key, _, value = line.partition("=")
            found.append((key.strip(), value.strip()))
    return found


@pytest.fixture(scope="module")
def service() -> list[tuple[str, str]]:
    rendered = terraform_values.plan(LocalSettings(), account_id="123456789012").user_data()
    return directives(written_file(rendered, AGENT_UNIT), "Service")


def test_stopping_the_agent_ends_every_process_of_its_cgroup(
    service: list[tuple[str, str]],
) -> None:
    # Explicit, not systemd's default: the model and anything it left behind die with the agent.
    assert ("KillMode", "control-group") in service


def test_the_agent_waits_for_its_instance_profile_credentials_at_boot(
    service: list[tuple[str, str]],
) -> None:
    # botocore's defaults (1 s, one attempt) missed IMDS on a busy real boot: NoCredentialsError.
    assert ("Environment", "AWS_METADATA_SERVICE_TIMEOUT=5") in service
    assert ("Environment", "AWS_METADATA_SERVICE_NUM_ATTEMPTS=3") in service
