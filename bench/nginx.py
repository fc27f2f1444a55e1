"""nginx as a local S3 endpoint: a directory served path-style (``/<bucket>/<key>``).

nginx answers GET, HEAD and Range requests on static files and ignores the signature headers,
so every S3 client can use it with fake credentials. It is the fastest object server one can
run on the machine, which makes it an upper bound for any of them: what is left is the client.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from bench.processes import ProcessGuard

# The temp paths of every module Debian's nginx builds; each must be writable, so they live in
# the run directory instead of /var/lib/nginx.
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class NginxError(RuntimeError):
    """nginx is missing, refused its configuration, or did not start listening."""


def render_config(
    *, root: Path, port: int, run_dir: Path, workers: int | str = "auto", user: str | None = None
) -> str:
    """The nginx.conf that serves ``root`` on ``127.0.0.1:port``, keeping every file in run_dir.

    ``user`` is needed only when nginx starts as root: its workers then read the files as that
    user instead of ``nobody`` (who may not be able to enter the project's directories).
    """
    if not root.is_absolute() or not run_dir.is_absolute():
        raise ValueError(f"nginx root {root} and run_dir {run_dir} must be absolute paths")
    if not 1 <= port <= 65535:
        raise ValueError(f"nginx port {port} is outside 1-65535")
    user_line = f"user {user};\n" if user else ""
    temp_lines = "".join(f"    {name}_temp_path {run_dir / name};\n" for name in _TEMP_PATHS)
    return (
        f"# Written by python -m bench: serves {root} path-style on 127.0.0.1:{port}.\n"
        "daemon off;\n"
        "master_process on;\n"
        f"worker_processes {workers};\n"
        f"{user_line}"
        f"pid {run_dir / 'nginx.pid'};\n"
        f"error_log {run_dir / 'error.log'} warn;\n"
        "events {\n"
        "    worker_connections 1024;\n"
        "}\n"
        "http {\n"
        "    access_log off;\n"
        "    default_type application/octet-stream;\n"
        "    types {}\n"
        # sendfile: the file goes from page cache to the socket without a copy in nginx.
        "    sendfile on;\n"
        "    tcp_nopush on;\n"
        "    keepalive_timeout 120s;\n"
        "    keepalive_requests 100000;\n"
        f"{temp_lines}"
        "    server {\n"
        f"        listen 127.0.0.1:{port};\n"
        f"        root {root};\n"
        "        location / {\n"
        # GET also allows HEAD; anything else (PUT, DELETE, POST) is refused with 403.
        "            limit_except GET { deny all; }\n"
        "        }\n"
        "    }\n"
        "}\n"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def find_nginx() -> str | None:
    """nginx's path: on PATH, or in /usr/sbin (not on a non-root user's PATH on Debian)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


class NginxServer:
    """One nginx master (and its workers) started as a child of the guard, stopped by PID."""

    def __init__(
        self, guard: ProcessGuard, *, binary: str, root: Path, run_dir: Path, user: str | None
    ) -> None:
        self._guard = guard
        self._binary = binary
        self._root = root
        self._run_dir = run_dir
        self._user = user
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 10.0) -> None:
        self._run_dir.mkdir(parents=True, exist_ok=True)
        for name in _TEMP_PATHS:
            (self._run_dir / name).mkdir(exist_ok=True)
        self.port = free_port()
        config = self._run_dir / "nginx.conf"
        config.write_text(
            render_config(root=self._root, port=self.port, run_dir=self._run_dir, user=self._user)
        )
        error_log = self._run_dir / "error.log"
        # -e: the error log nginx uses before it has read its configuration.
        argv = [self._binary, "-p", f"{self._run_dir}/", "-e", str(error_log), "-c", str(config)]
        self._process = self._guard.start(argv, stderr=self._run_dir / "stderr.log")
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise NginxError(
                    f"nginx exited with {self._process.returncode} at start: "
                    f"{self._log_tail()} (config: {config})"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise NginxError(
            f"nginx did not listen on 127.0.0.1:{self.port} within {ready_timeout:.0f} s: "
            f"{self._log_tail()}"
        )

    def stop(self) -> None:
        if self._process is not None:
            self._guard.stop(self._process)
            self._process = None

    def _log_tail(self) -> str:
        parts = []
        for name in ("stderr.log", "error.log"):
            path = self._run_dir / name
            if path.exists():
                parts.append(path.read_text(errors="replace").strip()[-1000:])
        return " | ".join(p for p in parts if p) or "no output"
