"""Which transport the copy's GETs take: the lean HTTP path on presigned URLs when nothing is
lost by bypassing the client, else the boto3 client itself. Presigning is local, so no request
is made here."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from instance_agent.model_copy import client_config
from instance_agent.model_copy.transport import lean_http

BUCKET = "model-bucket"
KEY = "models/current/manifest.json"


def _client(region: str, *, verify: bool | str | None = None, **s3: Any) -> Any:
    config = client_config(2)
    if s3:
        config = config.merge(Config(s3=s3))  # type: ignore[arg-type]
    return boto3.client(
        "s3",
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        aws_session_token="token",
        config=config,
        verify=verify,
    )


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_regional_virtual_hosted_client_uses_the_lean_path() -> None:
    assert lean_http(_client("eu-west-1", addressing_style="virtual"), "auto", BUCKET, KEY)


def test_path_style_client_uses_the_lean_path() -> None:
    assert lean_http(_client("ap-southeast-3", addressing_style="path"), "auto", BUCKET, KEY)


def test_us_east_1_client_with_default_addressing_uses_the_lean_path() -> None:
    assert lean_http(_client("us-east-1"), "auto", BUCKET, KEY)


def test_client_that_would_presign_on_the_legacy_global_endpoint_keeps_the_gets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("INFO", logger="instance_agent.model_copy"):
        assert lean_http(_client("eu-west-1"), "auto", BUCKET, KEY) is None
    assert "legacy global endpoint model-bucket.s3.amazonaws.com" in caplog.text


def test_client_under_moto_keeps_the_gets() -> None:
    with mock_aws():
        assert lean_http(_client("us-east-1"), "auto", BUCKET, KEY) is None


def test_transport_boto3_always_keeps_the_gets() -> None:
    assert lean_http(_client("us-east-1"), "boto3", BUCKET, KEY) is None


def test_transport_http_is_used_even_for_a_sigv2_client() -> None:
    sigv2 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    assert lean_http(sigv2, "http", BUCKET, KEY)


def test_lean_path_keeps_the_clients_timeouts() -> None:
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="a",
        aws_secret_access_key="b",
        config=client_config(2, connect_timeout=3, read_timeout=7),
    )
    options = lean_http(client, "auto", BUCKET, KEY)
    assert options is not None
    assert (options.connect_timeout, options.read_timeout) == (3, 7)


@pytest.mark.parametrize("verify", [False, "/etc/ssl/certs/ca-certificates.crt"])
def test_lean_path_keeps_the_clients_tls_verification(verify: bool | str) -> None:
    options = lean_http(_client("us-east-1", verify=verify), "auto", BUCKET, KEY)
    assert options is not None
    assert options.verify == verify
