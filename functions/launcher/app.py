"""Lambda entry point: ``launcher.app.handler``.

Parses the event at the edge, dispatches on its action, and returns plain JSON. Errors are
raised under the class names of docs/design.md, which the workflow retries and catches on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from launcher import (
    clients,
    executions,
    instances,
    lost_instances,
    metric_names,
    run_lock,
    run_record,
    settings,
)
from launcher.errors import EventValidationError, InsufficientCapacityEverywhere
from launcher.events import (
    CleanupEvent,
    InstanceLostEvent,
    StartEvent,
    StopEvent,
    SweepEvent,
    parse_event,
)

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def _count(name: str, value: int = 1) -> None:
    # Zeros are published too: "no fallback" and "nothing to terminate" are data points.
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def _start(event: StartEvent) -> dict[str, Any]:
    template = settings.launch_template()
    project = settings.project_name()
    lifetime = settings.max_instance_lifetime_seconds()
    if event.run.max_runtime_seconds >= lifetime:
        # The user data's hard deadline would kill the run before it could finish.
        raise EventValidationError(
            [
                (
                    "run.max_runtime_seconds",
                    f"{event.run.max_runtime_seconds} must be below MAX_INSTANCE_LIFETIME_SECONDS "
                    f"({lifetime}), which also covers boot and the model copy; lower it or raise "
                    "the instance lifetime in Terraform",
                )
            ]
        )
    executions.confirm_running(
        clients.stepfunctions(),
        event.execution_arn,
        event.unqualified_state_machine_arn,
        settings.state_machine_arn(),
    )
    run_lock.ensure_only_run(
        clients.stepfunctions(), event.unqualified_state_machine_arn, event.execution_arn
    )
    try:
        instance = instances.start_instance(
            clients.ec2(),
            template=template,
            project=project,
            execution_arn=event.execution_arn,
            execution_name=event.execution_name,
            instance_types=event.run.instance_types,
            subnet_ids=event.run.subnet_ids,
        )
    except InsufficientCapacityEverywhere as error:
        _count(metric_names.CAPACITY_FALLBACKS, len(error.attempts))
        raise
    _count(metric_names.CAPACITY_FALLBACKS, len(instance.capacity_fallbacks))
    _count(metric_names.INSTANCES_REUSED if instance.reused else metric_names.INSTANCES_LAUNCHED)
    logger.info("Instance ready for the run", extra=instance.as_result())
    return instance.as_result()


def _stop(event: StopEvent) -> dict[str, Any]:
    instance_id = event.instance.instance_id if event.instance else None
    outcome = instances.stop_run(
        clients.ec2(), settings.project_name(), event.execution_arn, instance_id
    )
    # After the termination, which matters more: a record the agent wrote is kept unless the
    # workflow's error contradicts it.
    recorded = run_record.record_the_run(clients.s3(), clients.ec2(), event, datetime.now(UTC))
    _count(metric_names.RUN_RECORDS_WRITTEN, int(recorded == "written"))
    _count(metric_names.RUN_RECORDS_CORRECTED, int(recorded == "corrected"))
    return _terminated(outcome)


def _cleanup(event: CleanupEvent) -> dict[str, Any]:
    status = executions.confirm_ended(clients.stepfunctions(), event.execution_arn, event.status)
    outcome = instances.cleanup_run(clients.ec2(), settings.project_name(), event.execution_arn)
    if outcome.terminated:
        # An instance outliving its execution means the workflow's own StopInstance missed it.
        logger.warning(
            "Cleanup terminated instances left by the execution", extra={"status": status}
        )
    return _terminated(outcome)


def _sweep(_: SweepEvent) -> dict[str, Any]:
    outcome = instances.sweep(
        clients.ec2(),
        settings.project_name(),
        settings.max_instance_lifetime_seconds(),
        now=datetime.now(UTC),
    )
    # Every instance the sweeper finds was missed by all the other nets: the alarm's metric.
    _count(
        metric_names.INSTANCES_PAST_LIFETIME, len(outcome.terminated) + len(outcome.already_gone)
    )
    return _terminated(outcome)


def _instance_lost(event: InstanceLostEvent) -> dict[str, Any]:
    outcome = lost_instances.handle_lost_instance(
        ec2=clients.ec2(),
        sfn=clients.stepfunctions(),
        poll_sfn=clients.activity_poller(),
        project=settings.project_name(),
        activity_arn=settings.activity_arn(),
        instance_id=event.instance_id,
        state=event.state,
    )
    if outcome.outcome != "ignored":
        logger.warning("A run's instance was lost", extra=outcome.as_result())
    _count(metric_names.RUNS_FAILED_BY_LOST_INSTANCE, int(outcome.outcome != "ignored"))
    return outcome.as_result()


def _terminated(outcome: instances.Termination) -> dict[str, Any]:
    _count(metric_names.INSTANCES_TERMINATED, len(outcome.terminated))
    logger.info("Termination done", extra=outcome.as_result())
    return outcome.as_result()


# clear_state: keys appended by a previous invocation (action, execution_arn) never leak.
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run one launcher action; see docs/design.md for events and results."""
    # Read at invocation, so a test or the local AWS can set the environment after import.
    metrics.namespace = settings.metrics_namespace()
    try:
        parsed = parse_event(event)
        # The execution ARN on every line lets `gpurun logs <run>` find the launcher's lines.
        logger.append_keys(
            action=parsed.action, execution_arn=getattr(parsed, "execution_arn", None)
        )
        match parsed:
            case StartEvent():
                return _start(parsed)
            case StopEvent():
                return _stop(parsed)
            case CleanupEvent():
                return _cleanup(parsed)
            case SweepEvent():
                return _sweep(parsed)
            case InstanceLostEvent():
                return _instance_lost(parsed)
    except Exception as error:
        # One metric per error class (RunAlreadyInProgress, ClientError, ...) for the alarms.
        _count(type(error).__name__)
        logger.warning("Action failed", extra={"error": type(error).__name__, "cause": str(error)})
        raise
