"""One weekly run on the local AWS, from deploy to a collected outcome.

The one harness behind ``make demo`` and the failure matrix (tests/end_to_end/): deploy what
Terraform declares (``deployment.deploy``), publish the model with the agent's own ``publish``
command, run the real agent for every instance the launcher creates (``InstanceSupervisor``),
stand in for the three nets outside the execution (``ExecutionStatusWatcher`` for the
execution-status rule, ``InstanceStateWatcher`` for the instance-lost rule, ``ScheduleTicker`` for
the sweeper), start an execution, wait for it, and
collect what happened (``RunOutcome``). ``LocalRun`` stops everything it started on every exit.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from local_aws.demo_model.train import train_model
from local_aws.deployment import REPO_ROOT, Deployment, LocalSettings, deploy
from local_aws.machines import MachineBackend
from local_aws.process_machine import DEMO_MODEL_COMMAND, InstanceOptions, ProcessBackend
from local_aws.safety_nets import (
    ExecutionStatusWatcher,
    InstanceStateWatcher,
    ScheduleTicker,
    rate_seconds,
)
from local_aws.server import LocalAws
from local_aws.supervisor import InstanceEvent, InstanceSupervisor
from run_contract.s3_layout import NOT_FOUND_CODES, RESULTS_MANIFEST, RUN_RECORD, results_prefix
from run_contract.statuses import TERMINAL_STATUSES
from run_contract.tags import EXECUTION_TAG

# The sweeper runs every 15 minutes on AWS; locally every SWEEP_INTERVAL_SECONDS.
SWEEP_INTERVAL_SECONDS = 1.0


class LocalRunError(RuntimeError):
    """The local run could not be set up or observed; the message says what to do."""


# -- the model --------------------------------------------------------------------------------


def cached_model(cache_dir: Path, padding_mib: int) -> Path:
    """The demo model directory for ``padding_mib``, trained on first use and kept in the cache.

    Trained into a temporary directory and renamed, so an interrupted first run never leaves a
    half-written model that later runs would take for a good one.
    """
    if padding_mib < 0:
        raise ValueError(f"padding_mib: must be >= 0, got {padding_mib}")
    model_dir = cache_dir / f"model-{padding_mib}mib"
    if (model_dir / "model.json").is_file():
        return model_dir
    partial = cache_dir / f".model-{padding_mib}mib.{os.getpid()}.partial"
    train_model(partial, padding_mib=padding_mib)
    try:
        partial.rename(model_dir)
    except OSError:
        if not (model_dir / "model.json").is_file():
            raise
        # Another run trained it first; theirs is as good as ours.
        subprocess.run(["rm", "-rf", str(partial)], check=False)
    return model_dir


def publish_model(
    aws: LocalAws, model_dir: Path, bucket: str, prefix: str, *, entry_point: bool = False
) -> None:
    """``python -m instance_agent publish``: what the platform team runs to ship a model.

    ``entry_point`` False: the model has no run.sh (the demo scorer runs as a configured
    command)."""
    command = [
        sys.executable,
        "-m",
        "instance_agent",
        "publish",
        str(model_dir),
        "--bucket",
        bucket,
        "--prefix",
        prefix,
        "--region",
        aws.region,
        "--endpoint-url",
        aws.endpoint_url,
        *([] if entry_point else ["--no-entry-point"]),
    ]
    env = aws.child_env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise LocalRunError(
            f"publishing {model_dir} to s3://{bucket}/{prefix} failed (exit {done.returncode}):\n"
            f"{done.stderr.strip()}"
        )


# -- what a run leaves behind -----------------------------------------------------------------


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    raise LocalRunError(f"expected a timestamp from the emulator, got {value!r}")


@dataclasses.dataclass(frozen=True)
class HistoryEvent:
    """One event of the execution history, reduced to what the timeline needs."""

    type: str
    at: float
    state: str | None = None
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def history_events(raw: Sequence[Mapping[str, Any]]) -> list[HistoryEvent]:
    """GetExecutionHistory's events as HistoryEvent (state names on the state events)."""
    events = []
    for event in raw:
        details: dict[str, Any] = {}
        for key, value in event.items():
            if key.endswith("EventDetails") and isinstance(value, Mapping):
                details = dict(value)
        state = details.get("name") if event["type"].endswith(("Entered", "Exited")) else None
        events.append(HistoryEvent(event["type"], _epoch(event["timestamp"]), state, details))
    return events


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """What one execution did, as read from the emulator and the supervisor."""

    name: str
    execution_arn: str
    status: str
    error: str | None
    cause: str | None
    started_at: float
    stopped_at: float | None
    """The execution's stopDate, or when the harness first saw it ended if moto gives none."""
    output: Mapping[str, Any] | None
    history: list[HistoryEvent]
    instance_states: Mapping[str, str]
    """Every instance tagged with this execution, and its state in the emulator."""
    instance_events: list[InstanceEvent]
    bucket: str
    results_prefix: str
    manifest_present: bool
    # run.json's timings (every phase the agent ran, failures included), None without a record.
    record_timings: Mapping[str, float] | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    @property
    def all_instances_terminated(self) -> bool:
        return bool(self.instance_states) and all(
            state == "terminated" for state in self.instance_states.values()
        )

    @property
    def task_output(self) -> Mapping[str, Any] | None:
        """The agent's SendTaskSuccess output (``timings`` and ``results``), if it succeeded."""
        for event in self.history:
            if event.type == "ActivitySucceeded":
                output = event.details.get("output")
                parsed = json.loads(output) if isinstance(output, str) else None
                return parsed if isinstance(parsed, dict) else None
        return None

    def terminated_at(self, instance_id: str) -> float | None:
        """When the supervisor saw ``instance_id`` leave the running states."""
        for event in self.instance_events:
            if event.instance_id == instance_id and event.name == "terminated":
                return event.at
        return None


