"""The nginx endpoint: its configuration, and a real nginx serving GET, HEAD and Range."""

import http.client
import os
import subprocess
import time
from pathlib import Path

import pytest

from bench.nginx import NginxServer, find_nginx, free_port, render_config
from bench.processes import ProcessGuard

NGINX = find_nginx()
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


def render(tmp_path: Path, user: str | None = None) -> str:
    return render_config(root=tmp_path / "serve", port=8123, run_dir=tmp_path / "run", user=user)


def test_config_listens_on_loopback_only(tmp_path: Path) -> None:
    assert "listen 127.0.0.1:8123;" in render(tmp_path)


def test_config_serves_the_root_directory_path_style(tmp_path: Path) -> None:
    assert f"root {tmp_path / 'serve'};" in render(tmp_path)


def test_config_allows_only_get_and_head(tmp_path: Path) -> None:
    assert "limit_except GET { deny all; }" in render(tmp_path)


def test_config_keeps_pid_logs_and_temp_files_in_the_run_directory(tmp_path: Path) -> None:
    config = render(tmp_path)
    run_dir = tmp_path / "run"
    assert f"pid {run_dir / 'nginx.pid'};" in config
    assert f"error_log {run_dir / 'error.log'} warn;" in config
    assert f"client_body_temp_path {run_dir / 'client_body'};" in config
    assert "/var/" not in config


def test_config_stays_in_the_foreground_so_the_pid_is_the_master(tmp_path: Path) -> None:
    assert "daemon off;" in render(tmp_path)


def test_config_sets_the_worker_user_only_when_given(tmp_path: Path) -> None:
    assert "user " not in render(tmp_path)
    assert "user root;" in render(tmp_path, user="root")


def test_config_refuses_a_relative_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be absolute"):
        render_config(root=Path("serve"), port=8123, run_dir=tmp_path)


def test_config_refuses_a_port_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="port 70000 is outside 1-65535"):
        render_config(root=tmp_path, port=70000, run_dir=tmp_path)


@needs_nginx
def test_nginx_accepts_the_rendered_config(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = run_dir / "nginx.conf"
    user = "root" if os.geteuid() == 0 else None
    config.write_text(render_config(root=tmp_path, port=free_port(), run_dir=run_dir, user=user))
    done = subprocess.run(
        [str(NGINX), "-t", "-p", f"{run_dir}/", "-e", str(run_dir / "e.log"), "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def served(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(100_000)
    (tmp_path / "serve" / "bucket" / "models").mkdir(parents=True)
    (tmp_path / "serve" / "bucket" / "models" / "obj.bin").write_bytes(data)
    return tmp_path, data


def _request(port: int, method: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, "/bucket/models/obj.bin", headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@needs_nginx
def test_nginx_serves_ranges_heads_and_ignores_signatures(served: tuple[Path, bytes]) -> None:
    tmp_path, data = served
    user = "root" if os.geteuid() == 0 else None
    with ProcessGuard() as guard:
        server = NginxServer(
            guard, binary=str(NGINX), root=tmp_path / "serve", run_dir=tmp_path / "run", user=user
        )
        server.start()
        signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=bench/fake"}
        status, _headers, body = _request(server.port, "GET", {**signed, "Range": "bytes=10-19"})
        assert (status, body) == (206, data[10:20])
        status, headers, body = _request(server.port, "HEAD", signed)
        assert (status, headers["Content-Length"], body) == (200, str(len(data)), b"")
        status, _headers, _body = _request(server.port, "PUT", signed)
        assert status == 403


@needs_nginx
def test_nginx_is_stopped_by_pid_with_its_workers(served: tuple[Path, bytes]) -> None:
    tmp_path, _data = served
    user = "root" if os.geteuid() == 0 else None
    with ProcessGuard() as guard:
        server = NginxServer(
            guard, binary=str(NGINX), root=tmp_path / "serve", run_dir=tmp_path / "run", user=user
        )
        server.start()
        master = server.pid
        assert master is not None
        workers = _children(master)
        deadline = time.monotonic() + 5
        while not workers and time.monotonic() < deadline:  # the master forks after it listens
            time.sleep(0.05)
            workers = _children(master)
        assert workers
    for pid in [master, *workers]:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True
