"""The benchmark's agent client is the one the agent builds for itself, path-style for nginx."""

from typing import Any

import pytest

from bench import client_main
from instance_agent.model_copy import client_config


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # As bench.cli.client_environment gives every child: fake keys, nginx ignores signatures.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "bench")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "bench")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_the_agent_client_has_the_agents_client_configuration() -> None:
    config: Any = client_main.agent_client("http://127.0.0.1:8123", 4).meta.config
    expected: Any = client_config(4)
    for name in ("signature_version", "max_pool_connections", "connect_timeout", "tcp_keepalive"):
        assert getattr(config, name) == getattr(expected, name), name
    assert config.retries["mode"] == "standard"
    assert config.s3 == {"addressing_style": "path"}


def test_the_agent_client_presigns_path_style_urls_on_the_bench_endpoint() -> None:
    client = client_main.agent_client("http://127.0.0.1:8123", None)
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": "bench", "Key": "models/bench/model.bin"}
    )
    assert url.startswith("http://127.0.0.1:8123/bench/models/bench/model.bin?")
    assert "X-Amz-Signature=" in url
