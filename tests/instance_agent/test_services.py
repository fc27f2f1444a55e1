"""How the agent builds its S3 client."""

from __future__ import annotations

from typing import Any

import pytest

from instance_agent.config import parse_config
from instance_agent.model_copy import MAX_CONCURRENCY
from instance_agent.services import default_services, make_s3_client


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Presigning needs credentials; fake ones, nothing is sent.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _s3_settings(client: Any) -> dict[str, Any]:
    settings: dict[str, Any] = getattr(client.meta.config, "s3", None) or {}
    return settings


def test_on_aws_the_client_uses_regional_virtual_hosted_urls(base_config: dict[str, Any]) -> None:
    config = parse_config({**base_config, "region": "eu-west-1", "endpoint_url": None})
    client = make_s3_client(config.region, config.endpoint_url)
    assert _s3_settings(client)["addressing_style"] == "virtual"
    url = client.generate_presigned_url("get_object", Params={"Bucket": "models", "Key": "m/a"})
    assert url.startswith("https://models.s3.eu-west-1.amazonaws.com/m/a?")


def test_a_custom_endpoint_keeps_botocores_addressing(base_config: dict[str, Any]) -> None:
    config = parse_config({**base_config, "endpoint_url": "http://127.0.0.1:5000"})
    client = make_s3_client(config.region, config.endpoint_url)
    assert _s3_settings(client).get("addressing_style") is None
    url = client.generate_presigned_url("get_object", Params={"Bucket": "models", "Key": "m/a"})
    assert url.startswith("http://127.0.0.1:5000/models/m/a?")


def test_a_path_style_client_presigns_path_style_urls_on_its_endpoint() -> None:
    client = make_s3_client("us-east-1", "http://127.0.0.1:8123", addressing_style="path")
    assert _s3_settings(client)["addressing_style"] == "path"
    url = client.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": "m/a"})
    assert url.startswith("http://127.0.0.1:8123/bench/m/a?")


def test_the_client_pools_a_connection_per_stream_and_presigns_with_sigv4() -> None:
    config: Any = make_s3_client("eu-west-1", None, 12).meta.config
    assert (config.max_pool_connections, config.signature_version) == (12, "s3v4")
    default: Any = make_s3_client("eu-west-1", None).meta.config
    assert default.max_pool_connections == MAX_CONCURRENCY


def test_the_agent_builds_its_client_from_its_configuration(
    base_config: dict[str, Any],
) -> None:
    config = parse_config({**base_config, "copy": {"max_concurrency": 7}})
    services = default_services(config, lambda reason: None)
    assert services.s3.meta.config.max_pool_connections == 7
    assert services.s3.meta.region_name == config.region
