"""The phases end-to-end in-process, with fakes for the disks, IMDS, Step Functions and the copy.

S3 is moto's; the model command is a real process. Every path must end in exactly one shutdown.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from typing import Any

from instance_agent.agent import Agent, Terminated
from instance_agent.config import AgentConfig, parse_config
from instance_agent.errors import ModelNotFound, NoInstanceStore
from instance_agent.imds import InstanceIdentity
from instance_agent.logs import TailHandler, setup_logging
from tests.instance_agent.fakes import BUCKET, SCORE, FakeSfn, World, config


def run(world: World, cfg: AgentConfig, tail: TailHandler | None = None) -> int:
    return Agent(cfg, world.services(), tail).run()


def test_a_successful_run_uploads_reports_and_shuts_down(
    world: World, base_config: dict[str, Any]
) -> None:
    assert run(world, config(base_config, SCORE)) == 0
    (success,) = world.sfn.successes
    output = success["output"]
    assert output["instance_id"] == "i-ours"
    assert output["results"] == {
        "bucket": BUCKET,
        "prefix": "runs/run-1/",
        "manifest_key": "runs/run-1/_manifest.json",
    }
    assert {"identity", "storage", "wait_for_task", "model_copy", "model_run"} <= set(
        output["timings"]
    )
    body = world.s3.get_object(Bucket=BUCKET, Key="runs/run-1/scores.json")["Body"].read()
    assert json.loads(body) == {"week": 48, "model": "model"}
    assert world.shutdowns == ["run succeeded"]


def test_a_failing_command_is_reported_with_its_output_and_shuts_down(
    world: World, base_config: dict[str, Any]
) -> None:
    tail = setup_logging(50)
    code = "import sys; print('CUDA out of memory'); sys.exit(4)"
    assert run(world, config(base_config, code), tail) == 1
    (failure,) = world.sfn.failures
    assert failure["error"] == "ModelCommandFailed"
    assert "exited with code 4" in failure["cause"]
    assert "CUDA out of memory" in failure["cause"]
    assert world.shutdowns == ["run failed"]


def test_a_timed_out_command_is_reported_as_model_run_timed_out(
    world: World, base_config: dict[str, Any]
) -> None:
    world.sfn.tasks[0]["input"]["max_runtime_seconds"] = 1
    cfg = parse_config(
        {**base_config, "task_wait_seconds": 1, "run": {
            "command": [sys.executable, "-c", "import time; time.sleep(30)"],
            "kill_grace_seconds": 0.2,
        }}
    )  # fmt: skip
    assert run(world, cfg) == 1
    assert world.sfn.failures[0]["error"] == "ModelRunTimedOut"
    assert world.shutdowns == ["run failed"]


def test_a_copy_failure_is_reported_under_its_name(
    world: World, base_config: dict[str, Any]
) -> None:
    world.copy_error = ModelNotFound("s3://models-bucket/models/current/manifest.json is missing")
    assert run(world, config(base_config, "pass")) == 1
    assert world.sfn.failures[0]["error"] == "ModelNotFound"
    assert world.shutdowns == ["run failed"]


def test_a_storage_failure_before_the_task_is_still_reported_on_the_task(
    world: World, base_config: dict[str, Any]
) -> None:
    world.storage_error = NoInstanceStore("no NVMe disk")
    assert run(world, config(base_config, "pass")) == 1
    assert world.sfn.failures == [
        {"token": "t1", "error": "NoInstanceStore", "cause": "no NVMe disk"}
    ]
    assert world.shutdowns == ["run failed"]


def test_no_task_within_the_wait_shuts_down(world: World, base_config: dict[str, Any]) -> None:
    world.sfn.tasks.clear()
    assert run(world, config(base_config, "pass", task_wait_seconds=0)) == 1
    assert world.sfn.failures == []
    assert world.shutdowns == ["run failed"]


def test_a_task_naming_another_model_copies_that_model(
    world: World, base_config: dict[str, Any]
) -> None:
    world.sfn.tasks[0]["input"]["model"] = {"bucket": BUCKET, "prefix": "models/next/"}
    assert run(world, config(base_config, "pass")) == 0
    assert world.copies == [(BUCKET, "models/current/"), (BUCKET, "models/next/")]


def test_an_unexpected_exception_is_reported_as_agent_error(
    world: World, base_config: dict[str, Any]
) -> None:
    world.copy_error = RuntimeError("bug")
    assert run(world, config(base_config, "pass")) == 1
    assert world.sfn.failures[0]["error"] == "AgentError"
    assert "RuntimeError: bug" in world.sfn.failures[0]["cause"]
    assert world.shutdowns == ["run failed"]


def test_sigterm_during_the_run_reports_and_shuts_down(
    world: World, base_config: dict[str, Any]
) -> None:
    world.copy_error = Terminated("the agent received signal 15")
    assert run(world, config(base_config, "pass")) == 1
    assert world.sfn.failures[0]["error"] == "AgentError"
    assert "signal 15" in world.sfn.failures[0]["cause"]
    assert world.shutdowns == ["run failed"]


def test_sigterm_before_the_task_shuts_down_without_polling_for_it(
    world: World, base_config: dict[str, Any]
) -> None:
    world.storage_error = Terminated("the agent received signal 15")
    assert run(world, config(base_config, "pass")) == 1
    assert world.sfn.polls == 0
    assert world.sfn.failures == []
    assert world.shutdowns == ["run failed"]


def test_a_lost_task_stops_the_model_and_reports_nothing(
    world: World, base_config: dict[str, Any]
) -> None:
    world.sfn.heartbeat_errors = ["TaskTimedOut"]
    cfg = parse_config(
        {**base_config, "heartbeat_interval_seconds": 1, "task_wait_seconds": 1,
         "run": {"command": [sys.executable, "-c", "import time; time.sleep(30)"],
                 "kill_grace_seconds": 0.2}}
    )  # fmt: skip
    done = threading.Event()
    result: list[int] = []

    def go() -> None:
        result.append(run(world, cfg))
        done.set()

    threading.Thread(target=go, daemon=True).start()
    assert done.wait(15), "the agent did not stop after TaskTimedOut"
    assert result == [1]
    assert world.sfn.failures == []
    assert world.sfn.successes == []
    assert world.shutdowns == ["run failed"]


def test_heartbeats_go_through_the_heartbeat_client_when_there_is_one(
    world: World, base_config: dict[str, Any]
) -> None:
    beats = FakeSfn()
    services = dataclasses.replace(world.services(), make_heartbeat_sfn=lambda: beats)
    cfg = config({**base_config, "heartbeat_interval_seconds": 1}, "import time; time.sleep(1.6)")
    assert Agent(cfg, services).run() == 0
    assert beats.heartbeats >= 1
    assert world.sfn.heartbeats == 0
    assert len(world.sfn.successes) == 1


def test_the_real_services_give_the_heartbeat_a_client_without_sdk_retries(
    base_config: dict[str, Any],
) -> None:
    from instance_agent.services import default_services

    services = default_services(config(base_config, "pass"), lambda reason: None)
    assert services.sfn.meta.config.retries["total_max_attempts"] == 6
    assert services.make_heartbeat_sfn is not None
    heartbeat_sfn = services.make_heartbeat_sfn()
    assert heartbeat_sfn.meta.config.retries["total_max_attempts"] == 1


def test_a_failed_identity_lookup_still_shuts_down(
    world: World, base_config: dict[str, Any]
) -> None:
    services = world.services()

    def no_imds() -> InstanceIdentity:
        raise OSError("IMDS down")

    services.identity = no_imds
    assert Agent(config(base_config, "pass"), services).run() == 1
    assert world.shutdowns == ["run failed"]
    assert world.sfn.polls == 0
