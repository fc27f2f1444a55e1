"""How the copy's byte ranges travel, and what S3's answers mean for the copy.

The GETs go, by default, on each worker's own keep-alive ``http.client`` connection to a URL that
the caller's boto3 client presigned with SigV4 (its endpoint, addressing style, region,
credentials and session token): no botocore machinery per request. The manifest, empty files and
every decision that needs botocore stay on the client; when the client cannot be bypassed (moto's
mock or another ``before-send`` hook, a proxy, SigV2 presigning, presigning on the legacy global
endpoint) the GETs go through it, and a presigned GET answered with a redirect moves the rest of
the copy onto it (``transport``: ``auto``, ``http`` or ``boto3``).

The caller's client should be built with :func:`client_config` (SigV4 presigning, and
``max_pool_connections >= max_concurrency`` for the parts that go through it).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from instance_agent.errors import ModelChecksumMismatch, ModelCopyFailed, ModelNotFound
from run_contract.s3_layout import NOT_FOUND_CODES

if TYPE_CHECKING:
    import http.client

    from botocore.config import Config
    from mypy_boto3_s3 import S3Client

    from instance_agent.model_copy.plan import FileTask, Part

# One logger for the whole copy engine, as before it was a package: the lines keep their name.
logger = logging.getLogger("instance_agent.model_copy")

# A presigned URL is used at once; a short life limits what a leaked log line could do.
PRESIGN_SECONDS = 900
# Answers to a presigned GET that the boto3 client handles (it follows S3's region redirects).
_REDIRECT_CODES = frozenset(
    {"PermanentRedirect", "TemporaryRedirect", "AuthorizationHeaderMalformed"}
)
_RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
    }
)


def client_config(
    max_concurrency: int, *, connect_timeout: float = 10, read_timeout: float = 60
) -> Config:
    """A botocore Config for the copy's client: enough pooled connections, standard retries,
    and SigV4 for presigned URLs too (botocore presigns S3 URLs with SigV2 unless told, which
    the regions opened since 2014 refuse), so the copy's lean HTTP path can be used."""
    from botocore.config import Config  # lazy import

    return Config(
        signature_version="s3v4",
        max_pool_connections=max_concurrency,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": 3, "mode": "standard"},
        tcp_keepalive=True,
    )


class RetryablePartError(Exception):
    """A part failed in a way another attempt can fix."""


class LeanPathRefused(Exception):
    """The endpoint redirects the presigned GETs; the client's own requests can follow it."""


