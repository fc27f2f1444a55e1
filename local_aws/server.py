"""The local AWS: moto's server on a free port of 127.0.0.1, in this process.

In-process on purpose: the project's moto workarounds patch moto's backends, and only a server
running in the same interpreter sees those patches (and the faults of ``local_aws/faults.py``).
The launcher's code runs in the local Lambda runtime, a process per invocation
(``moto_workarounds.lambda_runtime``); child processes (the agent, the scoring command) reach the
server over HTTP through the environment returned by ``LocalAws.child_env``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import logging
import os
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
from botocore.config import Config

from local_aws.moto_workarounds import AWS_ACTIVITY_POLL_SECONDS, start_moto_server

DEFAULT_REGION = "eu-west-1"
# moto's default account; ARNs built locally must use it to match what moto returns.
ACCOUNT_ID = "123456789012"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Long polls (GetActivityTask) against the emulator must not hit botocore's 60 s default.
_CLIENT_CONFIG = Config(read_timeout=70, retries={"mode": "standard", "max_attempts": 3})


@dataclasses.dataclass(frozen=True)
class LocalAws:
    """A running local AWS: where it listens and how to talk to it."""

    endpoint_url: str
    region: str = DEFAULT_REGION
    account_id: str = ACCOUNT_ID

    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for a child process: every AWS SDK call goes to the emulator."""
        env = dict(os.environ if base is None else base)
        # A developer's real profile or credentials must never leak into a local run.
        for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE"):
            env.pop(key, None)
        env.update(FAKE_CREDENTIALS)
        env.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                # Credentials come from the environment; never probe 169.254.169.254.
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        return env

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` bound to the emulator, with fake credentials."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
            config=_CLIENT_CONFIG,
        )

    def reset(self) -> None:
        """Forget every resource in the emulator (moto's own reset endpoint)."""
        url = urllib.parse.urlsplit(self.endpoint_url)
        connection = http.client.HTTPConnection(url.netloc, timeout=10)
        try:
            connection.request("POST", "/moto-api/reset")
            connection.getresponse().read()
        finally:
            connection.close()


@contextlib.contextmanager
def local_aws_server(
    region: str = DEFAULT_REGION,
    *,
    activity_poll_seconds: float = AWS_ACTIVITY_POLL_SECONDS,
    reset: bool = True,
) -> Iterator[LocalAws]:
    """Start moto on 127.0.0.1 (the OS picks a free port), patched; stop it on exit.

    ``moto_workarounds.start_moto_server`` applies the project's patches (the one place they
    live) before the server starts. Port 0 lets the kernel choose, so two runs on one machine
    never race for a port.
    """
    # werkzeug logs every request to stderr; the demo's progress lines must stay readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = start_moto_server(
        host="127.0.0.1", port=0, activity_poll_seconds=activity_poll_seconds
    )
    local = LocalAws(endpoint_url=server.endpoint_url, region=region)
    try:
        yield local
    finally:
        try:
            if reset:
                # moto's backends are process-global: the next server must start empty.
                with contextlib.suppress(OSError):
                    local.reset()
        finally:
            server.stop()
