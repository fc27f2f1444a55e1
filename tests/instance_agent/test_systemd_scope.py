"""The model's systemd scope: when it is used, its command line, and that it is stopped after the
model (systemd-run and systemctl are stand-ins here: no test machine runs systemd)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from instance_agent import systemd_scope
from instance_agent.errors import ModelCommandFailed
from instance_agent.runner import ModelCommand, run_model
from instance_agent.systemd_scope import (
    own_service,
    scope_available,
    scope_command,
    scope_name,
    stop_scope,
)

UNDER_SYSTEMD = {"INVOCATION_ID": "0123456789abcdef0123456789abcdef"}


@pytest.fixture
def systemd_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run-systemd-system"
    path.mkdir()
    return path


def available(
    environ: dict[str, str], runtime_dir: Path, *, euid: int = 0, version: int = 255
) -> bool:
    return scope_available(environ, runtime_dir=runtime_dir, euid=euid, version=lambda: version)


def test_a_root_systemd_service_runs_the_model_in_a_scope(systemd_dir: Path) -> None:
    assert available(UNDER_SYSTEMD, systemd_dir)


def test_without_systemd_as_pid_1_the_process_group_is_the_fallback(tmp_path: Path) -> None:
    assert not available(UNDER_SYSTEMD, tmp_path / "absent")


def test_outside_a_systemd_unit_the_process_group_is_the_fallback(systemd_dir: Path) -> None:
    # A login shell or the local emulator on a systemd machine: no INVOCATION_ID.
    assert not available({}, systemd_dir)


def test_without_root_the_process_group_is_the_fallback(systemd_dir: Path) -> None:
    assert not available(UNDER_SYSTEMD, systemd_dir, euid=1000)


def test_a_systemd_too_old_for_the_scopes_properties_is_not_used(systemd_dir: Path) -> None:
    # Amazon Linux 2's systemd 219.
    assert not available(UNDER_SYSTEMD, systemd_dir, version=219)


def test_the_scope_command_is_systemd_run_then_the_model_argv() -> None:
    command = scope_command(
        "instance-agent-model-run-1.scope",
        ["python3", "--weird-first-arg", "score.py"],
        stop_timeout_seconds=10,
        bound_to="instance-agent.service",
        description="Model command of the instance agent's run",
    )

    assert command == [
        "systemd-run",
        "--scope",
        "--collect",
        "--quiet",
        "--unit=instance-agent-model-run-1.scope",
        "--description=Model command of the instance agent's run",
        "--property=KillMode=control-group",
        "--property=TimeoutStopSec=10000ms",
        "--property=BindsTo=instance-agent.service",
        "--",
        "python3",
        "--weird-first-arg",
        "score.py",
    ]


def test_a_scope_with_no_service_to_bind_to_has_no_binds_to() -> None:
    command = scope_command(
        "u.scope", ["m"], stop_timeout_seconds=1, bound_to=None, description="d"
    )

    assert not [arg for arg in command if arg.startswith("--property=BindsTo")]


def test_a_zero_grace_still_gives_the_scope_a_finite_stop_timeout() -> None:
    # TimeoutStopSec=0 means "no timeout": a scope that ignores SIGTERM would never be killed.
    command = scope_command(
        "u.scope", ["m"], stop_timeout_seconds=0, bound_to=None, description="d"
    )

    assert "--property=TimeoutStopSec=1ms" in command


def test_the_scope_is_named_after_the_run_in_unit_name_characters() -> None:
    assert scope_name("weekly-2026-12-01T06:00 é/x") == (
        "instance-agent-model-weekly-2026-12-01T06-00---x.scope"
    )


@pytest.mark.parametrize(
    ("cgroup", "service"),
    [
        ("0::/system.slice/instance-agent.service\n", "instance-agent.service"),
        (
            "12:pids:/system.slice/instance-agent.service\n"
            "1:name=systemd:/system.slice/instance-agent.service\n",
            "instance-agent.service",
        ),
        ("0::/user.slice/user-1000.slice/session-3.scope\n", None),
        ("0::/\n", None),
    ],
    ids=["cgroup-v2", "cgroup-v1", "a-login-session", "no-unit"],
)
def test_the_agents_own_service_is_read_from_its_cgroup(cgroup: str, service: str | None) -> None:
    assert own_service(cgroup) == service


# ---- with stand-ins for systemd-run and systemctl on PATH -----------------------------------


@pytest.fixture
def fake_systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``systemd-run`` records its arguments and execs the command after ``--`` (as the real one
    does once the scope exists); ``systemctl`` records its arguments and exits $SYSTEMCTL_RC."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    scripts = {
        "systemd-run": (
            f'printf "systemd-run %s\\n" "$*" >> {calls}\n'
            'while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do shift; done\n'
            'shift\nexec "$@"\n'
        ),
        "systemctl": f'printf "systemctl %s\\n" "$*" >> {calls}\nexit "${{SYSTEMCTL_RC:-0}}"\n',
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def test_in_a_scope_the_model_runs_and_the_scope_is_stopped_after_it(
    fake_systemd: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "model-ran"
    model = ModelCommand([sys.executable, "-c", f"open({str(marker)!r}, 'w')"], {}, None)

    run_model(model, 30, kill_grace_seconds=2, scope_unit="instance-agent-model-r.scope")

    assert marker.exists()
    calls = fake_systemd.read_text().splitlines()
    assert calls[0].startswith("systemd-run --scope ")
    assert "--unit=instance-agent-model-r.scope" in calls[0]
    assert calls[0].endswith(f"-- {sys.executable} -c open({str(marker)!r}, 'w')")
    assert calls[1:] == ["systemctl stop instance-agent-model-r.scope"]


def test_in_a_scope_the_models_exit_code_is_still_reported(fake_systemd: Path) -> None:
    model = ModelCommand([sys.executable, "-c", "raise SystemExit(7)"], {}, None)

    with pytest.raises(ModelCommandFailed, match="exited with code 7"):
        run_model(model, 30, kill_grace_seconds=2, scope_unit="instance-agent-model-r.scope")


def test_stopping_a_scope_that_is_already_gone_logs_no_error(
    fake_systemd: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SYSTEMCTL_RC", "5")  # "Unit ... not loaded": its processes all ended

    stop_scope("instance-agent-model-r.scope", 1)

    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_scope_that_cannot_be_stopped_is_logged_as_an_error(
    fake_systemd: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SYSTEMCTL_RC", "1")

    stop_scope("instance-agent-model-r.scope", 1)

    assert "systemctl stop instance-agent-model-r.scope exited 1" in caplog.text


def test_the_systemd_run_version_is_read_from_its_first_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "systemd-run"
    fake.write_text("#!/bin/sh\necho 'systemd 252 (252.38-1~deb12u1)'\necho '+PAM +AUDIT'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))

    assert systemd_scope.systemd_run_version() == 252
