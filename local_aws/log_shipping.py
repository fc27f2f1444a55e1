"""The CloudWatch agent of a local instance: ships the files of the user data's CloudWatch agent
configuration (``/etc/instance-agent/cloudwatch-agent.json``) to the emulator's CloudWatch Logs,
into the same groups and streams (``{instance_id}`` replaced by the instance's id), so
``gpurun logs`` reads a local run exactly as it reads one on AWS.

Only the files that exist on a local machine are shipped (the process backend's agent output
stands for ``/var/log/instance-agent.log``, which rsyslog writes from the journal on EC2; there is
no cloud-init locally). Lines are shipped as they are complete, at most ``interval`` seconds
late, and once more when the machine powers off.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local_aws.server import LocalAws
from local_aws.user_data import UserDataError, written_file

CLOUDWATCH_AGENT_CONFIG_PATH = "/etc/instance-agent/cloudwatch-agent.json"
# PutLogEvents takes at most 10,000 events and 1 MiB a call; stay well inside both.
BATCH_EVENTS = 1000
BATCH_BYTES = 512 * 1024


@dataclasses.dataclass
class ShippedFile:
    """One collect_list entry, with where the file is on this machine and how far it was read."""

    source: Path
    group: str
    stream: str
    offset: int = 0
    partial: bytes = b""
    stream_created: bool = False


def collect_list(user_data: str, instance_id: str) -> list[tuple[str, str, str]]:
    """(file path on the instance, log group, log stream) of every file the agent ships."""
    try:
        config: Any = json.loads(written_file(user_data, CLOUDWATCH_AGENT_CONFIG_PATH))
        entries = config["logs"]["logs_collected"]["files"]["collect_list"]
        return [
            (
                str(e["file_path"]),
                str(e["log_group_name"]),
                str(e["log_stream_name"]).replace("{instance_id}", instance_id),
            )
            for e in entries
        ]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserDataError(
            f"UserData: {CLOUDWATCH_AGENT_CONFIG_PATH} is not a CloudWatch agent configuration "
            f"with logs.logs_collected.files.collect_list ({exc})"
        ) from exc


class LogShipper:
    """Tails each file of the collect_list that has a local counterpart in ``local_files``
    ({path on the instance: path here}) and ships its new lines."""

    def __init__(
        self,
        aws: LocalAws,
        entries: list[tuple[str, str, str]],
        local_files: Mapping[str, Path],
        *,
        interval: float = 0.5,
    ) -> None:
        self._aws = aws
        self.files = [
            ShippedFile(Path(local_files[path]), group, stream)
            for path, group, stream in entries
            if path in local_files
        ]
        self.skipped = [path for path, _, _ in entries if path not in local_files]
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._logs: Any = None
        self.error: BaseException | None = None

    def start(self) -> LogShipper:
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ship what is left, then stop (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.ship_once()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.ship_once()

    def ship_once(self) -> None:
        """Read every file's complete new lines and put them to its stream."""
        with self._lock:
            try:
                for shipped in self.files:
                    self._ship(shipped)
            except Exception as exc:  # a flaky emulator must not kill the machine's thread
                self.error = exc

    def _ship(self, shipped: ShippedFile) -> None:
        try:
            with shipped.source.open("rb") as handle:
                handle.seek(shipped.offset)
                data = handle.read()
        except FileNotFoundError:
            return
        if not data:
            return
        shipped.offset += len(data)
        *lines, shipped.partial = (shipped.partial + data).split(b"\n")
        messages = [line.decode("utf-8", "replace") for line in lines if line.strip()]
        if messages:
            self._put(shipped, messages)

    def _put(self, shipped: ShippedFile, messages: list[str]) -> None:
        if self._logs is None:
            self._logs = self._aws.client("logs")
        if not shipped.stream_created:
            with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
                self._logs.create_log_stream(
                    logGroupName=shipped.group, logStreamName=shipped.stream
                )
            shipped.stream_created = True
        now = int(time.time() * 1000)
        batch: list[dict[str, Any]] = []
        size = 0
        for message in messages:
            if batch and (len(batch) >= BATCH_EVENTS or size + len(message) > BATCH_BYTES):
                self._logs.put_log_events(
                    logGroupName=shipped.group, logStreamName=shipped.stream, logEvents=batch
                )
                batch, size = [], 0
            batch.append({"timestamp": now, "message": message})
            size += len(message) + 26
        self._logs.put_log_events(
            logGroupName=shipped.group, logStreamName=shipped.stream, logEvents=batch
        )
