"""A fake Step Functions client for the worker's tests: records calls, scripted answers."""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from instance_agent.agent import Services
from instance_agent.config import AgentConfig, StorageSettings, parse_config
from instance_agent.imds import InstanceIdentity
from instance_agent.storage import PreparedStorage


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


class FakeSfn:
    def __init__(self, tasks: list[dict[str, Any]] | None = None) -> None:
        self.tasks = list(tasks or [])  # GetActivityTask answers, then empty polls
        self.heartbeat_errors: list[str] = []  # codes raised by the next heartbeats, in order
        self.heartbeats = 0
        self.failures: list[dict[str, str]] = []
        self.successes: list[dict[str, Any]] = []
        self.polls = 0
        self.lock = threading.Lock()

    def get_activity_task(self, **kwargs: Any) -> dict[str, Any]:
        self.polls += 1
        if self.tasks:
            task = self.tasks.pop(0)
            return {"taskToken": task["token"], "input": json.dumps(task["input"])}
        return {"taskToken": ""}

    def send_task_heartbeat(self, taskToken: str) -> None:  # noqa: N803
        with self.lock:
            if self.heartbeat_errors:
                raise client_error(self.heartbeat_errors.pop(0), "SendTaskHeartbeat")
            self.heartbeats += 1

    def send_task_failure(self, taskToken: str, error: str, cause: str) -> None:  # noqa: N803
        self.failures.append({"token": taskToken, "error": error, "cause": cause})

    def send_task_success(self, taskToken: str, output: str) -> None:  # noqa: N803
        self.successes.append({"token": taskToken, "output": json.loads(output)})


def task_input(instance_id: str = "i-ours", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "instance_id": instance_id,
        "execution_arn": "arn:aws:states:eu-west-1:123456789012:execution:weekly:run-1",
        "execution_name": "run-1",
        "model": {"bucket": "models-bucket", "prefix": "models/current/"},
        "results": {"bucket": "models-bucket", "prefix": "runs/run-1/"},
        "max_runtime_seconds": 60,
        "parameters": {"week": 48},
    }
    data.update(overrides)
    return data


BUCKET = "models-bucket"


@dataclass
class FakeCopyReport:
    files: int = 1
    bytes: int = 5
    seconds: float = 0.01
    mb_per_s: float = 0.5
    model_version: str = "sha256:abc"


class World:
    """Everything the agent talks to, recorded."""

    def __init__(self, root: Path, s3: Any) -> None:
        self.root = root
        self.s3 = s3
        self.sfn = FakeSfn([{"token": "t1", "input": task_input()}])
        self.shutdowns: list[str] = []
        self.copies: list[tuple[str, str]] = []
        self.copy_error: BaseException | None = None
        self.storage_error: BaseException | None = None

    def copy(
        self, s3: Any, bucket: str, prefix: str, destination: Path, *, cancel: Any = None
    ) -> FakeCopyReport:
        self.copies.append((bucket, prefix))
        if self.copy_error is not None:
            raise self.copy_error
        destination.mkdir(parents=True, exist_ok=True)
        (destination / "weights.bin").write_bytes(b"model")
        return FakeCopyReport()

    def prepare(self, settings: StorageSettings) -> PreparedStorage:
        if self.storage_error is not None:
            raise self.storage_error
        return PreparedStorage(self.root, (), False, True)

    def services(self) -> Services:
        return Services(
            sfn=self.sfn,
            s3=self.s3,
            identity=lambda: InstanceIdentity("i-ours", "g5.xlarge", "eu-west-1a"),
            prepare_storage=self.prepare,
            copy_model=self.copy,
            shutdown=self.shutdowns.append,
        )


def config(base: dict[str, Any], code: str, **overrides: Any) -> AgentConfig:
    data = {**base, "run": {"command": [sys.executable, "-c", code]}, "task_wait_seconds": 1}
    data.update(overrides)
    return parse_config(data)


SCORE = (
    "import json, os, pathlib\n"
    "task = json.load(open(os.environ['TASK_INPUT']))\n"
    "model = pathlib.Path(os.environ['MODEL_DIR'], 'weights.bin').read_bytes()\n"
    "out = pathlib.Path(os.environ['OUTPUT_DIR'], 'scores.json')\n"
    "out.write_text(json.dumps({'week': task['parameters']['week'], 'model': model.decode()}))\n"
    "print('scored', os.environ['RUN_NAME'])\n"
)
