"""The agent's phases, from a booted instance to a reported run and a shut-down instance.

identity -> storage -> (model copy, image pull and warm read in background threads WHILE
long-polling for the task) -> task check -> heartbeat thread -> wait for the copy (or copy the
task's model if it differs) and the pull -> model run -> results upload (manifest last) ->
SendTaskSuccess / SendTaskFailure -> shutdown.

The deadline was armed by the user data before the agent started; the agent's own shutdown runs
on every path (success, failure, unexpected exception, SIGTERM) through ``Agent.run``'s finally.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from instance_agent import cold_start, systemd_scope
from instance_agent.activity import (
    ActivityTask,
    BadTaskInput,
    Heartbeat,
    S3Location,
    TaskLostError,
    build_cause,
    send_failure,
    send_success,
    wait_for_task,
)
from instance_agent.background import BackgroundJob
from instance_agent.config import AgentConfig, StorageSettings
from instance_agent.errors import AgentFailure
from instance_agent.imds import InstanceIdentity
from instance_agent.logs import TailHandler
from instance_agent.results import upload_results
from instance_agent.run_metrics import build_emf, emit, read_uptime_seconds, run_values
from instance_agent.run_record import cost_record, write_record
from instance_agent.runner import RunPaths, build_command, run_model, write_task_input
from instance_agent.storage import PreparedStorage
from run_contract.error_names import TASK_LOST_ERROR
from run_contract.run_record import corrected, new_record
from run_contract.s3_layout import RESULTS_MANIFEST

log = logging.getLogger("instance_agent.agent")

WORKER_NAME_LIMIT = 80  # GetActivityTask's workerName maximum length


class CopyReportLike(Protocol):
    @property
    def files(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def seconds(self) -> float: ...
    @property
    def mb_per_s(self) -> float: ...
    @property
    def model_version(self) -> str: ...


class CopyFunction(Protocol):
    def __call__(
        self,
        s3: Any,
        bucket: str,
        prefix: str,
        destination: Path,
        *,
        cancel: threading.Event | None = None,
    ) -> CopyReportLike: ...


class NoTaskError(Exception):
    """No activity task for this instance arrived within task_wait_seconds."""


class Terminated(BaseException):
    """SIGTERM: a BaseException so no ``except Exception`` in a library swallows it."""


@dataclasses.dataclass
class Services:
    """What the phases talk to; tests swap any of them."""

    sfn: Any
    s3: Any
    identity: Callable[[], InstanceIdentity]
    prepare_storage: Callable[[StorageSettings], PreparedStorage]
    copy_model: CopyFunction
    shutdown: Callable[[str], None]
    # Builds the heartbeat's own client (no SDK retries, see make_sfn_client) once a task
    # arrives, off the boot path; None: the heartbeat uses ``sfn``.
    make_heartbeat_sfn: Callable[[], Any] | None = None
    # An ECR client for a region, for the image pull's login; None: boto3's, built on demand.
    make_ecr: Callable[[str], Any] | None = None


class CopyJob:
    """One model copy in a background thread; ``wait`` returns its report or raises its error."""

    def __init__(
        self, copy: CopyFunction, s3: Any, location: S3Location, destination: Path
    ) -> None:
        self.location = location
        self.destination = destination
        self.cancel = threading.Event()
        self.report: CopyReportLike | None = None
        self.error: BaseException | None = None
        self._copy = copy
        self._s3 = s3
        self._thread = threading.Thread(target=self._run, name="model-copy", daemon=True)

    def start(self) -> None:
        log.info(
            "model copy: s3://%s/%s -> %s",
            self.location.bucket,
            self.location.prefix,
            self.destination,
        )
        self._thread.start()

    def _run(self) -> None:
        try:
            self.report = self._copy(
                self._s3,
                self.location.bucket,
                self.location.prefix,
                self.destination,
                cancel=self.cancel,
            )
        except BaseException as exc:
            self.error = exc

    def stop(self, timeout: float = 30.0) -> None:
        self.cancel.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wait(self, abort: threading.Event) -> CopyReportLike:
        while self._thread.is_alive():
            if abort.is_set():
                self.stop()
                raise TaskLostError("the model copy was stopped because the task is gone")
            self._thread.join(0.2)
        if self.error is not None:
            raise self.error
        if self.report is None:  # the copy function returned nothing: a bug, not a model problem
            raise AgentFailure("the model copy ended without a report")
        log.info(
            "model copy done: %d file(s), %d bytes in %.1f s (%.1f MB/s), version %s",
            self.report.files,
            self.report.bytes,
            self.report.seconds,
            self.report.mb_per_s,
            self.report.model_version,
        )
        return self.report


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        services: Services,
        tail: TailHandler | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.services = services
        self.tail = tail
        self.clock = clock
        self.abort = threading.Event()  # set when the task is gone: stop every phase
        self.identity: InstanceIdentity | None = None
        self.task: ActivityTask | None = None
        self.timings: dict[str, float] = {}
        self.copy_job: CopyJob | None = None
        self.heartbeat: Heartbeat | None = None
        self.copy_report: CopyReportLike | None = None
        self.pull_job: BackgroundJob[float] | None = None
        self.warm_job: BackgroundJob[Any] | None = None
        self.results_files = 0
        # The SUCCEEDED record and the manifest, once written: retracted if the run then fails
        # to report, so neither says SUCCEEDED for an execution that did not succeed.
        self._success_record: dict[str, Any] | None = None
        self._manifest_key: str | None = None
        self._started = clock()
        self._shutting_down = False
        # Seconds since boot when the agent started: the boot-to-agent metric.
        self.boot_to_agent = read_uptime_seconds(Path(config.metrics.uptime_file))
        self._started_wall = time.time()

    # -- entry point -------------------------------------------------------------------------

    def run(self) -> int:
        """All phases; returns the exit code. Shuts the instance down on every path."""
        failure: BaseException | None = None
        try:
            try:
                self._phases()
            except BaseException as exc:  # SIGTERM and bugs alike end in a report and a shutdown
                failure = exc
            if failure is not None:
                self._handle_failure(failure)
        finally:
            self._shutting_down = True
            self._stop_background()
            self._emit_metrics(succeeded=failure is None)
            self.services.shutdown("run succeeded" if failure is None else "run failed")
        return 0 if failure is None else 1

    def _handle_failure(self, failure: BaseException) -> None:
        if isinstance(failure, TaskLostError):
            log.error("task lost: %s; nothing more to report", failure)
            if self.task is not None:
                self._retract_success(
                    self.task, TASK_LOST_ERROR, f"{failure}: the execution did not take this run"
                )
        elif isinstance(failure, NoTaskError):
            log.error("%s", failure)
        elif isinstance(failure, Terminated) and self.task is None:
            # Stopped (by systemd at shutdown, or an operator) before any task arrived: polling
            # for the task to report on could outlast systemd's stop timeout and lose the
            # shutdown below. The workflow's StopInstance and the safety nets see the rest.
            log.error("%s before a task arrived; shutting down without polling", failure)
        elif isinstance(failure, BadTaskInput):
            # wait_for_task already failed the task on its own token.
            log.error("malformed task input: %s", failure)
        elif isinstance(failure, AgentFailure):
            log.error("run failed: %s: %s", failure.error_name, failure)
            self._report_failure(failure.error_name, str(failure))
        else:
            log.error("run failed unexpectedly", exc_info=failure)
            self._report_failure("AgentError", f"{type(failure).__name__}: {failure}")

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: unwinds the phases (report + shutdown) unless already shutting down."""
        if self._shutting_down:
            log.warning("SIGTERM during shutdown; finishing it")
            return
        self._shutting_down = True
        raise Terminated(f"the agent received signal {signum}")

    # -- phases ------------------------------------------------------------------------------

    def _timed(self, phase: str, started: float) -> None:
        self.timings[phase] = round(self.clock() - started, 3)

    def _phases(self) -> None:
        config = self.config
        started = self.clock()
        try:
            self.identity = identity = self.services.identity()
        finally:
            self._timed("identity", started)
        log.info(
            "instance %s (%s in %s)",
            identity.instance_id,
            identity.instance_type,
            identity.availability_zone,
        )
        self._record_boot_phases(identity)

        started = self.clock()
        try:
            storage = self.services.prepare_storage(config.storage)
        finally:
            self._timed("storage", started)
        model_dir = storage.path / "model"
        configured = S3Location(config.model.bucket, config.model.prefix)
        self.copy_job = CopyJob(self.services.copy_model, self.services.s3, configured, model_dir)
        copy_started = self.clock()
        self.copy_job.start()
        self._start_boot_jobs(storage.path)

        started = self.clock()
        try:
            task = self._wait_for_task()
        finally:
            self._timed("wait_for_task", started)
        self.task = task
        log.info(
            "task for execution %s (results s3://%s/%s)",
            task.input.execution_name,
            task.input.results.bucket,
            task.input.results.prefix,
        )
        self.heartbeat = Heartbeat(
            self._heartbeat_client(),
            task.token,
            config.heartbeat_interval_seconds,
            self._on_task_lost,
        )
        self.heartbeat.start()

        self._fail_if_pull_failed()
        self._finish_copy(self.copy_job, task, configured, model_dir, copy_started)
        self._finish_pull()
        self._wait_for_warm()
        self._run_and_report(task, storage.path, model_dir)

    def _record_boot_phases(self, identity: InstanceIdentity) -> None:
        """launch -> boot -> cloud-init -> bootstrap, as far as the clocks tell (cold_start)."""
        try:
            phases = cold_start.boot_phases(
                now=self._started_wall,
                uptime_seconds=self.boot_to_agent,
                launched_at=identity.launched_at,
                cloud_init_starts=cold_start.stage_starts(
                    Path(self.config.metrics.cloud_init_status_file)
                ),
            )
        except Exception:  # a clock we cannot read must not fail the run
            log.exception("could not measure the boot phases")
            return
        if phases:
            log.info("boot phases: %s", phases)
        self.timings.update(phases)

    def _start_boot_jobs(self, store: Path) -> None:
        """The image pull and the warm read, beside the copy (each on its own thread)."""
        config = self.config
        image = config.run.container_image
        if image:
            from instance_agent.container_image import prepare_image

            make_ecr = self.services.make_ecr or self._boto3_ecr
            self.pull_job = BackgroundJob(
                "image-pull",
                lambda cancel: prepare_image(image, config.container, store, make_ecr, cancel),
            ).start()
            log.info("image pull of %s started", image)
        if config.warm.paths:
            from instance_agent.warm import warm_paths

            paths, concurrency = config.warm.paths, config.warm.max_concurrency
            self.warm_job = BackgroundJob(
                "warm", lambda cancel: warm_paths(paths, concurrency, cancel)
            ).start()
            log.info("warm read of %s started", ", ".join(paths))

    def _boto3_ecr(self, region: str) -> Any:
        import boto3

        return boto3.client("ecr", region_name=region, endpoint_url=self.config.endpoint_url)

    def _fail_if_pull_failed(self) -> None:
        """A pull that failed while the agent waited ends the run now, not after the copy."""
        job = self.pull_job
        if job is not None and job.done and job.error is not None:
            self._finish_pull()

    def _finish_pull(self) -> None:
        job = self.pull_job
        if job is None:
            return
        started = self.clock()
        try:
            job.wait(self.abort, lambda: TaskLostError("the image pull was stopped: task gone"))
        finally:
            self._timed("image_pull_wait", started)
            if job.seconds is not None:
                self.timings["image_pull"] = job.seconds

    def _wait_for_warm(self) -> None:
        """The model imports what is being warmed: let the read finish first, for a while."""
        job = self.warm_job
        if job is None:
            return
        started = self.clock()
        limit = self.config.warm.max_wait_seconds
        try:
            ended = job.wait_at_most(
                limit, self.abort, lambda: TaskLostError("the warm read was stopped: task gone")
            )
        finally:
            self._timed("warm_wait", started)
        if ended:
            self._note_warm_done()
        else:
            log.warning("warm read still going after warm.max_wait_seconds=%d; model starts", limit)

    def _stop_warm(self) -> None:
        """Record the warm read's time; one still reading is stopped (the run is over)."""
        job, self.warm_job = self.warm_job, None
        if job is None:
            return
        job.stop()
        if job.seconds is not None:
            self.timings["warm"] = job.seconds

    def _heartbeat_client(self) -> Any:
        make = self.services.make_heartbeat_sfn
        return self.services.sfn if make is None else make()

    def _finish_copy(
        self,
        prefetch: CopyJob,
        task: ActivityTask,
        configured: S3Location,
        model_dir: Path,
        copy_started: float,
    ) -> None:
        """Wait for the prefetch, or replace it when the task names another model."""
        if task.input.model != configured:
            log.warning(
                "the task asks for s3://%s/%s, not the prefetched s3://%s/%s; copying that instead",
                task.input.model.bucket,
                task.input.model.prefix,
                configured.bucket,
                configured.prefix,
            )
            prefetch.stop()
            shutil.rmtree(model_dir, ignore_errors=True)
            self.copy_job = CopyJob(
                self.services.copy_model, self.services.s3, task.input.model, model_dir
            )
            copy_started = self.clock()
            self.copy_job.start()
            prefetch = self.copy_job
        started = self.clock()
        try:
            self.copy_report = prefetch.wait(self.abort)
        finally:  # a failed copy ran too: its time is recorded on every path
            self._timed("model_copy_wait", started)
            self._timed("model_copy", copy_started)

    def _run_and_report(self, task: ActivityTask, root: Path, model_dir: Path) -> None:
        config = self.config
        output_dir = root / config.run.output_subdir
        shutil.rmtree(output_dir, ignore_errors=True)  # a restarted run starts from nothing
        output_dir.mkdir(parents=True)
        task_input_path = root / "task-input.json"
        write_task_input(task_input_path, task.input.raw)
        paths = RunPaths(model_dir, output_dir, task_input_path, task.input.execution_name)
        runtime = task.input.max_runtime_seconds or config.max_runtime_seconds
        # Under systemd, a scope of its own holds everything the model starts; elsewhere (the
        # tests, the local emulator) its process group does.
        scope = None
        if systemd_scope.scope_available():
            scope = systemd_scope.scope_name(paths.run_name)
        started = self.clock()

        def first_output(seconds: float) -> None:
            self.timings["model_first_output"] = round(seconds, 3)
            if self.boot_to_agent is not None:  # the whole cold start: boot to a busy model
                since_boot = self.boot_to_agent + (self.clock() - self._started)
                self.timings["boot_to_first_output"] = round(since_boot, 3)
            log.info("the model's first line of output came %.1f s after its start", seconds)

        try:
            run_model(
                build_command(config.run, paths),
                runtime,
                kill_grace_seconds=config.run.kill_grace_seconds,
                cancel=self.abort,
                scope_unit=scope,
                on_first_output=first_output,
            )
        finally:
            self._timed("model_run", started)
        if self.abort.is_set():
            raise TaskLostError("the task was lost while the model ran")

        self._note_warm_done()
        started = self.clock()

        def record_success(files: int, _bytes: int) -> None:
            # Between the result files and the manifest: the manifest stays last. Written
            # before SendTaskSuccess because stop terminates the instance right after it; a
            # report that then fails retracts both (_retract_success).
            self._timed("results_upload", started)
            self.results_files = files
            self._success_record = self._write_record(task, "SUCCEEDED", None)
            self._manifest_key = task.input.results.prefix + RESULTS_MANIFEST

        try:
            results = upload_results(
                self.services.s3,
                output_dir,
                task.input.results.bucket,
                task.input.results.prefix,
                before_manifest=record_success,
            )
        finally:
            self._timed("results_upload", started)
            self._timed("total", self._started)
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self.abort.is_set():
            raise TaskLostError("the task was lost during the results upload")
        output = {
            "instance_id": task.input.instance_id,
            "results": {
                "bucket": results.bucket,
                "prefix": results.prefix,
                "manifest_key": results.manifest_key,
            },
            "timings": self.timings,
        }
        send_success(self.services.sfn, task.token, output)
        log.info("run succeeded; timings %s", self.timings)

    def _wait_for_task(self) -> ActivityTask:
        if self.identity is None:
            raise NoTaskError("the instance identity is unknown: cannot tell which task is ours")
        remaining = self.config.task_wait_seconds - (self.clock() - self._started)
        task = wait_for_task(
            self.services.sfn,
            self.config.activity_arn,
            self.worker_name,
            self.identity.instance_id,
            max(remaining, 0),
            clock=self.clock,
            stop=self.abort,
        )
        if task is None:
            raise NoTaskError(
                f"no activity task for {self.identity.instance_id} within "
                f"task_wait_seconds={self.config.task_wait_seconds}; giving up"
            )
        return task

    @property
    def worker_name(self) -> str:
        instance_id = self.identity.instance_id if self.identity else "unknown"
        return f"{self.config.worker_name_prefix}-{instance_id}"[-WORKER_NAME_LIMIT:]

    def _on_task_lost(self, reason: str) -> None:
        log.error("the task is gone (%s): stopping the copy and the model", reason)
        self.abort.set()
        if self.copy_job is not None:
            self.copy_job.cancel.set()

    def _note_warm_done(self) -> None:
        """The boot jobs' times, for those that have ended (a record or metrics line is due)."""
        for phase, job in (("warm", self.warm_job), ("image_pull", self.pull_job)):
            if job is not None and job.seconds is not None:
                self.timings[phase] = job.seconds

    def _stop_background(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self.copy_job is not None:
            self.copy_job.stop()
        if self.pull_job is not None:
            self.pull_job.stop()
        self._stop_warm()

    def _report_failure(self, error: str, message: str) -> None:
        """SendTaskFailure with the log's tail; before the task arrived, fetch it first.

        A failure before the task (no instance store, say) is still reported: the agent polls
        for its task so the execution fails now, not at its timeout.
        """
        if self.heartbeat is not None:
            self.heartbeat.stop()
        try:
            if self.task is None:
                if self.identity is None or self.abort.is_set():
                    log.error("no task to report %s to; shutting down", error)
                    return
                log.info("polling for the task to report %s", error)
                self.task = self._wait_for_task()
            if self._success_record is None:
                self._write_record(self.task, "FAILED", (error, message))
            self._retract_success(self.task, error, message)
            tail = self.tail.text() if self.tail is not None else ""
            sent = send_failure(
                self.services.sfn, self.task.token, error, build_cause(message, tail)
            )
            if sent:
                log.info("reported %s to Step Functions", error)
        except BaseException:
            log.exception("could not report %s; the workflow's timeouts will catch it", error)

    # -- run record and metrics (never raise: they must not change the run's outcome) --------

    def _lifetime_seconds(self) -> float | None:
        return read_uptime_seconds(Path(self.config.metrics.uptime_file))

    def _retract_success(self, task: ActivityTask, error: str, message: str) -> None:
        """A SUCCEEDED record written before a failure becomes FAILED (with a ``correction``)
        and the manifest goes: the run did not report success, so its results are not the
        execution's. Nothing to do when neither was written."""
        record, self._success_record = self._success_record, None
        results = task.input.results
        if record is not None:
            try:
                fixed = corrected(record, error=(error, message[:2000]), by="agent")
                write_record(self.services.s3, results.bucket, results.prefix, fixed)
            except Exception:
                log.exception("could not correct the run record; the launcher's stop checks it")
        manifest_key, self._manifest_key = self._manifest_key, None
        if manifest_key is not None:
            try:
                self.services.s3.delete_object(Bucket=results.bucket, Key=manifest_key)
                log.warning(
                    "deleted s3://%s/%s: the run did not succeed", results.bucket, manifest_key
                )
            except Exception:
                log.exception("could not delete the results manifest %s", manifest_key)

    def _write_record(
        self, task: ActivityTask, status: str, error: tuple[str, str] | None
    ) -> dict[str, Any] | None:
        """Build and PUT the record; the record, or None when it could not be written."""
        self._note_warm_done()
        identity = self.identity
        instance = {
            "instance_id": identity.instance_id if identity else task.input.instance_id,
            "instance_type": identity.instance_type if identity else "",
            "availability_zone": identity.availability_zone if identity else "",
        }
        report = self.copy_report
        results = task.input.results
        lifetime = self._lifetime_seconds()
        try:
            from instance_agent import prices

            gets = prices.model_copy_get_requests(report.files, report.bytes) if report else 0
            cost, note = cost_record(
                instance_type=instance["instance_type"],
                region=self.config.region,
                lifetime_seconds=lifetime,
                root_volume_gib=self.config.root_volume_gib,
                get_requests=gets,
                # The result files, run.json and the manifest.
                put_requests=self.results_files + 2,
            )
            record = new_record(
                written_by="agent",
                execution_name=task.input.execution_name,
                execution_arn=task.input.execution_arn,
                status=status,
                error=error,
                run_input={k: v for k, v in task.input.raw.items() if k != "instance_id"},
                instance=instance,
                timings=self.timings,
                lifetime_seconds=lifetime,
                model=None
                if report is None
                else {
                    "bucket": self.copy_job.location.bucket if self.copy_job else "",
                    "prefix": self.copy_job.location.prefix if self.copy_job else "",
                    "version": report.model_version,
                    "files": report.files,
                    "bytes": report.bytes,
                    "copy_mb_per_s": round(report.mb_per_s, 1),
                },
                output={
                    "bucket": results.bucket,
                    "prefix": results.prefix,
                    "manifest_key": results.prefix + RESULTS_MANIFEST,
                }
                if status == "SUCCEEDED"
                else None,
                cost=cost,
                cost_note=note,
            )
            write_record(self.services.s3, results.bucket, results.prefix, record)
        except Exception:
            log.exception(
                "could not write the run record; the launcher's stop writes a minimal one"
            )
            return None
        return record

    def _emit_metrics(self, *, succeeded: bool) -> None:
        self._note_warm_done()
        try:
            identity = self.identity
            task = self.task
            report = self.copy_report
            values = run_values(
                self.timings,
                boot_to_agent_seconds=self.boot_to_agent,
                lifetime_seconds=self._lifetime_seconds(),
                copy_mb_per_s=report.mb_per_s if report else None,
                succeeded=succeeded,
            )
            properties = {
                "ExecutionName": task.input.execution_name if task else None,
                "InstanceId": identity.instance_id if identity else None,
                "AvailabilityZone": identity.availability_zone if identity else None,
                "ModelVersion": report.model_version if report else None,
                "ModelBytes": report.bytes if report else None,
            }
            document = build_emf(
                namespace=self.config.metrics.namespace,
                instance_type=identity.instance_type if identity else "",
                values=values,
                properties=properties,
            )
            emit(document, Path(self.config.metrics.file))
        except Exception:
            log.exception("could not emit the run metrics")


def install_sigterm(agent: Agent) -> None:
    import signal

    signal.signal(signal.SIGTERM, agent.on_sigterm)
