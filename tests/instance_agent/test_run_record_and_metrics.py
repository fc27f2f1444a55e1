"""The agent's run.json and its embedded-metric-format line, through a whole in-process run.

S3 is moto's; Step Functions, IMDS, the disks and the copy are the agent tests' fakes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from instance_agent.agent import Agent
from instance_agent.config import AgentConfig, parse_config
from instance_agent.run_metrics import METRIC_UNITS, build_emf, read_uptime_seconds
from run_contract.error_names import TASK_LOST_ERROR
from run_contract.run_record import check_record
from tests.instance_agent.fakes import BUCKET, SCORE, World, client_error

RECORD_KEY = "runs/run-1/run.json"
FAILING = "import sys; print('CUDA out of memory'); sys.exit(4)"


@pytest.fixture
def uptime(tmp_path: Path) -> Path:
    path = tmp_path / "uptime"
    path.write_text("42.50 80.00\n", encoding="ascii")
    return path


def make_config(base: dict[str, Any], code: str, uptime: Path, **overrides: Any) -> AgentConfig:
    data = {
        **base,
        "run": {"command": [sys.executable, "-c", code]},
        "task_wait_seconds": 1,
        "root_volume_gib": 120,
        "metrics": {**base["metrics"], "namespace": "gpu-test", "uptime_file": str(uptime)},
    }
    data.update(overrides)
    return parse_config(data)


def record(world: World) -> dict[str, Any]:
    body = world.s3.get_object(Bucket=BUCKET, Key=RECORD_KEY)["Body"].read()
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def emf_lines(config: AgentConfig) -> list[dict[str, Any]]:
    text = Path(config.metrics.file).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


class OrderedS3:
    """moto's S3 client, recording the order in which objects are written."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.written: list[str] = []

    def upload_file(self, filename: str, bucket: str, key: str) -> None:
        self._s3.upload_file(filename, bucket, key)
        self.written.append(key)

    def put_object(self, **kwargs: Any) -> Any:
        self.written.append(kwargs["Key"])
        return self._s3.put_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


# ---- run.json ----------------------------------------------------------------------------


def test_a_successful_run_writes_run_json_with_input_instance_model_and_output(
    world: World, base_config: dict[str, Any], uptime: Path
) -> None:
    assert Agent(make_config(base_config, SCORE, uptime), world.services()).run() == 0

    written = record(world)
    assert written["status"] == "SUCCEEDED"
    assert written["error"] is None
    assert written["written_by"] == "agent"
    assert written["execution_name"] == "run-1"
    assert written["instance"] == {
        "instance_id": "i-ours",
        "instance_type": "g5.xlarge",
        "availability_zone": "eu-west-1a",
    }
    assert written["input"]["parameters"] == {"week": 48}
    assert written["model"]["version"] == "sha256:abc"
    assert written["output"] == {
        "bucket": BUCKET,
        "prefix": "runs/run-1/",
        "manifest_key": "runs/run-1/_manifest.json",
    }
    assert {"storage", "model_copy", "model_run", "results_upload"} <= set(written["timings"])


def test_run_json_comes_after_the_result_files_and_before_the_manifest(
    world: World, base_config: dict[str, Any], uptime: Path
) -> None:
    ordered = OrderedS3(world.s3)
    world.s3 = ordered

    assert Agent(make_config(base_config, SCORE, uptime), world.services()).run() == 0

    assert ordered.written == [
        "runs/run-1/scores.json",
        RECORD_KEY,
        "runs/run-1/_manifest.json",
    ]


def test_run_json_exists_when_the_success_is_reported(
    world: World, base_config: dict[str, Any], uptime: Path
) -> None:
    seen: list[bool] = []
    report = world.sfn.send_task_success

    def checking(taskToken: str, output: str) -> None:  # noqa: N803 - boto3's name
        keys = world.s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/run-1/").get("Contents", [])
        seen.append(RECORD_KEY in {k["Key"] for k in keys})
        report(taskToken=taskToken, output=output)

    world.sfn.send_task_success = checking  # type: ignore[method-assign]
    Agent(make_config(base_config, SCORE, uptime), world.services()).run()

    assert seen == [True]


