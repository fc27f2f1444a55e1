"""A user's own model and a container image, end to end through the local AWS.

- the example model folder (examples/model/), published with ``gpurun publish-model`` and run
  with no model command at all: its run.sh is the entry point; SUCCEEDED;
- a container image pulled at boot (a fake ``docker`` on the agent's PATH: no Docker engine
  here): its pull is a phase of the run record; a pull that fails ends the run FAILED with
  ImagePullFailed and its instance terminated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local_aws.server import LocalAws
from run_contract.phases import PHASE_NAMES
from tests.conftest import MakeRun
from tests.end_to_end.conftest import RunCase, assert_ended_cleanly, settings
from tests.gpurun.cli_helpers import gpurun_on, run_record
from tests.instance_agent import fake_container_tools as tools

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_MODEL = ROOT / "examples" / "model"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/scorer:1.4"
SHORT: dict[str, Any] = {
    "heartbeat_timeout_seconds": 6,
    "activity_timeout_seconds": 40,
    "execution_timeout_seconds": 60,
    "max_runtime_seconds": 20,
}


def test_the_example_model_published_with_gpurun_runs_with_no_model_command(
    make_run: MakeRun, local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in local_aws.child_env({}).items():
        monkeypatch.setenv(name, value)
    # model_command=None: Terraform's default (no command), so the agent runs the model's run.sh.
    run = make_run(
        publish=False,
        settings=SHORT,
        model_command=None,
        config_overrides={"heartbeat_interval_seconds": 1},
    )

    published = gpurun_on(run, local_aws, "publish-model", str(EXAMPLE_MODEL), "--json")
    assert published.code == 0, published.err
    result = gpurun_on(run, local_aws, "run", "--name", "own-model", "--poll-seconds", "0.5")

    assert result.code == 0, result.out + result.err
    assert result.out.splitlines()[-1] == "own-model: SUCCEEDED"
    predictions = local_aws.client("s3").get_object(
        Bucket=run.deployed.bucket_name, Key="runs/own-model/predictions.csv"
    )["Body"]
    assert predictions.read().decode().splitlines() == ["row,score", "0,4.75", "1,0.5"]
    timings = run_record(run, local_aws, "own-model")["timings"]
    assert timings["model_first_output"] <= timings["model_run"]
    assert set(timings) <= set(PHASE_NAMES)


def test_a_model_without_run_sh_is_refused_at_publish_time(
    make_run: MakeRun, local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in local_aws.child_env({}).items():
        monkeypatch.setenv(name, value)
    run = make_run(publish=False, settings=SHORT)
    model = tmp_path / "no-entry-point"
    model.mkdir()
    (model / "score.py").write_text("print('hi')\n")

    result = gpurun_on(run, local_aws, "publish-model", str(model))

    assert result.code == 2
    assert "has no run.sh at its top" in result.err


@pytest.fixture(scope="module")
def fake_docker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tools.install(tmp_path_factory.mktemp("fake-docker"))


@pytest.fixture(scope="module")
def pulled(case: RunCase, fake_docker: Path) -> Any:
    (fake_docker / "PULL_SECONDS").write_text("1")
    finished = case(
        settings=settings(container_image=IMAGE, model_command=("score",)),
        model_command=None,
        extra_path=[str(fake_docker / "bin")],
    )
    return finished, tools.calls(fake_docker)


def test_a_container_run_pulls_at_boot_and_succeeds(pulled: Any) -> None:
    finished, _calls = pulled
    assert_ended_cleanly(finished, status="SUCCEEDED", error=None)
    assert finished.result("predictions.csv") == b"row,score\n0,1\n"


def test_the_image_pull_is_a_phase_of_the_run_record(pulled: Any) -> None:
    finished, _calls = pulled
    timings = json.loads(finished.result("run.json"))["timings"]
    assert timings["image_pull"] >= 1.0
    assert "image_pull_wait" in timings


def test_the_ecr_image_is_pulled_after_a_login_and_run_without_a_pull(pulled: Any) -> None:
    _finished, calls = pulled
    docker = [c["args"] for c in calls if c["tool"] == "docker"]
    assert [args[0] for args in docker] == ["login", "pull", "run"]
    assert docker[1] == ["pull", IMAGE]
    assert "--pull=never" in docker[2]


def test_a_failed_image_pull_fails_the_run_with_its_own_error_and_ends_the_instance(
    case: RunCase, tmp_path: Path
) -> None:
    failing = tools.install(tmp_path / "failing-docker")
    (failing / "PULL_ERROR").write_text("pull access denied for team/scorer")

    finished = case(
        settings=settings(container_image=IMAGE, model_command=("score",)),
        model_command=None,
        extra_path=[str(failing / "bin")],
    )

    assert_ended_cleanly(finished, status="FAILED", error="ImagePullFailed")
    assert "pull access denied for team/scorer" in finished.cause
    assert not [c for c in tools.calls(failing) if c["args"][:1] == ["run"]]
