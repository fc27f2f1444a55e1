"""The local deploy creates, in the emulator, what terraform/ declares (its values:
tests/local_aws/test_terraform_values.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from local_aws.deployment import Deployment, LocalSettings, deploy
from local_aws.server import LocalAws

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployed(local_aws_server_for_module: LocalAws) -> Iterator[tuple[LocalAws, Deployment]]:
    settings = LocalSettings(heartbeat_timeout_seconds=8, execution_timeout_seconds=120)
    yield local_aws_server_for_module, deploy(local_aws_server_for_module, settings)
    local_aws_server_for_module.reset()


def test_launcher_function_runs_the_real_handler(deployed: tuple[LocalAws, Deployment]) -> None:
    aws, deployment = deployed
    response = aws.client("lambda").invoke(
        FunctionName=deployment.launcher_function_name,
        Payload=json.dumps({"action": "sweep"}).encode(),
    )
    assert "FunctionError" not in response, response["Payload"].read()
    assert json.loads(response["Payload"].read()) == {"terminated": [], "already_gone": []}