# -- the harness ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Nets:
    """Which of the nets outside the execution run (all, as deployed, by default)."""

    execution_rule: bool = True
    instance_rule: bool = True
    sweeper: bool = True
    sweep_interval_seconds: float = SWEEP_INTERVAL_SECONDS


class LocalRun:
    """A deployment in a running local AWS with its instances supervised and its nets armed.

    ``with LocalRun(...) as run:`` deploys, publishes the model (unless ``model_dir`` is None),
    and starts the supervisor and the nets; leaving the block stops the nets and the
    supervisor, which kills every agent and model process it started.
    """

    def __init__(
        self,
        aws: LocalAws,
        *,
        settings: LocalSettings,
        work_dir: Path,
        model_dir: Path | None,
        instance_options: InstanceOptions | None = None,
        backend: MachineBackend | None = None,
        nets: Nets | None = None,
    ) -> None:
        self.aws = aws
        self.settings = settings
        self.work_dir = Path(work_dir)
        self.model_dir = model_dir
        if backend is not None and instance_options is not None:
            raise ValueError("LocalRun: give instance_options (process backend) or a backend")
        # By default an instance is the real agent as a host process, running the demo scorer.
        self.backend = backend or ProcessBackend(
            instance_options or InstanceOptions(model_command=DEMO_MODEL_COMMAND)
        )
        self.nets = nets or Nets()
        self.deployment: Deployment | None = None
        self.deploy_started_at = 0.0
        self.deploy_ended_at = 0.0
        self.supervisor: InstanceSupervisor | None = None
        self.watcher: ExecutionStatusWatcher | None = None
        self.ticker: ScheduleTicker | None = None
        self.instance_watcher: InstanceStateWatcher | None = None
        self._sfn = aws.client("stepfunctions")
        self._ec2 = aws.client("ec2")
        self._s3 = aws.client("s3")
        # When each execution was first seen ended: moto 5.2.5 gives a timed-out execution no
        # stopDate.
        self._seen_ended: dict[str, float] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> LocalRun:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.deploy_started_at = time.time()
        self.deployment = deploy(self.aws, self.settings)
        if self.model_dir is not None:
            publish_model(
                self.aws, self.model_dir, self.deployment.bucket_name, self.settings.model_prefix
            )
        self.deploy_ended_at = time.time()
        self.supervisor = InstanceSupervisor(
            self.aws,
            project=self.settings.name,
            work_dir=self.work_dir / "instances",
            backend=self.backend,
        ).start()
        if self.nets.execution_rule:
            self.watcher = ExecutionStatusWatcher(self.aws, self.deployment.state_machine_arn)
            self.watcher.start()
        if self.nets.instance_rule:
            self.instance_watcher = InstanceStateWatcher(self.aws)
            self.instance_watcher.start()
        if self.nets.sweeper:
            period = rate_seconds(self.settings.sweeper_schedule_expression)
            self.ticker = ScheduleTicker(
                self.aws,
                self.deployment.sweeper_schedule_name,
                compression=period / self.nets.sweep_interval_seconds,
            )
            self.ticker.start()

    def stop(self) -> None:
        """Stop the nets, then the supervisor (every agent and model process with it)."""
        errors: list[str] = []
        for part in (self.ticker, self.watcher, self.instance_watcher, self.supervisor):
            if part is None:
                continue
            try:
                part.stop()
            except RuntimeError as exc:
                errors.append(str(exc))
        self.ticker = self.watcher = self.instance_watcher = None
        if errors:
            raise LocalRunError("; ".join(errors))

    @property
    def deployed(self) -> Deployment:
        if self.deployment is None:
            raise LocalRunError("LocalRun: use it as a context manager (deploy first)")
        return self.deployment

    @property
    def instances(self) -> InstanceSupervisor:
        if self.supervisor is None:
            raise LocalRunError("LocalRun: use it as a context manager (no supervisor yet)")
        return self.supervisor

    # -- executions ------------------------------------------------------------------------

    def start_execution(self, name: str, run_input: Mapping[str, Any] | None = None) -> str:
        """StartExecution with an explicit name (moto 5.2.5 would call an unnamed one None)."""
        arn: str = self._sfn.start_execution(
            stateMachineArn=self.deployed.state_machine_arn,
            name=name,
            input=json.dumps(dict(run_input or {})),
        )["executionArn"]
        return arn

    def status(self, execution_arn: str) -> str:
        status: str = self._sfn.describe_execution(executionArn=execution_arn)["status"]
        if status in TERMINAL_STATUSES:
            self._seen_ended.setdefault(execution_arn, time.time())
        return status

    def history(self, execution_arn: str) -> list[HistoryEvent]:
        raw: list[Mapping[str, Any]] = []
        for page in self._sfn.get_paginator("get_execution_history").paginate(
            executionArn=execution_arn
        ):
            raw.extend(page["events"])
        return history_events(raw)

    def wait_for_end(
        self,
        execution_arn: str,
        timeout: float,
        *,
        on_tick: Callable[[], None] | None = None,
    ) -> str:
        """The execution's final status; ``on_tick`` runs between polls (progress output)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(execution_arn)
            if on_tick is not None:
                on_tick()
            if status in TERMINAL_STATUSES:
                return status
            self._check_parts()
            if time.monotonic() > deadline:
                raise LocalRunError(
                    f"execution {execution_arn} still {status} after {timeout} s; raise the "
                    "timeout or look at the agent's log under the run's work directory"
                )
            time.sleep(0.1)

    def instance_states(self, execution_arn: str) -> dict[str, str]:
        """Every instance tagged with the execution, and its state in the emulator."""
        pages = self._ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": f"tag:{EXECUTION_TAG}", "Values": [execution_arn]}]
        )
        return {
            instance["InstanceId"]: instance["State"]["Name"]
            for page in pages
            for reservation in page["Reservations"]
            for instance in reservation["Instances"]
        }

    def wait_for_instances_terminated(self, execution_arn: str, timeout: float) -> bool:
        """True once every instance of the execution is terminated (and its agent is gone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() <= deadline:
            states = self.instance_states(execution_arn)
            if not states and self.status(execution_arn) in TERMINAL_STATUSES:
                return True  # it ended before launching any: nothing to terminate
            if states and all(state == "terminated" for state in states.values()):
                gone = all(
                    any(e.name == "terminated" for e in self.instances.events_of(instance_id))
                    for instance_id in states
                    if instance_id in self.instances.instances
                )
                if gone:
                    return True
            self._check_parts()
            time.sleep(0.1)
        return False

    def manifest_present(self, results_prefix: str) -> bool:
        try:
            self._s3.head_object(
                Bucket=self.deployed.bucket_name, Key=results_prefix + RESULTS_MANIFEST
            )
        except self._s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in NOT_FOUND_CODES:
                return False
            raise
        return True

    def outcome(self, execution_arn: str) -> RunOutcome:
        described = self._sfn.describe_execution(executionArn=execution_arn)
        name = described["name"]
        prefix = results_prefix(name)
        output = json.loads(described["output"]) if described.get("output") else None
        states = self.instance_states(execution_arn)
        return RunOutcome(
            name=name,
            execution_arn=execution_arn,
            status=described["status"],
            error=described.get("error"),
            cause=described.get("cause"),
            started_at=_epoch(described["startDate"]),
            stopped_at=(
                _epoch(described["stopDate"])
                if described.get("stopDate")
                else self._seen_ended.get(execution_arn)
            ),
            output=output,
            history=self.history(execution_arn),
            instance_states=states,
            instance_events=[e for i in states for e in self.instances.events_of(i)],
            bucket=self.deployed.bucket_name,
            results_prefix=prefix,
            manifest_present=self.manifest_present(prefix),
            record_timings=self.record_timings(prefix),
        )

    def record_timings(self, results_prefix: str) -> Mapping[str, float] | None:
        """The ``timings`` of the run's run.json, or None when there is none (or it is bad)."""
        try:
            body = self._s3.get_object(
                Bucket=self.deployed.bucket_name, Key=results_prefix + RUN_RECORD
            )["Body"].read()
        except self._s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in NOT_FOUND_CODES:
                return None
            raise
        try:
            timings = json.loads(body).get("timings")
        except (ValueError, AttributeError):
            return None
        return timings if isinstance(timings, dict) and timings else None

    def live_processes(self) -> set[int]:
        """Every agent or model process the supervisor started that is still alive."""
        return self.instances.live_pids()

    def objects(self, prefix: str) -> dict[str, bytes]:
        """Every object under ``prefix`` in the model bucket, by key."""
        found: dict[str, bytes] = {}
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.deployed.bucket_name, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                body = self._s3.get_object(Bucket=self.deployed.bucket_name, Key=item["Key"])
                found[item["Key"]] = body["Body"].read()
        return found

    def download_function_log(self, function_name: str, destination: Path) -> int:
        """Every line the function logged (its group ``/aws/lambda/<name>``), oldest first, into
        ``destination``; returns the number of lines."""
        logs = self.aws.client("logs")
        group = f"/aws/lambda/{function_name}"
        events: list[tuple[int, str]] = []
        try:
            pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group)
            for page in pages:
                events.extend((e["timestamp"], e["message"]) for e in page["events"])
        except logs.exceptions.ResourceNotFoundException:
            pass  # the function never ran
        destination.write_text("".join(f"{m}\n" for _, m in sorted(events)), encoding="utf-8")
        return len(events)

    def download_results(self, results_prefix: str, destination: Path) -> list[Path]:
        """Copy every object under ``results_prefix`` into ``destination``; returns the files."""
        written = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.deployed.bucket_name, Prefix=results_prefix
        ):
            for item in page.get("Contents", []):
                relative = item["Key"][len(results_prefix) :]
                if not relative or relative.endswith("/"):
                    continue
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                self._s3.download_file(self.deployed.bucket_name, item["Key"], str(target))
                written.append(target)
        return written

    def _check_parts(self) -> None:
        # A crashed supervisor or net must fail the run now, not at its timeout.
        for part in (self.watcher, self.ticker):
            if part is not None and part.error is not None:
                raise LocalRunError(f"{type(part).__name__} failed: {part.error}")
        error = self.supervisor.error if self.supervisor is not None else None
        if error is not None:
            raise LocalRunError(f"the instance supervisor failed: {error}")
