"""The real agent, as its own process, runs a real execution of the weekly-run state machine.

Each scenario runs once per module (a whole run takes seconds); the tests then read what it
left: the execution's status and output or error, the results in S3, the order of the S3
writes, the agent's exit code, its log, and its calls to the shutdown command.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from local_aws.server import LocalAws
from tests.agent_integration.conftest import (
    MODEL_PREFIX,
    SCORER_COMMAND,
    FinishedRun,
    WeeklyRun,
    run_weekly_execution,
)

pytestmark = pytest.mark.slow

FAILING_COMMAND = (
    "python3",
    "-c",
    "import sys; print('loading the model'); "
    "sys.stderr.write('scorer: CUDA out of memory on batch 7\\n'); sys.exit(3)",
)
CORRUPTED_FILE = "weights.bin"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def corrupt_weights(run: WeeklyRun) -> None:
    """Flip one byte of the published weights: same size, different content."""
    s3 = run.aws.client("s3")
    key = MODEL_PREFIX + CORRUPTED_FILE
    data = bytearray(s3.get_object(Bucket=run.bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0xFF
    s3.put_object(Bucket=run.bucket, Key=key, Body=bytes(data))


@pytest.fixture(scope="module")
def succeeded(
    _local_aws_session: LocalAws, tmp_path_factory: pytest.TempPathFactory
) -> FinishedRun:
    return run_weekly_execution(
        _local_aws_session, tmp_path_factory.mktemp("succeeded"), SCORER_COMMAND
    )


@pytest.fixture(scope="module")
def command_failed(
    _local_aws_session: LocalAws, tmp_path_factory: pytest.TempPathFactory
) -> FinishedRun:
    return run_weekly_execution(
        _local_aws_session, tmp_path_factory.mktemp("command-failed"), FAILING_COMMAND
    )


@pytest.fixture(scope="module")
def corrupted(
    _local_aws_session: LocalAws, tmp_path_factory: pytest.TempPathFactory
) -> FinishedRun:
    return run_weekly_execution(
        _local_aws_session,
        tmp_path_factory.mktemp("corrupted"),
        SCORER_COMMAND,
        tamper=corrupt_weights,
    )


# ---- a model command that succeeds ---------------------------------------------------------


def test_the_execution_succeeds_with_the_agents_results_location(succeeded: FinishedRun) -> None:
    assert succeeded.execution["status"] == "SUCCEEDED", succeeded.agent_log
    output = json.loads(succeeded.execution["output"])
    assert output["result"]["instance_id"] == succeeded.instance_id
    assert output["result"]["results"] == {
        "bucket": "agent-integration-models",
        "prefix": succeeded.results_prefix,
        "manifest_key": succeeded.results_prefix + "_manifest.json",
    }


def test_the_success_output_carries_every_phase_timing(succeeded: FinishedRun) -> None:
    timings = json.loads(succeeded.execution["output"])["result"]["timings"]

    for phase in ("identity", "storage", "wait_for_task", "model_copy", "model_run", "total"):
        assert timings[phase] >= 0, phase


def test_the_model_command_sees_the_published_bytes_in_model_dir(succeeded: FinishedRun) -> None:
    result = succeeded.results[succeeded.results_prefix + "result.txt"].decode()

    expected = "".join(
        f"{name} {sha256(data)}\n" for name, data in sorted(succeeded.model.files.items())
    )
    assert result == expected


def test_the_model_command_sees_the_task_input_and_run_name(succeeded: FinishedRun) -> None:
    details = json.loads(succeeded.results[succeeded.results_prefix + "details/task.json"])

    assert details == {"run_name": succeeded.execution_name, "parameters": {"threshold": 0.5}}


def test_the_results_manifest_lists_every_uploaded_file_with_its_checksum(
    succeeded: FinishedRun,
) -> None:
    prefix = succeeded.results_prefix
    manifest = json.loads(succeeded.results[prefix + "_manifest.json"])

    uploaded = {
        key: data
        for key, data in succeeded.model_results.items()
        if key != prefix + "_manifest.json"
    }
    assert sorted(uploaded) == [prefix + "details/task.json", prefix + "result.txt"]
    assert manifest["files"] == [
        {"key": key, "size": len(data), "sha256": sha256(data)}
        for key, data in sorted(uploaded.items())
    ]


def test_the_results_manifest_is_the_last_object_written(succeeded: FinishedRun) -> None:
    prefix = succeeded.results_prefix
    results_writes = [key for key in succeeded.s3_writes if key.startswith(prefix)]

    assert results_writes[-1] == prefix + "_manifest.json"
    assert results_writes.count(prefix + "_manifest.json") == 1


def test_the_agent_calls_its_shutdown_command_once_and_exits_0(succeeded: FinishedRun) -> None:
    assert succeeded.shutdown_calls == ["-h now"]
    assert succeeded.agent_exit_code == 0


def test_stop_instance_terminates_the_instance(succeeded: FinishedRun) -> None:
    assert succeeded.instance_state in ("shutting-down", "terminated")


def test_the_model_commands_output_is_in_the_agents_log(succeeded: FinishedRun) -> None:
    assert "scored 2 model file(s)" in succeeded.agent_log


def test_a_whole_run_takes_seconds(succeeded: FinishedRun) -> None:
    assert succeeded.seconds < 45, f"the run took {succeeded.seconds:.1f} s"


# ---- a model command that fails ------------------------------------------------------------


def test_a_failing_command_fails_the_execution_with_model_command_failed(
    command_failed: FinishedRun,
) -> None:
    assert command_failed.execution["status"] == "FAILED", command_failed.agent_log
    assert command_failed.execution["error"] == "ModelCommandFailed"


def test_the_cause_starts_with_the_commands_exit_code(command_failed: FinishedRun) -> None:
    first_line = command_failed.cause.splitlines()[0]

    assert re.match(r"the model command exited with code 3\b", first_line), command_failed.cause


def test_the_cause_carries_the_commands_stderr(command_failed: FinishedRun) -> None:
    assert "scorer: CUDA out of memory on batch 7" in command_failed.cause


def test_a_failed_command_uploads_no_results_and_no_manifest(command_failed: FinishedRun) -> None:
    assert command_failed.model_results == {}


def test_a_failed_command_still_shuts_the_instance_down(command_failed: FinishedRun) -> None:
    assert command_failed.shutdown_calls == ["-h now"]
    assert command_failed.agent_exit_code == 1
    assert command_failed.instance_state in ("shutting-down", "terminated")


# ---- a corrupted model ---------------------------------------------------------------------


def test_a_corrupted_model_file_fails_the_execution_with_a_checksum_mismatch(
    corrupted: FinishedRun,
) -> None:
    assert corrupted.execution["status"] == "FAILED", corrupted.agent_log
    assert corrupted.execution["error"] == "ModelChecksumMismatch"


def test_the_checksum_mismatch_names_the_corrupted_file(corrupted: FinishedRun) -> None:
    first_line = corrupted.cause.splitlines()[0]

    assert first_line.startswith(CORRUPTED_FILE + ":"), corrupted.cause
    assert "re-publish the model" in first_line


def test_a_corrupted_model_is_never_run_and_leaves_no_results(corrupted: FinishedRun) -> None:
    assert "scored" not in corrupted.agent_log
    assert corrupted.model_results == {}


def test_a_corrupted_model_still_shuts_the_instance_down(corrupted: FinishedRun) -> None:
    assert corrupted.shutdown_calls == ["-h now"]
    assert corrupted.instance_state in ("shutting-down", "terminated")


def test_a_corrupted_copy_leaves_no_model_file_behind(corrupted: FinishedRun) -> None:
    left = sorted(p.name for p in corrupted.model_dir.rglob("*") if p.is_file())

    assert CORRUPTED_FILE not in left
    assert not [name for name in left if name.endswith(".partial")]
