"""The end-to-end cases: real executions through the one harness, run once and then read.

A case (``run_case``) deploys the stack into the module's local AWS (``LocalRun``: the state
machine rendered by Terraform, the launcher's code in the local Lambda runtime, the real agent as
a process per instance, the nets outside the execution), starts one execution, lets a test act
on it while it runs (``during``), waits for its end and its instance's termination, and keeps
what it left (``FinishedRun``) before emptying the emulator. Module-scoped fixtures run each case
once; the tests then read one behaviour each.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.s3.models import S3Backend

from local_aws import process_tree
from local_aws.deployment import REPO_ROOT
from local_aws.local_run import LocalRun, Nets, RunOutcome
from local_aws.process_machine import ProcessMachine
from local_aws.safety_nets import Delivery
from local_aws.server import LocalAws
from tests.conftest import start_local_run
from tests.end_to_end.model_commands import MODEL_PID_FILE
from tests.support.waiting import wait_until

# From the execution's end (its stopDate) to the supervisor seeing the instance terminated.
# Negative when StopInstance terminated it before the execution ended, as on the happy path.
TERMINATED_WITHIN_SECONDS = 10.0
# After the instance is terminated, its agent and model processes must be gone within this.
NO_PROCESS_WITHIN_SECONDS = 5.0
# RunModel's HeartbeatSeconds, and how often the agent beats (Terraform's minimum is 5 s).
HEARTBEAT_TIMEOUT_SECONDS = 6
AGENT_HEARTBEAT_SECONDS = 1
EXECUTION_TIMEOUT_SECONDS = 60
SETTINGS: dict[str, Any] = {
    "heartbeat_timeout_seconds": HEARTBEAT_TIMEOUT_SECONDS,
    "activity_timeout_seconds": 40,
    "execution_timeout_seconds": EXECUTION_TIMEOUT_SECONDS,
    "max_runtime_seconds": 20,
    "run_parameters": {"threshold": 0.5},
}
AGENT_CONFIG: dict[str, Any] = {
    "heartbeat_interval_seconds": AGENT_HEARTBEAT_SECONDS,
    "run": {"kill_grace_seconds": 2},
}

During = Callable[[LocalRun, str], None]
Tamper = Callable[[LocalRun], None]


def settings(**overrides: Any) -> dict[str, Any]:
    return {**SETTINGS, **overrides}


@dataclasses.dataclass(frozen=True)
class FinishedRun:
    """Everything a test reads once a case's execution ended and its instance is gone."""

    outcome: RunOutcome
    results: dict[str, bytes]
    """Every object under the run's results prefix, by key."""
    s3_writes: list[str]
    """Keys under the results prefix, in the order their PUTs completed."""
    agent_log: str
    agent_exit_code: int | None
    shutdown_calls: list[str]
    """The arguments of each call of the agent's shutdown command."""
    model_dir: Path | None
    model_pids_alive: list[int]
    """Processes of the model command (SLEEPER_COMMAND's) still alive after the instance."""
    leftover_pids: set[int]
    """Agent or model processes still alive NO_PROCESS_WITHIN_SECONDS after the end."""
    seconds_to_terminated: dict[str, float | None]
    """Per instance: from the execution's end to the supervisor seeing it terminated."""
    deliveries: list[Delivery]
    """What the execution-status rule's stand-in delivered to the launcher."""
    instance_deliveries: list[Delivery]
    """What the instance-lost rule's stand-in delivered to the launcher."""

    @property
    def status(self) -> str:
        return self.outcome.status

    @property
    def error(self) -> str | None:
        return self.outcome.error

    @property
    def cause(self) -> str:
        return self.outcome.cause or ""

    @property
    def results_prefix(self) -> str:
        return self.outcome.results_prefix

    @property
    def instance_id(self) -> str:
        (instance_id,) = self.outcome.instance_states
        return instance_id

    def result(self, relative: str) -> bytes:
        return self.results[self.results_prefix + relative]


