"""The activity worker: polling, the instance check, the heartbeat thread, the failure cause."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from instance_agent.activity import (
    CAUSE_LIMIT,
    BadTaskInput,
    Heartbeat,
    build_cause,
    make_sfn_client,
    wait_for_task,
)
from tests.instance_agent.fakes import FakeSfn, task_input
from tests.support.waiting import wait_until

ARN = "arn:aws:states:eu-west-1:123456789012:activity:weekly-run"


def poll(sfn: FakeSfn, wait: float = 0) -> Any:
    return wait_for_task(sfn, ARN, "instance-agent-i-ours", "i-ours", wait)  # type: ignore[arg-type]


def test_a_task_naming_this_instance_is_accepted() -> None:
    sfn = FakeSfn([{"token": "t1", "input": task_input()}])
    task = poll(sfn)
    assert task.token == "t1"
    assert task.input.results.prefix == "runs/run-1/"
    assert task.input.parameters == {"week": 48}
    assert sfn.failures == []


def test_another_instances_task_is_failed_and_polling_goes_on() -> None:
    sfn = FakeSfn(
        [
            {"token": "theirs", "input": task_input("i-theirs")},
            {"token": "ours", "input": task_input()},
        ]
    )
    task = poll(sfn, wait=60)
    assert task.token == "ours"
    assert sfn.failures[0]["token"] == "theirs"
    assert sfn.failures[0]["error"] == "WrongInstance"
    assert "i-theirs" in sfn.failures[0]["cause"]


def test_no_task_within_the_wait_returns_none() -> None:
    clock = iter(range(0, 1000, 30))
    sfn = FakeSfn()
    task = wait_for_task(sfn, ARN, "w", "i-ours", 90, clock=lambda: float(next(clock)))  # type: ignore[arg-type]
    assert task is None
    assert sfn.polls == 3


def test_a_malformed_task_for_this_instance_is_failed_naming_the_field() -> None:
    sfn = FakeSfn([{"token": "t1", "input": task_input(results={"bucket": "b"})}])
    with pytest.raises(BadTaskInput, match=r"results\.prefix"):
        poll(sfn)
    assert sfn.failures[0]["error"] == "AgentError"


def test_heartbeats_are_sent_at_the_interval() -> None:
    sfn = FakeSfn()
    beat = Heartbeat(sfn, "t1", 0.1, lambda reason: None)  # type: ignore[arg-type]
    started = time.monotonic()
    beat.start()
    wait_until(lambda: sfn.heartbeats >= 3, 60, "three heartbeats")
    elapsed = time.monotonic() - started
    beat.stop()
    # Never faster than the interval (a loaded machine may only make them later).
    assert elapsed >= 0.3


def test_throttling_is_retried_with_backoff() -> None:
    sfn = FakeSfn()
    sfn.heartbeat_errors = ["ThrottlingException", "ThrottlingException"]
    beat = Heartbeat(sfn, "t1", 0.05, lambda reason: None, first_backoff=0.01)  # type: ignore[arg-type]
    beat.start()
    wait_until(lambda: sfn.heartbeats >= 1, 60, "a heartbeat after the throttling")
    beat.stop()
    assert sfn.heartbeat_errors == []
    assert not beat.lost.is_set()


def test_a_throttled_spell_is_retried_at_least_once_per_interval() -> None:
    # Uncapped, the backoff would double 1, 2, 4, 8 s past a 3 s interval and let a heartbeat
    # window of a few intervals lapse (CI saw States.HeartbeatTimeout in matrix case 13).
    sfn = FakeSfn()
    sfn.heartbeat_errors = ["ThrottlingException"] * 6
    beat = Heartbeat(sfn, "t1", 3.0, lambda reason: None, first_backoff=1.0, max_backoff=30.0)  # type: ignore[arg-type]
    waits: list[float] = []

    def record_wait(timeout: float | None = None) -> bool:
        waits.append(float(timeout or 0))
        return False

    beat._stop.wait = record_wait  # type: ignore[method-assign]
    assert beat._beat()
    assert sfn.heartbeats == 1
    assert waits == [1.0, 2.0, 3.0, 3.0, 3.0, 3.0]


def test_the_first_backoff_never_exceeds_the_interval() -> None:
    beat = Heartbeat(FakeSfn(), "t1", 0.5, lambda reason: None, first_backoff=1.0)  # type: ignore[arg-type]
    assert (beat.first_backoff, beat.max_backoff) == (0.5, 0.5)


class _ThrottledBody:
    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'


def _throttled_heartbeat_attempts(total_max_attempts: int) -> int:
    """How many HTTP requests one throttled SendTaskHeartbeat call makes with this client."""
    from botocore.awsrequest import AWSResponse, HTTPHeaders
    from botocore.exceptions import ClientError

    client = make_sfn_client(
        "eu-west-1", "http://127.0.0.1:1", total_max_attempts=total_max_attempts
    )
    sent: list[str] = []

    def throttle(request: Any, **kwargs: Any) -> Any:
        # A response from before-send replaces the HTTP call; the retry logic still runs.
        sent.append(request.url)
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, 400, headers, _ThrottledBody())

    client.meta.events.register("before-send.sfn.SendTaskHeartbeat", throttle)
    with pytest.raises(ClientError, match="ThrottlingException"):
        client.send_task_heartbeat(taskToken="t1")
    return len(sent)


def test_the_heartbeat_client_makes_one_attempt_and_leaves_retries_to_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert _throttled_heartbeat_attempts(1) == 1
    # The count is real: a client that may retry once is seen sending twice.
    assert _throttled_heartbeat_attempts(2) == 2


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken"])
def test_a_gone_task_stops_the_heartbeat_and_calls_back(code: str) -> None:
    sfn = FakeSfn()
    sfn.heartbeat_errors = [code]
    reasons: list[str] = []
    beat = Heartbeat(sfn, "t1", 0.05, reasons.append)  # type: ignore[arg-type]
    beat.start()
    assert beat.lost.wait(5)
    time.sleep(0.2)
    beat.stop()
    assert reasons == [code]
    assert sfn.heartbeats == 0


def test_the_cause_keeps_the_message_and_the_end_of_the_log() -> None:
    tail = "\n".join(f"line {i}" for i in range(10000))
    cause = build_cause("ModelCommandFailed: exited with code 2", tail)
    assert len(cause) <= CAUSE_LIMIT
    assert cause.startswith("ModelCommandFailed: exited with code 2")
    assert cause.endswith("line 9999")
