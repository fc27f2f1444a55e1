"""IMDSv2 against a tiny local HTTP server."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from instance_agent import imds as imds_module
from instance_agent.imds import IdentityUnavailable, fetch_identity

TOKEN = "token-123"
METADATA = {
    "/latest/meta-data/instance-id": "i-0123456789abcdef0",
    "/latest/meta-data/instance-type": "g5.xlarge",
    "/latest/meta-data/placement/availability-zone": "eu-west-1b",
}


class FakeImds(BaseHTTPRequestHandler):
    def do_PUT(self) -> None:
        if self.path != "/latest/api/token" or not self.headers.get(
            "X-aws-ec2-metadata-token-ttl-seconds"
        ):
            self.send_error(400)
            return
        self._reply(TOKEN)

    def do_GET(self) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            self.send_error(401)  # IMDSv2 refuses a request without the session token
            return
        if self.path not in METADATA:
            self.send_error(404)
            return
        self._reply(METADATA[self.path])

    def _reply(self, body: str) -> None:
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def imds() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeImds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_identity_is_read_with_a_session_token(imds: str) -> None:
    identity = fetch_identity(imds, timeout=2)
    assert identity.instance_id == "i-0123456789abcdef0"
    assert identity.instance_type == "g5.xlarge"
    assert identity.availability_zone == "eu-west-1b"


def test_an_unreachable_endpoint_fails_fast_with_a_clear_error() -> None:
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    with pytest.raises(IdentityUnavailable, match="check imds_endpoint"):
        fetch_identity("http://127.0.0.1:9", timeout=0.5)


def test_an_http_error_names_the_request_and_the_status(imds: str) -> None:
    METADATA.pop("/latest/meta-data/instance-type")
    try:
        with pytest.raises(IdentityUnavailable, match=r"instance-type answered HTTP 404"):
            fetch_identity(imds, timeout=2)
    finally:
        METADATA["/latest/meta-data/instance-type"] = "g5.xlarge"


def test_an_endpoint_that_is_not_http_is_refused() -> None:
    with pytest.raises(IdentityUnavailable, match="imds_endpoint"):
        fetch_identity("file:///etc/passwd", timeout=1)


def test_an_imds_call_that_gets_no_answer_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def once(request: Any, timeout: float) -> str:
        calls.append(request.full_url)
        if len(calls) == 1:
            raise imds_module._Unreachable("timed out")
        return "answer"

    monkeypatch.setattr(imds_module, "_request_once", once)
    monkeypatch.setattr(imds_module, "RETRY_PAUSE_SECONDS", 0.0)

    assert imds_module._request(urllib.request.Request("http://imds/x"), 1.0) == "answer"
    assert len(calls) == 2


def test_an_imds_http_error_is_not_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def once(request: Any, timeout: float) -> str:
        calls.append(request.full_url)
        raise imds_module.IdentityUnavailable("HTTP 401")

    monkeypatch.setattr(imds_module, "_request_once", once)

    with pytest.raises(imds_module.IdentityUnavailable):
        imds_module._request(urllib.request.Request("http://imds/x"), 1.0)
    assert len(calls) == 1