class RangeReader:
    """Opens the ranged GETs of one copy, on a worker's own connection (the lean path) or
    through the client, and turns S3's answers into the engine's terms: a body to stream,
    :class:`RetryablePartError`, :class:`LeanPathRefused`, or the agent error naming the file."""

    def __init__(self, s3: S3Client, bucket: str, transport: str, probe_key: str) -> None:
        from botocore.exceptions import ClientError  # lazy import

        self.s3 = s3
        self.bucket = bucket
        self.client_error = ClientError
        self.transient = transient_errors()
        self.http = lean_http(s3, transport, bucket, probe_key)
        self.lean_refused = False
        self._lock = threading.Lock()

    def connections(self) -> Connections | None:
        """A worker's own connections for the lean path, or None when the client does the GETs."""
        return Connections(self.http) if self.http is not None else None

    def open(self, part: Part, connections: Connections | None) -> Body:
        if connections is not None and not self.lean_refused:
            return self._open_http(part, connections)
        return self._open_boto3(part)

    def refuse_lean_path(self, refused: LeanPathRefused) -> None:
        """The remaining GETs go through the client (logged once)."""
        with self._lock:
            first = not self.lean_refused
            self.lean_refused = True
        if first:
            logger.warning(
                "the endpoint answered a presigned GET with %s (e.g. the bucket is in another "
                "region than the client's): the remaining GETs go through the boto3 client, "
                "which follows S3's redirects",
                refused,
            )

    def check_empty_object(self, task: FileTask) -> None:
        """An empty file has no part to GET; still prove the object exists and is empty."""
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=task.key)
        except self.client_error as error:
            self._raise_client_error(task, error, "0-0")
        if head.get("ContentLength", 0) != 0:
            raise ModelChecksumMismatch(
                f"{task.entry.path}: s3://{self.bucket}/{task.key} is "
                f"{head.get('ContentLength')} bytes, the manifest says 0: re-publish the model"
            )

    def _open_boto3(self, part: Part) -> Body:
        byte_range = f"{part.start}-{part.start + part.length - 1}"
        try:
            response = self.s3.get_object(
                Bucket=self.bucket, Key=part.file.key, Range=f"bytes={byte_range}"
            )
        except self.client_error as error:
            self._raise_client_error(part.file, error, byte_range)
        except self.transient as error:
            raise RetryablePartError(f"{type(error).__name__}: {error}") from error
        body = Boto3Body(response["Body"])
        try:
            total = str(response.get("ContentRange", "")).rpartition("/")[2]
            self._check_size(part, total, response.get("ContentLength"))
        except BaseException:
            body.finish(reuse=False)
            raise
        return body

    def _open_http(self, part: Part, connections: Connections) -> Body:
        """The lean path: one GET on this worker's own keep-alive connection to a URL that
        botocore presigned (its endpoint, addressing style, region, credentials and session
        token), so no botocore machinery runs per request."""
        byte_range = f"{part.start}-{part.start + part.length - 1}"
        url = self.s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": part.file.key},
            ExpiresIn=PRESIGN_SECONDS,
        )
        try:
            response = connections.get(url, {"Range": f"bytes={byte_range}"})
        except self.transient as error:
            raise RetryablePartError(f"{type(error).__name__}: {error}") from error
        body = HttpBody(response, connections)
        try:
            self._check_http_response(part, response, byte_range)
        except self.transient as error:
            body.finish(reuse=False)
            raise RetryablePartError(f"{type(error).__name__}: {error}") from error
        except BaseException:
            body.finish(reuse=False)
            raise
        return body

    def _check_http_response(
        self, part: Part, response: http.client.HTTPResponse, byte_range: str
    ) -> None:
        status = response.status
        if status >= 300:
            code = _error_code(_read_error_body(response))
            if status in (301, 307) or code in _REDIRECT_CODES:
                raise LeanPathRefused(f"HTTP {status} {code}")
            self._raise_error(part.file, code, status, f"HTTP {status} {code}", byte_range)
        if status != 206 and not (status == 200 and part.start == 0):
            raise RetryablePartError(f"HTTP {status} to a ranged GET")
        total = (response.getheader("Content-Range") or "").rpartition("/")[2]
        length = response.getheader("Content-Length")
        self._check_size(part, total, int(length) if length and length.isdigit() else None)

    def _check_size(self, part: Part, total: str, length: int | None) -> None:
        size = part.file.entry.size
        if total.isdigit() and int(total) != size:
            raise ModelChecksumMismatch(
                f"{part.file.entry.path}: s3://{self.bucket}/{part.file.key} is {total} bytes, "
                f"the manifest says {size}: the object changed since it was published; "
                "re-publish the model"
            )
        if length not in (None, part.length):
            raise RetryablePartError(f"asked for {part.length} bytes, the response has {length}")

    def _raise_client_error(self, task: FileTask, error: Any, byte_range: str) -> NoReturn:
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        self._raise_error(task, code, status, str(error), byte_range)

    def _raise_error(
        self, task: FileTask, code: str, status: object, message: str, byte_range: str
    ) -> NoReturn:
        url = f"s3://{self.bucket}/{task.key}"
        if code in NOT_FOUND_CODES or code == "NoSuchBucket" or (status == 404 and not code):
            raise ModelNotFound(
                f"{url} ({task.entry.path}) is listed in the manifest but missing: "
                "re-publish the model"
            ) from None
        if code == "InvalidRange" or status == 416:
            raise ModelChecksumMismatch(
                f"{task.entry.path}: bytes {byte_range} are past the end of {url}, the manifest "
                f"says it is {task.entry.size} bytes: re-publish the model"
            ) from None
        if code in _RETRYABLE_CODES or (isinstance(status, int) and status >= 500):
            raise RetryablePartError(f"{code or status}: {message}")
        raise ModelCopyFailed(f"{url} bytes {byte_range}: {message}")


class Body:
    """One response body being streamed: ``readinto`` a slice, then ``finish`` it."""

    def readinto(self, view: memoryview) -> int:
        raise NotImplementedError

    def finish(self, *, reuse: bool) -> None:
        """``reuse``: the whole body was read, so its connection can serve the next GET."""
        raise NotImplementedError


class Boto3Body(Body):
    """A botocore StreamingBody. With a real connection it wraps urllib3, which wraps
    ``http.client``: ``readinto`` on the latter lands the bytes from the socket straight in our
    buffer. Anything else (moto's in-process responses) is read the generic way."""

    def __init__(self, body: Any) -> None:
        self.body = body
        self.raw = getattr(body, "_raw_stream", None)
        fp = getattr(self.raw, "_fp", None)
        usable = fp is not None and hasattr(fp, "readinto") and not getattr(self.raw, "chunked", 0)
        self.fp = fp if usable else None

    def readinto(self, view: memoryview) -> int:
        if self.fp is not None:
            return int(self.fp.readinto(view))
        data = self.body.read(len(view))
        view[: len(data)] = data
        return len(data)

    def finish(self, *, reuse: bool) -> None:
        if reuse and self.fp is not None and self.fp.isclosed():
            self.raw.release_conn()  # type: ignore[union-attr]  # back to urllib3's pool for the next part
        elif not reuse:
            self.body.close()


class HttpBody(Body):
    def __init__(self, response: http.client.HTTPResponse, connections: Connections) -> None:
        self.response = response
        self.connections = connections

    def readinto(self, view: memoryview) -> int:
        return self.response.readinto(view)

    def finish(self, *, reuse: bool) -> None:
        if not (reuse and self.response.isclosed()):
            self.connections.discard()