def assert_agent_exited_after_its_shutdown(finished: FinishedRun) -> None:
    """The agent asked for the shutdown once, then exited 0, or was killed when the launcher's
    stop terminated the instance first (a loaded machine; on EC2 too, the termination can
    overtake the agent's own exit after it reported the run)."""
    assert finished.shutdown_calls == ["-h now"], finished.agent_log
    assert finished.agent_exit_code in (0, -signal.SIGKILL), finished.agent_log
    if finished.agent_exit_code != 0:
        assert "shutting down the instance" in finished.agent_log


def assert_ended_cleanly(finished: FinishedRun, *, status: str, error: str | None) -> None:
    """What every case shows: its status and error, one instance, terminated in time, no
    results manifest for a failed run, and no process outliving the instance."""
    outcome = finished.outcome
    assert (outcome.status, outcome.error) == (status, error), (
        f"{outcome.cause}\n--- agent log ---\n{finished.agent_log}"
    )
    assert len(outcome.instance_states) == 1, outcome.instance_states
    assert outcome.all_instances_terminated, outcome.instance_states
    for instance_id, seconds in finished.seconds_to_terminated.items():
        assert seconds is not None, f"the supervisor never saw {instance_id} terminated"
        assert seconds <= TERMINATED_WITHIN_SECONDS, f"{instance_id}: {seconds:.1f} s"
    if status != "SUCCEEDED":
        assert not outcome.manifest_present, "a failed run must leave no results manifest"
    assert finished.leftover_pids == set(), "agent or model processes outlived the instance"


@contextlib.contextmanager
def recorded_s3_writes(prefix: str) -> Iterator[list[str]]:
    """The keys under ``prefix`` that the emulator stored, in order (PutObject)."""
    writes: list[str] = []
    original = S3Backend.put_object

    def put_object(self: S3Backend, bucket: str, key: str, *args: Any, **kwargs: Any) -> Any:
        stored = original(self, bucket, key, *args, **kwargs)
        if key.startswith(prefix):
            writes.append(key)
        return stored

    S3Backend.put_object = put_object  # type: ignore[method-assign, assignment]
    try:
        yield writes
    finally:
        S3Backend.put_object = original  # type: ignore[method-assign]


def process_machine(run: LocalRun, instance_id: str) -> ProcessMachine:
    machine = run.instances.machine_of(instance_id)
    assert isinstance(machine, ProcessMachine), machine
    return machine


def instance_of(run: LocalRun, execution_arn: str, timeout: float = 30.0) -> str:
    """The instance the launcher started for the execution (waits for its machine)."""
    found: list[str] = []

    def started() -> bool:
        found[:] = [i for i in run.instance_states(execution_arn) if run.instances.machine_of(i)]
        return bool(found)

    wait_until(started, timeout, "the execution's instance boots")
    return found[0]


def model_pids(run: LocalRun, instance_id: str) -> list[int]:
    """The pids SLEEPER_COMMAND wrote (itself and its child); empty before it ran."""
    pid_file = process_machine(run, instance_id).paths.mount_point / MODEL_PID_FILE
    if not pid_file.exists():
        return []
    return [int(pid) for pid in pid_file.read_text(encoding="utf-8").split()]


def wait_for_model(run: LocalRun, execution_arn: str) -> list[int]:
    """Wait until SLEEPER_COMMAND runs with its child; returns their pids."""
    instance_id = instance_of(run, execution_arn)
    wait_until(lambda: len(model_pids(run, instance_id)) == 2, 60, "the model runs")
    return model_pids(run, instance_id)


def task_taken(run: LocalRun, execution_arn: str) -> bool:
    return any(e.type == "ActivityStarted" for e in run.history(execution_arn))


_case_numbers = itertools.count(1)


