"""A tiny path-style S3 read endpoint on 127.0.0.1: GET/HEAD with Range, from a directory.

Test-only. It ignores signatures (like nginx serving a directory) and serves object bodies with
``os.sendfile``, so it is fast enough to sanity-check copy throughput (moto's server copies the
whole object on every ranged GET: about 30 MB/s). It can also inject faults reliably: drop the
connection halfway through a body, or answer with a 5xx/throttling error, a given number of times
for a given key.

Run standalone for a throughput check::

    python -m tests.instance_agent.model_copy.ranged_server --root DIR --port 8765
"""

from __future__ import annotations

import argparse
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")

_ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>{message}</Message></Error>"
)


@dataclass
class Faults:
    """Faults to inject, keyed by object key; each count is consumed one request at a time."""

    drop_mid_body: dict[str, int] = field(default_factory=dict)
    error_status: dict[str, list[int]] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    # (key, query string) of every request, e.g. a presigned URL's signature parameters.
    queries: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_drop(self, key: str) -> bool:
        with self.lock:
            left = self.drop_mid_body.get(key, 0)
            if left:
                self.drop_mid_body[key] = left - 1
            return bool(left)

    def take_status(self, key: str) -> int | None:
        with self.lock:
            statuses = self.error_status.get(key)
            return statuses.pop(0) if statuses else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    root: Path
    faults: Faults

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up mid-body (a copy abandoning a corrupt part) is expected here.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _object_path(self) -> tuple[str, Path | None]:
        # Path style: /<bucket>/<key>; the bucket is a directory under root.
        path = unquote(urlsplit(self.path).path).lstrip("/")
        bucket, _, key = path.partition("/")
        target = (self.server.root / bucket / key).resolve()
        if not key or self.server.root.resolve() not in target.parents or not target.is_file():
            return key, None
        return key, target

    def _error(self, status: int, code: str, message: str) -> None:
        body = _ERROR_BODY.format(code=code, message=message).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        key, target = self._object_path()
        faults = self.server.faults
        with faults.lock:
            faults.requests.append((self.command, key, self.headers.get("Range", "")))
            faults.queries.append((key, urlsplit(self.path).query))
        status = faults.take_status(key)
        if status is not None:
            code = {503: "SlowDown", 403: "AccessDenied", 301: "PermanentRedirect"}.get(
                status, "InternalError"
            )
            self._error(status, code, "injected fault")
            return
        if target is None:
            self._error(404, "NoSuchKey", "The specified key does not exist.")
            return
        size = target.stat().st_size
        start, end = 0, size - 1
        status = 200
        match = _RANGE.fullmatch(self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            if start >= size:
                self._error(416, "InvalidRange", "The requested range is not satisfiable")
                return
            status = 206
        length = max(end - start + 1, 0)
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "HEAD" or length == 0:
            return
        self.wfile.flush()
        drop = faults.take_drop(key)
        to_send = length // 2 if drop else length
        with target.open("rb") as body:
            offset = start
            while to_send > 0:
                sent = os.sendfile(self.connection.fileno(), body.fileno(), offset, to_send)
                if sent == 0:
                    break
                offset += sent
                to_send -= sent
        if drop:
            # A dropped connection: the client gets half a body, then EOF.
            self.close_connection = True
            self.connection.shutdown(2)


@contextmanager
def serve(root: Path, port: int = 0) -> Iterator[tuple[str, Faults]]:
    """Serve ``root`` (one directory per bucket) on 127.0.0.1; yields (endpoint_url, faults)."""
    server = _Server(("127.0.0.1", port), _Handler)
    server.root = root
    server.faults = Faults()
    thread = threading.Thread(target=server.serve_forever, name="ranged-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.faults
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="one directory per bucket")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with serve(args.root, args.port) as (url, _faults):
        print(f"serving {args.root} at {url}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
