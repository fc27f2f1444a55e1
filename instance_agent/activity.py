"""The Step Functions activity worker: long poll, task input, heartbeat thread, reports.

boto3 is imported inside functions: the agent's start-up must stay light.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from instance_agent.errors import AgentFailure

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

log = logging.getLogger("instance_agent.activity")

# GetActivityTask holds the connection up to 60 s; a shorter read timeout drops the poll and can
# swallow a token that Step Functions already handed to us (aws-sdk-go#1465).
POLL_READ_TIMEOUT_SECONDS = 70
CAUSE_LIMIT = 32768
ERROR_LIMIT = 256
# The task is gone for good: whatever we do next, nobody is listening.
TASK_GONE_CODES = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


class TaskLostError(Exception):
    """The task timed out or its token is invalid: stop the run, report nothing, shut down."""


class BadTaskInput(AgentFailure):
    """The activity task's input does not follow the contract in docs/design.md."""


def make_sfn_client(
    region: str, endpoint_url: str | None, *, total_max_attempts: int = 6
) -> SFNClient:
    """The Step Functions client; ``total_max_attempts=1`` leaves every retry to the caller.

    The heartbeat thread uses its own client without botocore's retries: their jittered backoff
    (up to 1 + 2 + 4 + 8 s inside one call) can outlast a short HeartbeatSeconds while the
    thread waits on it, and the thread's own backoff is capped at the beat interval.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        read_timeout=POLL_READ_TIMEOUT_SECONDS,
        connect_timeout=10,
        # total_max_attempts counts the first call; botocore's max_attempts does not.
        retries={"mode": "standard", "total_max_attempts": total_max_attempts},
    )
    return boto3.client(
        "stepfunctions", region_name=region, endpoint_url=endpoint_url, config=config
    )


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, without importing botocore."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


@dataclasses.dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str


@dataclasses.dataclass(frozen=True)
class TaskInput:
    instance_id: str
    execution_arn: str
    execution_name: str
    model: S3Location
    results: S3Location
    max_runtime_seconds: int | None
    parameters: dict[str, Any]
    raw: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class ActivityTask:
    token: str
    input: TaskInput


def _field(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BadTaskInput(
            f"task input {where}{key}: expected {kind.__name__}, got {json.dumps(value)}"
        )
    return value


def _location(data: Mapping[str, Any], key: str) -> S3Location:
    value = _field(data, key, dict, "")
    location = S3Location(
        bucket=_field(value, "bucket", str, f"{key}."),
        prefix=_field(value, "prefix", str, f"{key}."),
    )
    if not location.prefix.endswith("/"):
        raise BadTaskInput(f"task input {key}.prefix: {location.prefix!r} must end with '/'")
    return location


def parse_task_input(text: str) -> TaskInput:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadTaskInput(f"task input is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadTaskInput("task input: expected a JSON object")
    runtime = data.get("max_runtime_seconds")
    if runtime is not None and (not isinstance(runtime, int) or isinstance(runtime, bool)):
        raise BadTaskInput(f"task input max_runtime_seconds: expected int, got {runtime!r}")
    if runtime is not None and runtime < 1:
        raise BadTaskInput("task input max_runtime_seconds: must be >= 1")
    parameters = data.get("parameters", {})
    if not isinstance(parameters, dict):
        raise BadTaskInput("task input parameters: expected an object")
    return TaskInput(
        instance_id=_field(data, "instance_id", str, ""),
        execution_arn=_field(data, "execution_arn", str, ""),
        execution_name=_field(data, "execution_name", str, ""),
        model=_location(data, "model"),
        results=_location(data, "results"),
        max_runtime_seconds=runtime,
        parameters=parameters,
        raw=data,
    )


def _owner_of(text: str) -> str | None:
    """The instance id a task names, even when the rest of its input is malformed."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    value = data.get("instance_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def wait_for_task(
    client: SFNClient,
    activity_arn: str,
    worker_name: str,
    instance_id: str,
    wait_seconds: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    stop: threading.Event | None = None,
) -> ActivityTask | None:
    """Long-poll until a task naming this instance arrives, or ``wait_seconds`` pass (None).

    A task naming another instance is failed at once with WrongInstance (its own instance would
    otherwise wait for it until the heartbeat timeout), and the agent keeps polling for its own:
    activities are shared queues, so another run's task can reach us first.
    """
    deadline = clock() + wait_seconds
    polls = 0
    while True:
        if stop is not None and stop.is_set():
            return None
        polls += 1
        response = client.get_activity_task(activityArn=activity_arn, workerName=worker_name)
        token = response.get("taskToken") or ""
        if token:
            raw = response.get("input", "{}")
            owner = _owner_of(raw)
            if owner != instance_id:
                log.error(
                    "task for instance %s received by %s; failing it with WrongInstance",
                    owner,
                    instance_id,
                )
                send_failure(
                    client,
                    token,
                    "WrongInstance",
                    f"the task names instance {owner} but was taken by {instance_id}; "
                    "another run's agent polled the same activity",
                )
            else:
                log.info("task received after %d poll(s)", polls)
                try:
                    task_input = parse_task_input(raw)
                except BadTaskInput as exc:
                    send_failure(client, token, exc.error_name, str(exc))
                    raise
                return ActivityTask(token=token, input=task_input)
        if clock() >= deadline:
            return None


