"""A fake IMDSv2 for one local instance, on 127.0.0.1, answering from the emulator's EC2.

It follows IMDSv2's session protocol: ``PUT /latest/api/token`` with
``X-aws-ec2-metadata-token-ttl-seconds`` (1-21600) returns a token; every GET must carry it in
``X-aws-ec2-metadata-token`` or gets 401. Answers come from ``DescribeInstances`` at request
time, so tags and placement are whatever the emulator holds, never a copy.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local_aws.server import FAKE_CREDENTIALS

TOKEN_HEADER = "X-aws-ec2-metadata-token"  # noqa: S105 (a header name, not a secret)
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
MAX_TTL_SECONDS = 21600

DescribeInstance = Callable[[], dict[str, Any]]
"""Returns the instance's entry of DescribeInstances (``Reservations[].Instances[]``)."""


class _NotFoundError(Exception):
    pass


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _tags(instance: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}


def identity_document(instance: dict[str, Any], region: str, account_id: str) -> dict[str, Any]:
    """The instance identity document, with the fields real IMDS returns."""
    return {
        "accountId": account_id,
        "architecture": instance.get("Architecture", "x86_64"),
        "availabilityZone": instance["Placement"]["AvailabilityZone"],
        "billingProducts": None,
        "devpayProductCodes": None,
        "marketplaceProductCodes": None,
        "imageId": instance.get("ImageId", ""),
        "instanceId": instance["InstanceId"],
        "instanceType": instance["InstanceType"],
        "kernelId": None,
        "pendingTime": _iso(instance.get("LaunchTime", "")),
        "privateIp": instance.get("PrivateIpAddress", ""),
        "ramdiskId": None,
        "region": region,
        "version": "2017-09-30",
    }


def instance_profile_role(instance_profile_arn: str | None) -> str | None:
    """The name IMDS lists under ``iam/security-credentials/``: the instance profile's (which
    locally stands for its role's), or None without an instance profile."""
    arn = instance_profile_arn or ""
    return arn.rsplit("/", 1)[-1] if "/" in arn else None


def role_credentials(instance: dict[str, Any]) -> str:
    """The instance profile's temporary credentials, as IMDS serves them to the SDKs (and to
    the AWS CLI a real boot uses); the emulator accepts any key."""
    launched = instance.get("LaunchTime")
    updated = _iso(launched) if isinstance(launched, datetime) else ""
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 6 * 3600))
    return json.dumps(
        {
            "Code": "Success",
            "LastUpdated": updated,
            "Type": "AWS-HMAC",
            "AccessKeyId": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "SecretAccessKey": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "Token": FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
            "Expiration": expires,
        },
        indent=2,
    )


def metadata_answer(
    path: str,
    instance: dict[str, Any],
    region: str,
    account_id: str,
    tags_enabled: bool,
    *,
    instance_profile_arn: str | None = None,
) -> str:
    """The body IMDS returns for ``path``; raises _NotFoundError like IMDS's 404."""
    meta = "/latest/meta-data/"
    simple: dict[str, Callable[[], str]] = {
        meta + "instance-id": lambda: instance["InstanceId"],
        meta + "instance-type": lambda: instance["InstanceType"],
        meta + "ami-id": lambda: instance.get("ImageId", ""),
        meta + "local-ipv4": lambda: instance.get("PrivateIpAddress", ""),
        meta + "placement/availability-zone": lambda: instance["Placement"]["AvailabilityZone"],
        meta + "placement/region": lambda: region,
        "/latest/dynamic/instance-identity/document": lambda: json.dumps(
            identity_document(instance, region, account_id), indent=2
        ),
    }
    if path in simple:
        return simple[path]()
    role = instance_profile_role(instance_profile_arn)
    credentials = meta + "iam/security-credentials/"
    if role is not None and path == credentials:
        return role
    if role is not None and path in (credentials + role, credentials + role + "/"):
        return role_credentials(instance)
    tag_prefix = meta + "tags/instance"
    if tags_enabled and (path in (tag_prefix, tag_prefix + "/")):
        return "\n".join(sorted(_tags(instance)))
    if tags_enabled and path.startswith(tag_prefix + "/"):
        key = path[len(tag_prefix) + 1 :]
        tags = _tags(instance)
        if key in tags:
            return tags[key]
    raise _NotFoundError(path)


class FakeImds:
    """One instance's metadata service; ``start()`` binds a free port, ``stop()`` closes it."""

    def __init__(
        self,
        describe_instance: DescribeInstance,
        *,
        region: str,
        account_id: str,
        tags_enabled: Callable[[dict[str, Any]], bool] | None = None,
        instance_profile_arn: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> None:
        self._describe = describe_instance
        self._region = region
        self._account_id = account_id
        self._tags_enabled = tags_enabled or (
            lambda inst: inst.get("MetadataOptions", {}).get("InstanceMetadataTags") == "enabled"
        )
        self._instance_profile_arn = instance_profile_arn or (
            lambda inst: inst.get("IamInstanceProfile", {}).get("Arn")
        )
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """Base URL, as the agent's ``imds_endpoint`` expects (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("FakeImds.endpoint: call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeImds:
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # the agent logs what it asked; per-request lines are noise

            def _reply(self, status: HTTPStatus, body: str = "") -> None:
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                status, body = imds.handle_put(self.path, self.headers.get(TTL_HEADER))
                self._reply(status, body)

            def do_GET(self) -> None:
                status, body = imds.handle_get(self.path, self.headers.get(TOKEN_HEADER))
                self._reply(status, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            # A short poll interval: stop() waits for it, once per instance.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-imds",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def handle_put(self, path: str, ttl_header: str | None) -> tuple[HTTPStatus, str]:
        if path != "/latest/api/token":
            return HTTPStatus.NOT_FOUND, ""
        try:
            ttl = int(ttl_header or "")
        except ValueError:
            return HTTPStatus.BAD_REQUEST, f"{TTL_HEADER} must be an integer 1-{MAX_TTL_SECONDS}"
        if not 1 <= ttl <= MAX_TTL_SECONDS:
            return HTTPStatus.BAD_REQUEST, f"{TTL_HEADER} must be an integer 1-{MAX_TTL_SECONDS}"
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + ttl
        return HTTPStatus.OK, token

    def handle_get(self, path: str, token: str | None) -> tuple[HTTPStatus, str]:
        with self._lock:
            expiry = self._tokens.get(token or "")
        if expiry is None or expiry < time.monotonic():
            # IMDSv2 with HttpTokens=required: no (valid) token, no answer.
            return HTTPStatus.UNAUTHORIZED, ""
        instance = self._describe()
        try:
            body = metadata_answer(
                path.split("?", 1)[0],
                instance,
                self._region,
                self._account_id,
                self._tags_enabled(instance),
                # Looked up only when asked: it may cost the emulator a call.
                instance_profile_arn=(
                    self._instance_profile_arn(instance) if "/iam/" in path else None
                ),
            )
        except _NotFoundError:
            return HTTPStatus.NOT_FOUND, ""
        return HTTPStatus.OK, body


def describe_from_ec2(ec2: Any, instance_id: str) -> DescribeInstance:
    """A DescribeInstance reading ``instance_id`` from an EC2 client at each call."""

    def describe() -> dict[str, Any]:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        instance: dict[str, Any] = reservations[0]["Instances"][0]
        return instance

    return describe
