"""Fault injection into the local AWS: the one place the failure matrix and the demo break it.

Each fault is a context manager that wraps one method of the in-process moto server (so every
client, the agent's processes included, meets it over HTTP), counts what it refused, and
restores the method on exit. Nothing here touches the agent's or the launcher's code: they see
the errors AWS itself would answer with.

- ``throttled_heartbeats(seconds)``: SendTaskHeartbeat answers ThrottlingException for
  ``seconds`` from the first heartbeat after it is armed. Activity heartbeats are served by the
  workarounds' activity broker, not a moto backend, so the fault wraps the response method
  every SendTaskHeartbeat request goes through.
- ``throttled_terminations(times)``: EC2 TerminateInstances answers RequestLimitExceeded
  ``times`` times (moto's ``InstanceBackend.terminate_instances``).
- ``failed_uploads(prefix)``: S3 PutObject and CreateMultipartUpload answer AccessDenied for
  keys under ``prefix`` (moto's ``S3Backend``).
- ``corrupt_object(aws, bucket, key)``: not a patch: overwrites an object with bytes of the same
  size but different content, as a botched manual upload would (a checksum mismatch).
- ``backdate_launch(aws, instance_id, seconds)``: moves an instance's launch time back in the
  emulator's EC2 backend, so the sweeper's maximum lifetime (at least 5 minutes) passes without
  waiting for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from moto.core.exceptions import AWSError
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import ec2_backends
from moto.ec2.models.instances import InstanceBackend
from moto.s3.exceptions import S3ClientError
from moto.s3.models import S3Backend
from moto.stepfunctions.responses import StepFunctionResponse

from local_aws.server import LocalAws


class ThrottlingError(AWSError):
    """What Step Functions answers a caller over its request rate."""

    TYPE = "ThrottlingException"
    STATUS = 400


@dataclasses.dataclass
class FaultRecord:
    """How often the patched method was called while armed, and how often it refused."""

    name: str
    calls: int = 0
    refused: int = 0
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def count(self, *, refuse: bool) -> None:
        with self._lock:
            self.calls += 1
            if refuse:
                self.refused += 1


@contextlib.contextmanager
def _patched(owner: type, attribute: str, wrapper: Callable[..., Any]) -> Iterator[None]:
    original = owner.__dict__[attribute]
    setattr(owner, attribute, wrapper)
    try:
        yield
    finally:
        setattr(owner, attribute, original)


@contextlib.contextmanager
def throttled_heartbeats(seconds: float) -> Iterator[FaultRecord]:
    """SendTaskHeartbeat throttled for ``seconds`` from the first heartbeat seen."""
    if seconds <= 0:
        raise ValueError(f"seconds: must be > 0, got {seconds}")
    record = FaultRecord("SendTaskHeartbeat throttled")
    original = StepFunctionResponse.send_task_heartbeat
    window: list[float] = []  # the window's end, set by the first heartbeat

    def send_task_heartbeat(self: StepFunctionResponse) -> Any:
        now = time.monotonic()
        with record._lock:
            if not window:
                window.append(now + seconds)
        refuse = now < window[0]
        record.count(refuse=refuse)
        if refuse:
            raise ThrottlingError("Rate exceeded (local fault: throttled_heartbeats)")
        return original(self)

    with _patched(StepFunctionResponse, "send_task_heartbeat", send_task_heartbeat):
        yield record


@contextlib.contextmanager
def throttled_terminations(times: int) -> Iterator[FaultRecord]:
    """EC2 TerminateInstances answers RequestLimitExceeded to its next ``times`` calls."""
    if times < 1:
        raise ValueError(f"times: must be >= 1, got {times}")
    record = FaultRecord("TerminateInstances throttled")
    original = InstanceBackend.terminate_instances

    def terminate_instances(self: InstanceBackend, instance_ids: list[str]) -> Any:
        with record._lock:
            refuse = record.refused < times
        record.count(refuse=refuse)
        if refuse:
            raise EC2ClientError(
                "RequestLimitExceeded", "Request limit exceeded (local fault: terminations)."
            )
        return original(self, instance_ids)

    with _patched(InstanceBackend, "terminate_instances", terminate_instances):
        yield record


@contextlib.contextmanager
def failed_uploads(prefix: str) -> Iterator[FaultRecord]:
    """S3 uploads (PutObject, CreateMultipartUpload) of keys under ``prefix`` are refused."""
    if not prefix:
        raise ValueError("prefix: give a key prefix such as 'runs/' (empty would refuse all)")
    record = FaultRecord(f"uploads under {prefix} refused")
    originals = {
        name: S3Backend.__dict__[name] for name in ("put_object", "create_multipart_upload")
    }

    def guard(name: str) -> Callable[..., Any]:
        def upload(self: S3Backend, bucket_name: str, key_name: str, *args: Any, **kw: Any) -> Any:
            refuse = key_name.startswith(prefix)
            record.count(refuse=refuse)
            if refuse:
                raise S3ClientError("AccessDenied", "Access Denied (local fault: failed_uploads)")
            return originals[name](self, bucket_name, key_name, *args, **kw)

        return upload

    with (
        _patched(S3Backend, "put_object", guard("put_object")),
        _patched(S3Backend, "create_multipart_upload", guard("create_multipart_upload")),
    ):
        yield record


def corrupt_object(aws: LocalAws, bucket: str, key: str) -> None:
    """Overwrite ``key`` with its bytes, one of them flipped: same size, another checksum."""
    s3 = aws.client("s3")
    body = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    if not body:
        raise ValueError(f"s3://{bucket}/{key} is empty: there is no byte to corrupt")
    body[len(body) // 2] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(body))


def backdate_launch(aws: LocalAws, instance_id: str, seconds: float) -> None:
    """Make ``instance_id`` look ``seconds`` older to everyone reading its LaunchTime."""
    if seconds <= 0:
        raise ValueError(f"seconds: must be > 0, got {seconds}")
    backend = ec2_backends[aws.account_id][aws.region]
    instance = backend.get_instance(instance_id)
    instance.launch_time -= timedelta(seconds=seconds)
