"""The boot-time jobs beside the model copy: the container image (data on the instance store,
ECR login, pull) and the warm read of root-volume paths; and the boot phases before the agent.

The agent runs in-process with the fakes of tests/instance_agent/fakes.py; docker, systemctl and
mount are fake executables first on PATH (tests/instance_agent/fake_container_tools.py).
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from instance_agent.agent import Agent
from instance_agent.config import parse_config
from instance_agent.imds import InstanceIdentity
from instance_agent.logs import setup_logging
from tests.instance_agent import fake_container_tools as tools
from tests.instance_agent.fakes import FakeCopyReport, World

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/scorer:1.4"


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tools.install(tmp_path / "tools")
    monkeypatch.setenv("PATH", tools.path_with(state))
    return state


class FakeEcr:
    def __init__(self) -> None:
        self.regions: list[str] = []

    def __call__(self, region: str) -> FakeEcr:
        self.regions.append(region)
        return self

    def get_authorization_token(self) -> dict[str, Any]:
        token = base64.b64encode(b"AWS:registry-password").decode()
        return {"authorizationData": [{"authorizationToken": token}]}


def container_config(base: dict[str, Any], **container: Any) -> dict[str, Any]:
    return {
        **base,
        "task_wait_seconds": 1,
        "run": {"container_image": IMAGE, "command": ["score"]},
        "container": {"data_roots": [], **container},
    }


def run_agent(world: World, data: dict[str, Any], ecr: FakeEcr | None = None) -> Agent:
    services = world.services()
    services.make_ecr = ecr or FakeEcr()
    agent = Agent(parse_config(data), services, setup_logging(100))
    agent.run()
    return agent


def test_the_image_is_pulled_while_the_model_copies(
    world: World, base_config: dict[str, Any], fake_tools: Path
) -> None:
    (fake_tools / "PULL_SECONDS").write_text("0.5")
    copy = world.copy

    def copy_that_waits_for_the_pull(*args: Any, **kwargs: Any) -> FakeCopyReport:
        # Ends only once the pull has started: a pull after the copy would never let it end.
        deadline = time.monotonic() + 20
        while not (fake_tools / "pull-started").exists():
            if time.monotonic() > deadline:
                raise AssertionError("the image pull did not start while the model copied")
            time.sleep(0.02)
        return copy(*args, **kwargs)

    world.copy = copy_that_waits_for_the_pull  # type: ignore[method-assign]

    agent = run_agent(world, container_config(base_config))

    (success,) = world.sfn.successes
    timings = success["output"]["timings"]
    assert timings["image_pull"] >= 0.5
    assert "image_pull_wait" in timings
    used = [call["args"][0] for call in tools.calls(fake_tools) if call["tool"] == "docker"]
    assert used == ["login", "pull", "run"]
    assert agent.timings["image_pull"] == timings["image_pull"]


def test_the_model_runs_the_pulled_image_without_pulling_again(
    world: World, base_config: dict[str, Any], fake_tools: Path
) -> None:
    run_agent(world, container_config(base_config))

    (run,) = [c["args"] for c in tools.calls(fake_tools) if c["args"][:1] == ["run"]]
    assert "--pull=never" in run
    assert run[-2:] == [IMAGE, "score"]


def test_an_ecr_image_logs_in_with_the_instance_roles_token(
    world: World, base_config: dict[str, Any], fake_tools: Path
) -> None:
    ecr = FakeEcr()

    run_agent(world, container_config(base_config), ecr)

    (login,) = [c for c in tools.calls(fake_tools) if c["args"][:1] == ["login"]]
    assert login["args"] == [
        "login",
        "--username",
        "AWS",
        "--password-stdin",
        "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    ]
    assert login["stdin"] == "registry-password"
    assert ecr.regions == ["eu-west-1"]


def test_an_image_outside_ecr_is_pulled_without_a_login(
    world: World, base_config: dict[str, Any], fake_tools: Path
) -> None:
    data = container_config(base_config)
    data["run"]["container_image"] = "nvcr.io/nvidia/pytorch:25.01-py3"

    run_agent(world, data)

    assert [c["args"][0] for c in tools.calls(fake_tools)] == ["pull", "run"]


def test_a_failed_pull_fails_the_run_as_image_pull_failed_and_shuts_down(
    world: World, base_config: dict[str, Any], fake_tools: Path
) -> None:
    (fake_tools / "PULL_ERROR").write_text("manifest for team/scorer:1.4 not found")

    agent = run_agent(world, container_config(base_config))

    (failure,) = world.sfn.failures
    assert failure["error"] == "ImagePullFailed"
    assert "docker pull" in failure["cause"]
    assert "manifest for team/scorer:1.4 not found" in failure["cause"]
    assert world.shutdowns == ["run failed"]
    assert not [c for c in tools.calls(fake_tools) if c["args"][:1] == ["run"]]
    assert "image_pull" in agent.timings
    assert "model_run" not in agent.timings


def test_a_pull_past_its_limit_fails_as_image_pull_failed(
    world: World, base_config: dict[str, Any], fake_tools: Path
) -> None:
    (fake_tools / "PULL_SECONDS").write_text("30")

    run_agent(world, container_config(base_config, pull_timeout_seconds=1))

    (failure,) = world.sfn.failures
    assert failure["error"] == "ImagePullFailed"
    assert "docker pull" in failure["cause"]
    assert "timed out (container.pull_timeout_seconds=1)" in failure["cause"]


def test_the_container_data_goes_to_the_instance_store_with_the_daemons_stopped(
    world: World, base_config: dict[str, Any], fake_tools: Path, tmp_path: Path
) -> None:
    docker_root = tmp_path / "var" / "lib" / "docker"
    containerd_root = tmp_path / "var" / "lib" / "containerd"
    data = container_config(base_config, data_roots=[str(docker_root), str(containerd_root)])

    run_agent(world, data)

    calls = [
        [c["tool"], *c["args"]] for c in tools.calls(fake_tools) if c["args"][0] != "is-active"
    ]
    store = world.root / "container-data"
    assert calls[:4] == [
        ["systemctl", "stop", "docker.socket", "docker.service", "containerd.service"],
        ["mount", "--bind", str(store / str(docker_root).strip("/").replace("/", "-")),
         str(docker_root)],
        ["mount", "--bind", str(store / str(containerd_root).strip("/").replace("/", "-")),
         str(containerd_root)],
        ["systemctl", "start", "containerd.service", "docker.socket", "docker.service"],
    ]  # fmt: skip
    assert world.sfn.successes


def test_only_the_container_units_that_were_active_are_stopped_and_started(
    world: World, base_config: dict[str, Any], fake_tools: Path, tmp_path: Path
) -> None:
    (fake_tools / "INACTIVE").write_text("docker.service\n")  # docker only socket-activated
    data = container_config(base_config, data_roots=[str(tmp_path / "var" / "lib" / "docker")])

    run_agent(world, data)

    systemctl = [c["args"] for c in tools.calls(fake_tools) if c["tool"] == "systemctl"]
    changes = [args for args in systemctl if args[0] != "is-active"]
    assert changes == [
        ["stop", "docker.socket", "containerd.service"],
        ["start", "containerd.service", "docker.socket"],
    ]


def test_warm_paths_are_read_at_boot_and_timed(
    world: World, base_config: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="instance_agent.warm")
    env = tmp_path / "opt" / "pytorch"
    (env / "lib").mkdir(parents=True)
    (env / "lib" / "libtorch.so").write_bytes(b"x" * 3_000_000)
    (env / "bin").mkdir()
    (env / "bin" / "python").write_bytes(b"y" * 10)
    data = {
        **base_config,
        "task_wait_seconds": 1,
        "run": {"command": ["true"]},
        "warm": {"paths": [str(env), str(tmp_path / "missing")]},
    }

    agent = run_agent(world, data)

    timings = world.sfn.successes[0]["output"]["timings"]
    assert timings["warm"] >= 0
    assert agent.timings["warm"] == timings["warm"]
    messages = [r.getMessage() for r in caplog.records if r.name == "instance_agent.warm"]
    assert any(m.startswith("warm done: 2 file(s), 3000010 bytes") for m in messages)
    assert any("missing does not exist; skipped" in m for m in messages)


def test_the_warm_report_counts_every_file_and_skips_missing_paths(tmp_path: Path) -> None:
    import threading

    from instance_agent.warm import warm_paths

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one").write_bytes(b"1" * 1000)
    (tmp_path / "a" / "two").write_bytes(b"2" * 2_500_000)
    (tmp_path / "a" / "link").symlink_to(tmp_path / "a" / "one")

    report = warm_paths([str(tmp_path / "a"), str(tmp_path / "nope")], 4, threading.Event())

    assert (report.files, report.bytes, report.cancelled) == (2, 2_501_000, False)


def test_the_boot_phases_before_the_agent_are_recorded(
    world: World, base_config: dict[str, Any], tmp_path: Path
) -> None:
    now = time.time()
    uptime = tmp_path / "uptime"
    uptime.write_text("40.0 10.0\n")
    status = tmp_path / "status.json"
    booted = now - 40.0
    status.write_text(
        json.dumps(
            {
                "v1": {
                    "init-local": {"start": booted + 5.0, "finished": booted + 6.0},
                    "init": {"start": booted + 7.0, "finished": booted + 9.0},
                    "modules-final": {"start": booted + 30.0, "finished": None},
                    "stage": "modules-final",
                }
            }
        )
    )
    identity = InstanceIdentity("i-ours", "g5.xlarge", "eu-west-1a", launched_at=booted - 12.0)
    services = world.services()
    services.identity = lambda: identity
    data = {
        **base_config,
        "task_wait_seconds": 1,
        "run": {"command": ["true"]},
        "metrics": {
            **base_config["metrics"],
            "uptime_file": str(uptime),
            "cloud_init_status_file": str(status),
        },
    }

    agent = Agent(parse_config(data), services)
    agent.run()

    timings = world.sfn.successes[0]["output"]["timings"]
    assert timings["launch_to_boot"] == pytest.approx(12.0, abs=1.0)
    assert timings["boot_to_cloud_init"] == pytest.approx(5.0, abs=1.0)
    assert timings["cloud_init"] == pytest.approx(25.0, abs=0.01)
    assert timings["bootstrap"] == pytest.approx(10.0, abs=1.0)
    assert "model_first_output" not in timings  # `true` prints nothing
