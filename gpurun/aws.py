"""boto3 clients for the command line: one session with --profile/--region/--endpoint-url."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10)


class Clients:
    """Clients created on first use from one session."""

    def __init__(
        self, *, region: str | None, profile: str | None, endpoint_url: str | None
    ) -> None:
        self._session = boto3.Session(profile_name=profile, region_name=region)
        self._endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}

    @property
    def region(self) -> str | None:
        return self._session.region_name

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self._endpoint_url,
                config=_CONFIG,
            )
        return self._clients[service]