def build_cause(message: str, log_tail: str) -> str:
    """The message, then as much of the log's end as fits in the API's 32,768 characters."""
    message = message[: CAUSE_LIMIT // 2]
    if not log_tail:
        return message
    header = "\n--- last log lines ---\n"
    room = CAUSE_LIMIT - len(message) - len(header)
    if room <= 0:
        return message
    return message + header + log_tail[-room:]


def send_failure(client: SFNClient, token: str, error: str, cause: str) -> bool:
    """Report failure; False when the task is already gone (nothing else to do then)."""
    try:
        client.send_task_failure(
            taskToken=token, error=error[:ERROR_LIMIT], cause=cause[:CAUSE_LIMIT]
        )
    except Exception as exc:
        if error_code(exc) in TASK_GONE_CODES:
            log.warning("SendTaskFailure: task already closed (%s)", error_code(exc))
            return False
        raise
    return True


def send_success(client: SFNClient, token: str, output: Mapping[str, Any]) -> None:
    try:
        client.send_task_success(taskToken=token, output=json.dumps(output))
    except Exception as exc:
        if error_code(exc) in TASK_GONE_CODES:
            raise TaskLostError(f"SendTaskSuccess: {error_code(exc)}") from exc
        raise


class Heartbeat:
    """Sends SendTaskHeartbeat every ``interval`` seconds from a background thread.

    Throttling, 5xx and network errors are retried with exponential backoff capped at the
    interval, so a failing beat is tried again at least once per interval and a throttled spell
    never stretches the gap between beats past what the workflow's HeartbeatSeconds allows.
    TaskTimedOut or InvalidToken mean the workflow has moved on: ``lost`` is set, ``on_lost`` is
    called once, and the thread ends. Give it a client without SDK retries (see
    ``make_sfn_client``) so that this loop alone decides when the next attempt goes out.
    """

    def __init__(
        self,
        client: SFNClient,
        token: str,
        interval: float,
        on_lost: Callable[[str], None],
        *,
        first_backoff: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.client = client
        self.token = token
        self.interval = interval
        self.on_lost = on_lost
        self.max_backoff = min(max_backoff, interval)
        self.first_backoff = min(first_backoff, self.max_backoff)
        self.sent = 0
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.max_backoff + 5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if not self._beat():
                return

    def _beat(self) -> bool:
        backoff = self.first_backoff
        while not self._stop.is_set():
            try:
                self.client.send_task_heartbeat(taskToken=self.token)
            except Exception as exc:
                code = error_code(exc)
                if code in TASK_GONE_CODES:
                    log.error("heartbeat: %s; the task is gone, stopping the run", code)  # noqa: TRY400
                    self.lost.set()
                    self.on_lost(str(code))
                    return False
                log.warning("heartbeat failed (%s); retrying in %.1f s", code or exc, backoff)
                if self._stop.wait(backoff):
                    return False
                backoff = min(backoff * 2, self.max_backoff)
                continue
            self.sent += 1
            return True
        return False