@dataclass(frozen=True)
class HttpOptions:
    """What the lean path takes from the caller's client: its timeouts and TLS verification."""

    connect_timeout: float
    read_timeout: float
    verify: bool | str


class Connections:
    """One worker's keep-alive connection (per host) for the lean path."""

    def __init__(self, options: HttpOptions) -> None:
        self.options = options
        self.key: tuple[str, str] | None = None
        self.connection: http.client.HTTPConnection | None = None

    def get(self, url: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if self.connection is None or self.key != key:
            self.discard()
            self.connection = self._connect(*key)
            self.key = key
        target = parts.path + ("?" + parts.query if parts.query else "")
        try:
            self.connection.request("GET", target, headers=headers)
            return self.connection.getresponse()
        except BaseException:
            self.discard()
            raise

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        timeout = max(self.options.connect_timeout, self.options.read_timeout)
        import http.client  # lazy import

        if scheme == "http":
            return http.client.HTTPConnection(netloc, timeout=timeout)
        import ssl  # lazy import: only for https endpoints

        verify = self.options.verify
        context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
        if verify is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(netloc, timeout=timeout, context=context)

    def discard(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.connection = None
        self.key = None

    def close(self) -> None:
        self.discard()


def _read_error_body(response: http.client.HTTPResponse) -> str:
    return response.read(64 * 1024).decode("utf-8", "replace")


def _error_code(body: str) -> str:
    match = re.search(r"<Code>([^<]{1,100})</Code>", body)
    return match.group(1) if match else ""


def lean_http(s3: Any, transport: str, bucket: str, key: str) -> HttpOptions | None:
    """The lean path's options, or None when the GETs must go through the client.

    ``auto`` bypasses the client only when nothing is lost: it presigns with SigV4 (see
    :func:`client_config`) on a regional endpoint, it goes through no proxy, and nothing
    intercepts its requests (moto's mock or any other ``before-send`` hook must see the GETs; a
    hook that says it is disabled, as moto's does outside ``mock_aws``, does not count). The
    lean path keeps the client's timeouts and TLS verification (its CA bundle, or none).
    """
    if transport == "boto3":
        return None
    config = s3.meta.config
    session = getattr(getattr(s3, "_endpoint", None), "http_session", None)
    verify = getattr(session, "_verify", True)
    options = HttpOptions(
        connect_timeout=float(getattr(config, "connect_timeout", 60) or 60),
        read_timeout=float(getattr(config, "read_timeout", 60) or 60),
        verify=verify if isinstance(verify, bool | str) else True,
    )
    if transport == "http":
        return options
    # Presigning is local (no request); the URL says which signature and host the client uses.
    url = str(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}))
    host = urlsplit(url).hostname or ""
    if "X-Amz-Signature=" not in url:
        reason = "the client does not presign with SigV4 (build it with client_config)"
    elif (host == "s3.amazonaws.com" or host.endswith(".s3.amazonaws.com")) and getattr(
        s3.meta, "region_name", None
    ) not in ("us-east-1", "aws-global"):
        # botocore presigns virtual-hosted URLs on the legacy global endpoint, which buckets of
        # newer regions do not answer; its own requests go to the regional endpoint.
        reason = (
            f"presigned URLs would use the legacy global endpoint {host}; a client with "
            "s3={'addressing_style': 'virtual'} (bucket names without dots) or 'path' presigns "
            "regional URLs"
        )
    elif getattr(config, "proxies", None) or _environment_proxies():
        reason = "a proxy is configured"
    elif _intercepted(s3):
        reason = "a before-send hook (e.g. moto) intercepts the client's requests"
    else:
        return options
    logger.info("model copy: GETs go through the boto3 client: %s", reason)
    return None


def _environment_proxies() -> bool:
    import urllib.request  # lazy import

    return bool({"http", "https"} & set(urllib.request.getproxies()))


def _intercepted(s3: Any) -> bool:
    try:
        handlers = list(s3.meta.events._emitter._handlers.prefix_search("before-send.s3.GetObject"))
    except AttributeError:
        return True  # cannot tell: stay on the client
    return any(getattr(handler, "enabled", True) for handler in handlers)


def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors of a connection or stream that another attempt on a new connection can fix."""
    import http.client  # lazy import

    from botocore.exceptions import (  # lazy import
        ConnectionError as BotoConnectionError,
    )
    from botocore.exceptions import (  # lazy import
        IncompleteReadError,
        ReadTimeoutError,
        ResponseStreamingError,
    )
    from urllib3.exceptions import HTTPError as Urllib3Error  # lazy import

    return (
        BotoConnectionError,
        ReadTimeoutError,
        IncompleteReadError,
        ResponseStreamingError,
        Urllib3Error,
        http.client.HTTPException,
        # Connection refused or reset, timeouts, DNS and TLS errors of the lean path.
        OSError,
    )