def test_a_failed_model_command_writes_a_failed_run_json_naming_the_error(
    world: World, base_config: dict[str, Any], uptime: Path
) -> None:
    assert Agent(make_config(base_config, FAILING, uptime), world.services()).run() == 1

    written = record(world)
    assert written["status"] == "FAILED"
    assert written["error"]["error"] == "ModelCommandFailed"
    assert "exited with code 4" in written["error"]["cause"]
    assert written["output"] is None
    assert world.sfn.failures[0]["error"] == "ModelCommandFailed"


def test_a_failed_run_records_the_phases_that_ran_in_run_json_and_the_metrics(
    world: World, base_config: dict[str, Any], uptime: Path
) -> None:
    config = make_config(base_config, FAILING, uptime)
    assert Agent(config, world.services()).run() == 1

    timings = record(world)["timings"]
    assert {"identity", "storage", "wait_for_task", "model_copy", "model_run"} <= set(timings)
    assert "results_upload" not in timings  # never reached
    (line,) = emf_lines(config)
    assert line["ModelRunSeconds"] == timings["model_run"]
    assert line["RunFailed"] == 1.0


def test_a_success_report_that_fails_retracts_the_record_and_the_manifest(
    world: World, base_config: dict[str, Any], uptime: Path
) -> None:
    def too_late(taskToken: str, output: str) -> None:  # noqa: N803 - boto3's name
        raise client_error("TaskTimedOut", "SendTaskSuccess")

    world.sfn.send_task_success = too_late  # type: ignore[method-assign]
    assert Agent(make_config(base_config, SCORE, uptime), world.services()).run() == 1

    written = record(world)
    check_record(written)
    assert written["status"] == "FAILED"
    assert written["error"]["error"] == TASK_LOST_ERROR
    assert "TaskTimedOut" in written["error"]["cause"]
    assert written["output"] is None
    assert written["correction"]["by"] == "agent"
    assert written["correction"]["status_was"] == "SUCCEEDED"
    keys = {o["Key"] for o in world.s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert "runs/run-1/_manifest.json" not in keys
    assert "runs/run-1/scores.json" in keys  # the files stay; nothing says they are complete
    assert world.shutdowns == ["run failed"]


def test_a_success_report_refused_otherwise_is_reported_as_a_failure_and_retracted(
    world: World, base_config: dict[str, Any], uptime: Path
) -> None:
    def denied(taskToken: str, output: str) -> None:  # noqa: N803 - boto3's name
        raise client_error("AccessDeniedException", "SendTaskSuccess")

    world.sfn.send_task_success = denied  # type: ignore[method-assign]
    assert Agent(make_config(base_config, SCORE, uptime), world.services()).run() == 1

    written = record(world)
    assert written["status"] == "FAILED"
    assert written["error"]["error"] == world.sfn.failures[0]["error"] == "AgentError"
    assert written["correction"]["status_was"] == "SUCCEEDED"
    keys = {o["Key"] for o in world.s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert "runs/run-1/_manifest.json" not in keys


def test_the_cost_estimate_is_the_instance_lifetime_at_the_types_price(
    world: World, base_config: dict[str, Any], uptime: Path
) -> None:
    uptime.write_text("3600.0 100.0\n", encoding="ascii")
    Agent(make_config(base_config, SCORE, uptime), world.services()).run()

    cost = record(world)["cost"]
    assert record(world)["lifetime_seconds"] == 3600.0
    assert cost["hourly_usd"] == 1.123  # g5.xlarge in eu-west-1
    assert cost["instance_usd"] == pytest.approx(1.123)
    assert cost["root_volume_usd"] == pytest.approx(120 * 0.088 / 730, abs=1e-4)
    assert cost["total_usd"] == pytest.approx(1.123 + 120 * 0.088 / 730, abs=1e-3)


def test_an_unpriced_region_leaves_the_cost_null_with_a_note_naming_it(
    world: World, base_config: dict[str, Any], uptime: Path
) -> None:
    config = make_config(base_config, SCORE, uptime, region="ap-south-1")
    Agent(config, world.services()).run()

    written = record(world)
    assert written["cost"] is None
    assert "ap-south-1" in written["cost_note"]


def test_a_model_output_named_run_json_is_refused_as_reserved(
    world: World, base_config: dict[str, Any], uptime: Path
) -> None:
    code = "import os, pathlib; pathlib.Path(os.environ['OUTPUT_DIR'], 'run.json').write_text('x')"
    assert Agent(make_config(base_config, code, uptime), world.services()).run() == 1

    assert world.sfn.failures[0]["error"] == "ResultsUploadFailed"
    assert "reserved" in world.sfn.failures[0]["cause"]
    assert record(world)["status"] == "FAILED"


# ---- the EMF line --------------------------------------------------------------------------


def test_a_run_appends_one_emf_line_with_its_phase_durations(
    world: World, base_config: dict[str, Any], uptime: Path
) -> None:
    config = make_config(base_config, SCORE, uptime)
    Agent(config, world.services()).run()

    (line,) = emf_lines(config)
    assert line["Service"] == "instance-agent"
    assert line["InstanceType"] == "g5.xlarge"
    assert line["ExecutionName"] == "run-1"
    assert line["RunSucceeded"] == 1.0
    assert line["RunFailed"] == 0.0
    assert line["BootToAgentSeconds"] == 42.5
    assert line["ModelCopyMBps"] == 0.5
    for metric in ("StorageSeconds", "ModelCopySeconds", "ModelRunSeconds", "ResultsUploadSeconds"):
        assert line[metric] >= 0


def test_the_emf_line_declares_each_metric_it_carries_with_its_unit(
    world: World, base_config: dict[str, Any], uptime: Path
) -> None:
    config = make_config(base_config, SCORE, uptime)
    Agent(config, world.services()).run()

    (line,) = emf_lines(config)
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "gpu-test"
    assert directive["Dimensions"] == [["Service"], ["Service", "InstanceType"]]
    declared = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert declared == {name: METRIC_UNITS[name] for name in declared}
    assert all(isinstance(line[name], float) for name in declared)
    assert isinstance(line["_aws"]["Timestamp"], int)


def test_a_run_failing_before_the_copy_leaves_the_phases_it_never_reached_out(
    world: World, base_config: dict[str, Any], uptime: Path
) -> None:
    from instance_agent.errors import NoInstanceStore

    world.storage_error = NoInstanceStore("no NVMe instance store")
    config = make_config(base_config, SCORE, uptime)
    Agent(config, world.services()).run()

    (line,) = emf_lines(config)
    assert line["RunFailed"] == 1.0
    declared = {m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert "ModelRunSeconds" not in declared
    assert "ModelRunSeconds" not in line


def test_an_unwritable_metrics_file_does_not_change_the_runs_outcome(
    world: World, base_config: dict[str, Any], uptime: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="ascii")
    base_config["metrics"] = {"file": str(blocker / "metrics.log")}

    assert Agent(make_config(base_config, SCORE, uptime), world.services()).run() == 0
    assert world.shutdowns == ["run succeeded"]


def test_build_emf_refuses_a_metric_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="GpuSeconds"):
        build_emf(namespace="n", instance_type="g5.xlarge", values={"GpuSeconds": 1}, properties={})


def test_build_emf_refuses_a_property_that_would_overwrite_a_metric() -> None:
    with pytest.raises(ValueError, match="ModelRunSeconds"):
        build_emf(
            namespace="n",
            instance_type="g5.xlarge",
            values={},
            properties={"ModelRunSeconds": "fast"},
        )


def test_uptime_is_none_when_the_file_is_missing_or_malformed(tmp_path: Path) -> None:
    garbled = tmp_path / "uptime"
    garbled.write_text("soon\n", encoding="ascii")

    assert read_uptime_seconds(tmp_path / "missing") is None
    assert read_uptime_seconds(garbled) is None
