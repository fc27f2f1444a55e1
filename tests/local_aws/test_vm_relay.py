"""The guest's IMDS relay (local_aws/vm/relay.py): it carries one connection, then exits, even
when the other side never closes."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

RELAY = Path(__file__).resolve().parents[2] / "local_aws" / "vm" / "relay.py"


@pytest.fixture
def server() -> Iterator[socket.socket]:
    listener = socket.create_server(("127.0.0.1", 0))
    yield listener
    listener.close()


def _relay(port: int, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-S", str(RELAY), str(port), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def test_a_request_reaches_the_host_and_its_answer_the_guest(server: socket.socket) -> None:
    def answer() -> None:
        connection, _ = server.accept()
        with connection:
            request = connection.recv(1024)
            connection.sendall(b"answer to " + request)

    threading.Thread(target=answer, daemon=True).start()
    relay = _relay(server.getsockname()[1])

    out, _ = relay.communicate(b"GET /latest/meta-data/", timeout=60)

    assert out == b"answer to GET /latest/meta-data/"
    assert relay.returncode == 0


def test_a_host_that_never_answers_does_not_keep_the_relay_alive(server: socket.socket) -> None:
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
    relay = _relay(server.getsockname()[1], "0.5")

    relay.communicate(b"GET / HTTP/1.1\r\n\r\n", timeout=60)  # the guest side closes at once

    assert relay.returncode == 0
    for connection in held:
        connection.close()
