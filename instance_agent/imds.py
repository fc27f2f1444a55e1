"""The instance's identity from IMDSv2: a session token (PUT), three metadata reads, and the
launch time from the identity document (optional: the cold-start figure, not the run, needs it)."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import urllib.error
import urllib.request

from instance_agent.errors import AgentFailure

TOKEN_TTL_SECONDS = 21600
IDENTITY_DOCUMENT = "latest/dynamic/instance-identity/document"

log = logging.getLogger("instance_agent.imds")


class IdentityUnavailable(AgentFailure):
    """IMDS did not answer; without the instance id the agent cannot tell its task apart."""


@dataclasses.dataclass(frozen=True)
class InstanceIdentity:
    instance_id: str
    instance_type: str
    availability_zone: str
    # The document's pendingTime (epoch seconds): when RunInstances put the instance in pending.
    launched_at: float | None = None


# A busy first minute of boot can miss one IMDS call (a real boot under load timed out the
# token PUT at 2 s, and the run was lost): retry a refused or timed-out call, not an answer.
ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 1.0


def _request(request: urllib.request.Request, timeout: float) -> str:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _request_once(request, timeout)
        except _Unreachable:
            if attempt == ATTEMPTS:
                raise
            time.sleep(RETRY_PAUSE_SECONDS * attempt)
    raise AssertionError("unreachable")


class _Unreachable(IdentityUnavailable):
    """No answer (refused, timed out): worth another attempt."""


def _request_once(request: urllib.request.Request, timeout: float) -> str:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:
        raise IdentityUnavailable(
            f"IMDS {request.get_method()} {request.full_url} answered HTTP {exc.code}; "
            "check the launch template's metadata options (HttpTokens, hop limit)"
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise _Unreachable(
            f"IMDS {request.get_method()} {request.full_url} failed within {timeout} s "
            f"({ATTEMPTS} attempts): "
            f"{getattr(exc, 'reason', exc)}; check imds_endpoint and that IMDS is enabled"
        ) from exc
    return body.decode("utf-8").strip()


def fetch_identity(endpoint: str, timeout: float) -> InstanceIdentity:
    """Read instance id, type and availability zone with an IMDSv2 session token."""
    base = endpoint.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise IdentityUnavailable(f"imds_endpoint: {endpoint!r} must be an http(s) URL")
    token = _request(
        urllib.request.Request(  # noqa: S310 - the scheme is checked above
            f"{base}/latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
        ),
        timeout,
    )

    def read(path: str, root: str = "latest/meta-data/") -> str:
        value = _request(
            urllib.request.Request(  # noqa: S310 - the scheme is checked above
                f"{base}/{root}{path}",
                headers={"X-aws-ec2-metadata-token": token},
            ),
            timeout,
        )
        if not value:
            raise IdentityUnavailable(f"IMDS returned an empty {path}")
        return value

    identity = InstanceIdentity(
        instance_id=read("instance-id"),
        instance_type=read("instance-type"),
        availability_zone=read("placement/availability-zone"),
    )
    try:
        launched_at = pending_time(read(IDENTITY_DOCUMENT, root=""))
    except IdentityUnavailable as exc:
        log.warning("no launch time: %s", exc)
        launched_at = None
    return dataclasses.replace(identity, launched_at=launched_at)


def pending_time(document_text: str) -> float | None:
    """The identity document's ``pendingTime`` ("2026-12-01T06:00:03Z") as epoch seconds."""
    from datetime import datetime

    try:
        value = json.loads(document_text).get("pendingTime")
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError, TypeError):
        log.warning("the identity document has no readable pendingTime")
        return None
