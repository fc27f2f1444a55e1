"""A fake Step Functions client for the worker's tests: records calls, scripted answers."""

from __future__ import annotations

import json
import threading
from typing import Any

from botocore.exceptions import ClientError


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