def run_case(
    aws: LocalAws,
    model_dir: Path | None,
    work_dir: Path,
    *,
    settings: dict[str, Any] | None = None,
    nets: Nets | None = None,
    tamper: Tamper | None = None,
    during: During | None = None,
    execution_input: dict[str, Any] | None = None,
    name: str | None = None,
    **options: Any,
) -> FinishedRun:
    """One execution from deploy to a gone instance; the emulator is emptied afterwards."""
    options["config_overrides"] = {**AGENT_CONFIG, **options.get("config_overrides", {})}
    name = name or f"case-{next(_case_numbers)}"
    run = start_local_run(
        aws,
        work_dir=work_dir,
        model_dir=model_dir,
        settings=settings if settings is not None else SETTINGS,
        nets=nets,
        **options,
    )
    try:
        with recorded_s3_writes(f"runs/{name}/") as writes:
            if tamper is not None:
                tamper(run)
            arn = run.start_execution(name, execution_input)
            if during is not None:
                during(run, arn)
            run.wait_for_end(arn, run.settings.execution_timeout_seconds + 15)
            run.wait_for_instances_terminated(arn, TERMINATED_WITHIN_SECONDS + 5)
        deadline = time.monotonic() + NO_PROCESS_WITHIN_SECONDS
        while run.live_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        outcome = run.outcome(arn)
        instances = list(outcome.instance_states)
        machine = process_machine(run, instances[0]) if len(instances) == 1 else None
        return FinishedRun(
            outcome=outcome,
            results=run.objects(outcome.results_prefix),
            s3_writes=list(writes),
            agent_log=machine.paths.log.read_text(errors="replace")
            if machine and machine.paths.log.exists()
            else "",
            agent_exit_code=machine.exit_code if machine else None,
            shutdown_calls=machine.paths.shutdown_calls.read_text().splitlines()
            if machine and machine.paths.shutdown_calls.exists()
            else [],
            model_dir=machine.paths.mount_point / "model" if machine else None,
            model_pids_alive=[
                pid for pid in model_pids(run, instances[0]) if process_tree.is_alive(pid)
            ]
            if machine
            else [],
            leftover_pids=run.live_processes(),
            seconds_to_terminated={
                i: None
                if (seen := outcome.terminated_at(i)) is None or outcome.stopped_at is None
                else seen - outcome.stopped_at
                for i in instances
            },
            deliveries=list(run.watcher.deliveries) if run.watcher else [],
            instance_deliveries=list(run.instance_watcher.deliveries)
            if run.instance_watcher
            else [],
        )
    finally:
        run.stop()
        aws.reset()


RunCase = Callable[..., FinishedRun]

# The Deep Learning AMI's python3 (the agent's oldest target, instance_agent.build.MIN_PYTHON).
AMI_PYTHON_VERSION = "3.10"


def ami_python() -> Path | None:
    """A working Python of the AMI's version here (pyenv's, then PATH's), or None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(pyenv.glob(f"{AMI_PYTHON_VERSION}.*/bin/python{AMI_PYTHON_VERSION}"))
    on_path = shutil.which(f"python{AMI_PYTHON_VERSION}")
    for python in [*reversed(candidates), *([Path(on_path)] if on_path else [])]:
        # A pyenv shim on PATH exists but fails when that version is not selected.
        probe = subprocess.run(
            [str(python), "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0:
            return python
    return None


@pytest.fixture(scope="session")
def agent_artifact_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make build`'s artifact, built and unpacked as the bootstrap does: its ``site`` dir,
    the unit's PYTHONPATH (/opt/instance-agent/site)."""
    from instance_agent.build import build

    work = tmp_path_factory.mktemp("artifact")
    tarball = build(work / "instance-agent.tar.gz", REPO_ROOT / "requirements.txt")
    unpacked = work / "opt" / "instance-agent"
    unpacked.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        archive.extractall(unpacked, filter="data")
    return unpacked / "site"


@pytest.fixture(scope="module")
def case(
    local_aws_server_for_module: LocalAws,
    demo_model: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> RunCase:
    """``case(**kwargs)`` runs one case (see ``run_case``) in the module's local AWS."""

    def run(*, publish: bool = True, **kwargs: Any) -> FinishedRun:
        return run_case(
            local_aws_server_for_module,
            demo_model if publish else None,
            tmp_path_factory.mktemp("case"),
            **kwargs,
        )

    return run
