"""The one place where moto's gaps are patched, so the workflow runs locally as on AWS.

Pinned to moto 5.2.5: every patch below was written against that version's source and
`apply_moto_workarounds()` refuses to run on any other version.

What moto 5.2.5 lacks, and what this module does about it:

Activities
    moto's interpreter gives every execution an empty activity store, so an activity task state
    fails at once, and the GetActivityTask API is not implemented. Here an activity task state
    publishes its task to a process-wide queue per activity ARN; `GetActivityTask` long-polls
    that queue (up to `activity_poll_seconds`, then an empty `taskToken`, as AWS does after 60 s)
    and hands each task out exactly once, recording the worker name in the ActivityStarted event.
    `TimeoutSeconds` and `HeartbeatSeconds` count from the moment a worker takes the task, as on
    AWS (moto counted the task timeout from scheduling). A missed heartbeat fails the state with
    `States.HeartbeatTimeout` (AWS's name; moto said `States.Timeout`). `SendTaskSuccess`,
    `SendTaskFailure` (now with its `cause`, which moto dropped) and `SendTaskHeartbeat` drive
    the waiting state; on a closed or timed-out task they fail with `TaskTimedOut`, on an
    unknown token with `InvalidToken`.

Fail states
    moto refuses a Fail state whose `ErrorPath` resolves to a `States.*` name (it treats it as a
    custom error name), so re-raising a caught `States.Timeout` or `States.HeartbeatTimeout`
    ended the execution with `States.Runtime` instead. Here the Fail state reports the name it
    was given, as AWS does.

Execution names
    moto names an execution started without a `name` "None" (its ARN ends in `:None`), so every
    schedule-started or console-started run would share one name. Here such an execution gets a
    UUID, as on AWS.

Ended executions
    moto records no error (and DescribeExecution no stopDate) for a TIMED_OUT execution, and
    drops StopExecution's error and cause. Here a timed-out execution reports `States.Timeout`
    and its stop date, as AWS does, and an aborted one keeps the error and cause given to
    StopExecution.

Lambda
    Without Docker moto answers every invoke with its own payload. Here an invoke of a function
    with a registered Python handler runs that handler in-process, with the function's configured
    environment variables set around the call and a fake LambdaContext. An exception becomes a
    Lambda function error whose `errorType` is the exception's class name, so Step Functions'
    Retry and Catch see that name, as on AWS. Functions without a handler keep moto's echo.

Usage, in-process::

    apply_moto_workarounds(activity_poll_seconds=1)
    register_lambda_handler("launcher", launcher.app.handler)
    with mock_aws(config=MOTO_CONFIG): ...

or as a server another process talks to: `start_moto_server()`.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

import moto
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.config import DefaultConfig, default_user_config
from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.stepfunctions.exceptions import ActivityDoesNotExist, InvalidToken
from moto.stepfunctions.parser.api import (
    ActivityScheduledEventDetails,
    ActivityStartedEventDetails,
    ActivitySucceededEventDetails,
    ActivityTimedOutEventDetails,
    ExecutionFailedEventDetails,
    ExecutionStatus,
    HistoryEventExecutionDataDetails,
    HistoryEventType,
    TaskFailedEventDetails,
)
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
    CustomErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_activitiy import (
    StateTaskActivity,
)
from moto.stepfunctions.parser.asl.component.state.fail.state_fail import StateFail
from moto.stepfunctions.parser.asl.eval.callback.callback import (
    CallbackOutcomeFailure,
    CallbackOutcomeFailureError,
)
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.models import (
    StepFunctionsParserBackend,
    stepfunctions_parser_backends,
)
from moto.stepfunctions.parser.utils import TMP_THREADS
from moto.stepfunctions.responses import StepFunctionResponse

PINNED_MOTO_VERSION: Final = "5.2.5"

# The mock_aws config under which the workarounds apply: the real interpreter, Lambda without
# Docker (the registered handlers replace the container).
MOTO_CONFIG: Final[DefaultConfig] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}

# AWS's long-poll limit for GetActivityTask.
AWS_ACTIVITY_POLL_SECONDS: Final = 60.0

# How often a waiting state looks whether its execution has ended (stopped or timed out).
_EXECUTION_CHECK_SECONDS: Final = 0.2

LambdaHandler = Callable[[Any, Any], Any]


class MotoVersionError(RuntimeError):
    """The installed moto is not the version these workarounds were written against."""


def check_moto_version(found: str) -> None:
    """Refuse any moto but the pinned one: the patches reach into moto's internals."""
    if found != PINNED_MOTO_VERSION:
        raise MotoVersionError(
            f"local_aws.moto_workarounds is written against moto {PINNED_MOTO_VERSION}, "
            f"but moto {found} is installed: install moto=={PINNED_MOTO_VERSION} "
            "(requirements-dev.txt), or re-check every patch in this module against the new "
            "version's stepfunctions and awslambda_simple sources and update "
            "PINNED_MOTO_VERSION"
        )


# --------------------------------------------------------------------------------------------
# Activities
# --------------------------------------------------------------------------------------------


class TaskTimedOutError(AWSError):
    """AWS's answer to SendTask* for a task that is closed or timed out."""

    TYPE = "TaskTimedOut"
    STATUS = 400


class _TaskState(Enum):
    SCHEDULED = "scheduled"
    STARTED = "started"
    CLOSED = "closed"


@dataclass
class _ActivityTask:
    token: str
    activity_arn: str
    task_input: str
    state: _TaskState = _TaskState.SCHEDULED
    worker_name: str | None = None
    # Success output (JSON text) or failure (error, cause); set once, under the broker's lock.
    output: str | None = None
    failure: tuple[str | None, str | None] | None = None
    last_heartbeat: float = 0.0
    # Set on every change a waiting state must see: taken, heartbeat, outcome.
    changed: threading.Event = field(default_factory=threading.Event)

    def is_closed(self) -> bool:
        return self.state is _TaskState.CLOSED


class _ActivityBroker:
    """Process-wide activity queues: moto's backends keep none that its interpreter can use."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._queues: dict[str, deque[_ActivityTask]] = {}
        self._tasks: dict[str, _ActivityTask] = {}
        self.poll_seconds = AWS_ACTIVITY_POLL_SECONDS

    def publish(self, token: str, activity_arn: str, task_input: str) -> _ActivityTask:
        task = _ActivityTask(token=token, activity_arn=activity_arn, task_input=task_input)
        with self._lock:
            self._tasks[token] = task
            self._queues.setdefault(activity_arn, deque()).append(task)
            self._lock.notify_all()
        return task

    def take(self, activity_arn: str, worker_name: str | None) -> _ActivityTask | None:
        """The next scheduled task of the activity, handed out once; None after the poll."""
        deadline = time.monotonic() + self.poll_seconds
        with self._lock:
            while True:
                queue = self._queues.setdefault(activity_arn, deque())
                while queue:
                    task = queue.popleft()
                    if task.state is _TaskState.SCHEDULED:
                        task.state = _TaskState.STARTED
                        task.worker_name = worker_name
                        task.last_heartbeat = time.monotonic()
                        task.changed.set()
                        return task
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._lock.wait(remaining)

    def _open_task(self, token: str) -> _ActivityTask:
        task = self._tasks.get(token)
        if task is None:
            raise InvalidToken(f"'{token}'")
        if task.state is not _TaskState.STARTED:
            raise TaskTimedOutError("Task Timed Out: 'Provided task does not exist anymore'")
        return task

    def knows(self, token: str) -> bool:
        with self._lock:
            return token in self._tasks

    def succeed(self, token: str, output: str) -> None:
        with self._lock:
            task = self._open_task(token)
            task.output = output
            task.state = _TaskState.CLOSED
            task.changed.set()

    def fail(self, token: str, error: str | None, cause: str | None) -> None:
        with self._lock:
            task = self._open_task(token)
            task.failure = (error, cause)
            task.state = _TaskState.CLOSED
            task.changed.set()

    def heartbeat(self, token: str) -> None:
        with self._lock:
            task = self._open_task(token)
            task.last_heartbeat = time.monotonic()
            task.changed.set()

    def close(self, task: _ActivityTask) -> bool:
        """Close a task the waiting state gives up on; False if an outcome won the race."""
        with self._lock:
            if task.state is _TaskState.CLOSED:
                return False
            task.state = _TaskState.CLOSED
            return True


_broker = _ActivityBroker()


class _ActivityHeartbeatTimeoutError(TimeoutError):
    pass


class _ActivityTimeoutError(TimeoutError):
    pass


def _activity_from_error(self: Any, env: Any, ex: Exception) -> Any:
    """As moto's, plus AWS's own name for a missed heartbeat."""
    if isinstance(ex, _ActivityHeartbeatTimeoutError):
        error_type = StatesErrorNameType.StatesHeartbeatTimeout
    elif isinstance(ex, TimeoutError):
        error_type = StatesErrorNameType.StatesTimeout
    else:
        return _original_activity_from_error(self, env, ex)
    return FailureEvent(
        env=env,
        error_name=StatesErrorName(typ=error_type),
        event_type=HistoryEventType.ActivityTimedOut,
        event_details=_details(
            activityTimedOutEventDetails=ActivityTimedOutEventDetails(
                error=error_type.to_name(), cause=str(ex)
            )
        ),
    )


def _details(**kwargs: Any) -> Any:
    """An EventDetails dict (a TypedDict whose every key mypy would otherwise demand)."""
    return kwargs


def _read_timeouts(state: Any, env: Any) -> tuple[int | None, int | None]:
    """(TimeoutSeconds, HeartbeatSeconds) of the state; None where the ASL sets none."""
    timeout_seconds: int | None = None
    if not state.timeout.is_default_value():
        state.timeout.eval(env=env)
        timeout_seconds = env.stack.pop()
    heartbeat_timeout_seconds: int | None = None
    if state.heartbeat:
        state.heartbeat.eval(env=env)
        heartbeat_timeout_seconds = env.stack.pop()
    return timeout_seconds, heartbeat_timeout_seconds


def _require_activity(env: Any, activity_arn: str) -> None:
    details = env.aws_execution_details
    backend = stepfunctions_parser_backends[details.account][details.region]
    if activity_arn in backend.activities:
        return
    failure = FailureEvent(
        env=env,
        error_name=StatesErrorName(typ=StatesErrorNameType.StatesRuntime),
        event_type=HistoryEventType.ExecutionFailed,
        event_details=_details(
            executionFailedEventDetails=ExecutionFailedEventDetails(
                error=StatesErrorNameType.StatesRuntime.to_name(),
                cause=f"The activity {activity_arn} does not exist.",
            )
        ),
    )
    raise FailureEventException(failure_event=failure)


def _wait_until_taken(env: Any, task: _ActivityTask) -> bool:
    """Until a worker takes the task no timer runs, as on AWS: only the end of the execution
    (its own TimeoutSeconds, StopExecution) ends the wait. False if the execution ended."""
    while task.state is _TaskState.SCHEDULED:
        if not env.is_running():
            return False
        task.changed.wait(_EXECUTION_CHECK_SECONDS)
    started = ActivityStartedEventDetails()
    if task.worker_name:
        started["workerName"] = task.worker_name
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.ActivityStarted,
        event_details=_details(activityStartedEventDetails=started),
    )
    return True


def _wait_for_outcome(
    env: Any,
    task: _ActivityTask,
    timeout_seconds: int | None,
    heartbeat_timeout_seconds: int | None,
) -> bool:
    """Wait for SendTaskSuccess/Failure, timing out as AWS does from the moment the task was
    taken. False if the execution ended first."""
    deadline = None if timeout_seconds is None else task.last_heartbeat + timeout_seconds
    while not task.is_closed():
        if not env.is_running():
            return False
        now = time.monotonic()
        if deadline is not None and now >= deadline and _broker.close(task):
            raise _ActivityTimeoutError(
                f"The activity task was not completed within {timeout_seconds} s of being taken."
            )
        missed_heartbeat = (
            heartbeat_timeout_seconds is not None
            and now >= task.last_heartbeat + heartbeat_timeout_seconds
        )
        if missed_heartbeat and _broker.close(task):
            raise _ActivityHeartbeatTimeoutError(
                f"No heartbeat from the activity worker for {heartbeat_timeout_seconds} s."
            )
        task.changed.clear()
        if not task.is_closed():
            task.changed.wait(_EXECUTION_CHECK_SECONDS)
    return True


def _activity_eval_execution(self: Any, env: Any) -> None:
    """An activity task state: publish, wait to be taken, then wait for the outcome.

    Replaces moto's version, which looked the activity up in an empty store.
    """
    task_input = self._eval_parameters(env=env)
    if not isinstance(task_input, str):
        task_input = to_json_str(task_input)
    timeout_seconds, heartbeat_timeout_seconds = _read_timeouts(self, env)
    activity_arn = self.resource.resource_arn
    _require_activity(env, activity_arn)

    token = env.states.context_object.update_task_token()
    task = _broker.publish(token, activity_arn, task_input)
    scheduled = ActivityScheduledEventDetails(
        resource=activity_arn,
        input=task_input,
        inputDetails=HistoryEventExecutionDataDetails(truncated=False),
    )
    if timeout_seconds is not None:
        scheduled["timeoutInSeconds"] = timeout_seconds
    if heartbeat_timeout_seconds is not None:
        scheduled["heartbeatInSeconds"] = heartbeat_timeout_seconds
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.ActivityScheduled,
        event_details=_details(activityScheduledEventDetails=scheduled),
    )
    try:
        if not _wait_until_taken(env, task):
            return
        if not _wait_for_outcome(env, task, timeout_seconds, heartbeat_timeout_seconds):
            return
    finally:
        # Whatever ended the wait, the task is closed now: a late worker call gets
        # TaskTimedOut, and no poller may take it any more.
        _broker.close(task)

    if task.failure is not None:
        error, cause = task.failure
        raise CallbackOutcomeFailureError(
            callback_outcome_failure=CallbackOutcomeFailure(
                callback_id=token, error=error, cause=cause
            )
        )
    output = task.output if task.output is not None else "null"
    env.stack.append(json.loads(output))
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.ActivitySucceeded,
        event_details=_details(
            activitySucceededEventDetails=ActivitySucceededEventDetails(
                output=output,
                outputDetails=HistoryEventExecutionDataDetails(truncated=False),
            )
        ),
    )


def _activity_evaluate_with_timeout(self: Any, env: Any) -> None:
    """moto 5.2.5's ExecutionState._evaluate_with_timeout without its timer.

    moto started the state's TimeoutSeconds when the task was scheduled; on AWS it starts
    when a worker takes the task, which `_activity_eval_execution` now enforces itself.
    """
    frame = env.open_frame()
    frame.states.reset(input_value=env.states.get_input())
    frame.stack = copy.deepcopy(env.stack)
    execution_outputs: list[Any] = []
    execution_exceptions: list[Exception | None] = [None]
    terminated_event = threading.Event()

    def _exec_and_notify() -> None:
        try:
            self._eval_execution(frame)
            execution_outputs.extend(frame.stack)
        except Exception as ex:  # re-raised below, in the state's thread
            execution_exceptions.append(ex)
        terminated_event.set()

    thread = threading.Thread(target=_exec_and_notify, daemon=True)
    TMP_THREADS.append(thread)
    thread.start()
    while not terminated_event.wait(_EXECUTION_CHECK_SECONDS):
        if not env.is_running():
            break
    frame.set_ended()
    env.close_frame(frame)

    execution_exception = execution_exceptions.pop()
    if execution_exception:
        raise execution_exception
    if not execution_outputs:
        # The execution ended while the task waited; nothing follows this state.
        return

    env.stack.append(execution_outputs.pop())
    if not self._is_language_query_jsonpath():
        env.states.set_result(env.stack[-1])
    if self.assign_decl:
        self.assign_decl.eval(env=env)
    if self.result_selector:
        self.result_selector.eval(env=env)
    if self.result_path:
        self.result_path.eval(env)
    else:
        env.states.reset(input_value=env.stack.pop())


def _get_activity_task(self: Any) -> Any:
    """GetActivityTask: long poll, then an empty token, as AWS does."""
    activity_arn = self._get_param("activityArn")
    worker_name = self._get_param("workerName")
    if activity_arn not in self.stepfunction_backend.activities:
        raise ActivityDoesNotExist(f"Activity Does Not Exist: '{activity_arn}'")
    task = _broker.take(activity_arn, worker_name)
    if task is None:
        return ActionResult({"taskToken": ""})
    return ActionResult({"taskToken": task.token, "input": task.task_input})


def _send_task_success(self: Any) -> Any:
    token = self._get_param("taskToken")
    if not _broker.knows(token):
        return _original_send_task_success(self)
    _broker.succeed(token, self._get_param("output"))
    return EmptyResult()


def _send_task_failure(self: Any) -> Any:
    token = self._get_param("taskToken")
    error = self._get_param("error")
    cause = self._get_param("cause")
    if _broker.knows(token):
        _broker.fail(token, error, cause)
    elif isinstance(self.stepfunction_backend, StepFunctionsParserBackend):
        # moto's response dropped the cause of callback (.waitForTaskToken) tasks too.
        self.stepfunction_backend.send_task_failure(token, error=error, cause=cause)
    else:
        return _original_send_task_failure(self)
    return EmptyResult()


def _send_task_heartbeat(self: Any) -> Any:
    token = self._get_param("taskToken")
    if not _broker.knows(token):
        return _original_send_task_heartbeat(self)
    _broker.heartbeat(token)
    return EmptyResult()


# --------------------------------------------------------------------------------------------
# Fail states
# --------------------------------------------------------------------------------------------


def _fail_error_name(error: str | None) -> Any:
    """The error name a Fail state raises; AWS lets ErrorPath re-raise a States.* name."""
    if not error:
        return None
    if error.startswith("States."):
        try:
            return StatesErrorName(typ=StatesErrorNameType.from_name(error))
        except ValueError:
            return None  # not one AWS defines: the event details still carry the string
    return CustomErrorName(error)


def _fail_eval_state(self: Any, env: Any) -> None:
    """moto 5.2.5's StateFail._eval_state, with `_fail_error_name` for the error name."""
    details = TaskFailedEventDetails()
    error_value = None
    if self.error:
        self.error.eval(env=env)
        error_value = env.stack.pop()
        details["error"] = error_value
    if self.cause:
        self.cause.eval(env=env)
        details["cause"] = env.stack.pop()
    raise FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=_fail_error_name(error_value),
            event_type=HistoryEventType.TaskFailed,
            event_details=_details(taskFailedEventDetails=details),
        )
    )


# --------------------------------------------------------------------------------------------
# Lambda
# --------------------------------------------------------------------------------------------

_lambda_handlers: dict[str, LambdaHandler] = {}
# os.environ is process-wide: one registered handler runs at a time.
_invoke_lock = threading.RLock()


@dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    timeout_seconds: int
    started_at: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started_at
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


def register_lambda_handler(function_name: str, handler: LambdaHandler) -> None:
    """Run `handler(event, context)` in-process whenever `function_name` is invoked."""
    if not function_name or ":" in function_name:
        raise ValueError(
            f"function_name must be the Lambda function's name (not an ARN), got {function_name!r}"
        )
    if not callable(handler):
        raise TypeError(f"handler for {function_name!r} must be callable, got {handler!r}")
    with _invoke_lock:
        _lambda_handlers[function_name] = handler


def unregister_lambda_handler(function_name: str) -> None:
    """Forget the handler of `function_name`; its invokes echo again, as in plain moto."""
    with _invoke_lock:
        _lambda_handlers.pop(function_name, None)


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _error_payload(error: BaseException, request_id: str) -> bytes:
    """The Python runtime's payload for an unhandled exception."""
    return json.dumps(
        {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "requestId": request_id,
            "stackTrace": traceback.format_tb(error.__traceback__),
        }
    ).encode("utf-8")


def _run_handler(handler: LambdaHandler, function: Any, event: Any) -> tuple[bytes, bool]:
    """(payload, errored) of one invocation, as the Lambda Python runtime returns them."""
    context = FakeLambdaContext(
        function_name=function.function_name,
        function_version=str(function.version),
        invoked_function_arn=function.function_arn,
        memory_limit_in_mb=int(function.memory_size),
        aws_request_id=str(uuid.uuid4()),
        log_group_name=f"/aws/lambda/{function.function_name}",
        log_stream_name=f"local/{uuid.uuid4().hex}",
        timeout_seconds=int(function.timeout),
    )
    with _invoke_lock, _environment(dict(function.environment_vars or {})):
        try:
            result = handler(event, context)
        except Exception as error:  # becomes the function error, as on AWS
            return _error_payload(error, context.aws_request_id), True
    try:
        return json.dumps(result).encode("utf-8"), False
    except (TypeError, ValueError) as error:
        marshal_error = TypeError(f"Unable to marshal response: {error}")
        payload = json.loads(_error_payload(marshal_error, context.aws_request_id))
        payload["errorType"] = "Runtime.MarshalError"
        return json.dumps(payload).encode("utf-8"), True


def _lambda_invoke(  # noqa: PLR0917 - moto's LambdaBackend.invoke signature
    self: Any,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> Any:
    function = self.get_function(function_name, qualifier)
    handler = _lambda_handlers.get(function.function_name)
    if handler is None:
        return _original_lambda_invoke(
            self, function_name, qualifier, body, headers, response_headers
        )
    event = json.loads(body) if body else {}
    if (headers or {}).get("X-Amz-Invocation-Type") == "Event":
        # Asynchronous: AWS answers 202 at once and runs the function afterwards.
        threading.Thread(target=_run_handler, args=(handler, function, event), daemon=True).start()
        return b""
    payload, errored = _run_handler(handler, function, event)
    if errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    return payload


# --------------------------------------------------------------------------------------------
# Applying the patches
# --------------------------------------------------------------------------------------------

_original_activity_from_error = StateTaskActivity._from_error
_original_send_task_success = StepFunctionResponse.send_task_success
_original_send_task_failure = StepFunctionResponse.send_task_failure
_original_send_task_heartbeat = StepFunctionResponse.send_task_heartbeat
_original_lambda_invoke = LambdaSimpleBackend.invoke

_apply_lock = threading.Lock()

_moto_start_execution: Final = StepFunctionsParserBackend.start_execution


def _start_execution(
    self: Any,
    state_machine_arn: str,
    name: str | None = None,
    execution_input: Any = None,
    trace_header: Any = None,
) -> Any:
    """moto's start_execution, with AWS's generated name when none is given."""
    return _moto_start_execution(
        self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
    )


_moto_reflect_execution_status: Final[Callable[[Any], None]] = (
    BaseExecutionWorkerCommunication._reflect_execution_status
)


def _reflect_execution_status(self: Any) -> None:
    """moto's end-of-execution bookkeeping, plus the error AWS reports for TIMED_OUT/ABORTED."""
    _moto_reflect_execution_status(self)
    execution = self.execution
    if execution.exec_status == ExecutionStatus.TIMED_OUT and execution.error is None:
        execution.error = StatesErrorName(typ=StatesErrorNameType.StatesTimeout).error_name
    elif execution.exec_status == ExecutionStatus.ABORTED:
        stopped = execution.exec_worker.env.program_state()
        if isinstance(stopped, ProgramStopped):
            execution.error = stopped.error
            execution.cause = stopped.cause


def _stop_execution(self: Any) -> Any:
    """StopExecution passing the request's error and cause on to the execution (moto drops them)."""
    arn = self._get_param("executionArn")
    backend = self.stepfunction_backend
    execution = backend.describe_execution(arn)  # validates the ARN, raises ExecutionDoesNotExist
    execution.stop(
        stop_date=utcnow(), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return ActionResult({"stopDate": execution.stop_date})


_moto_describe_execution: Final[Callable[[Any], Any]] = StepFunctionResponse.describe_execution


def _describe_execution(self: Any) -> Any:
    """moto's DescribeExecution, with the stopDate AWS also gives a TIMED_OUT execution."""
    result = _moto_describe_execution(self)
    execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
    if execution.status == ExecutionStatus.TIMED_OUT and execution.stop_date is not None:
        result.result["stopDate"] = execution.stop_date
    return result


_PATCHES: Final[list[tuple[type, str, Callable[..., Any]]]] = [
    (StepFunctionResponse, "stop_execution", _stop_execution),
    (StepFunctionResponse, "describe_execution", _describe_execution),
    (BaseExecutionWorkerCommunication, "_reflect_execution_status", _reflect_execution_status),
    (StepFunctionsParserBackend, "start_execution", _start_execution),
    (StateTaskActivity, "_eval_execution", _activity_eval_execution),
    (StateTaskActivity, "_evaluate_with_timeout", _activity_evaluate_with_timeout),
    (StateTaskActivity, "_from_error", _activity_from_error),
    (StateFail, "_eval_state", _fail_eval_state),
    (StepFunctionResponse, "get_activity_task", _get_activity_task),
    (StepFunctionResponse, "send_task_success", _send_task_success),
    (StepFunctionResponse, "send_task_failure", _send_task_failure),
    (StepFunctionResponse, "send_task_heartbeat", _send_task_heartbeat),
    (LambdaSimpleBackend, "invoke", _lambda_invoke),
]


def apply_moto_workarounds(*, activity_poll_seconds: float = AWS_ACTIVITY_POLL_SECONDS) -> None:
    """Patch moto (idempotent); `activity_poll_seconds` is GetActivityTask's long-poll time."""
    check_moto_version(moto.__version__)
    if not 0 < activity_poll_seconds <= AWS_ACTIVITY_POLL_SECONDS:
        raise ValueError(
            f"activity_poll_seconds must be > 0 and <= {AWS_ACTIVITY_POLL_SECONDS} "
            f"(AWS's long-poll limit), got {activity_poll_seconds}"
        )
    with _apply_lock:
        _broker.poll_seconds = activity_poll_seconds
        for owner, name, replacement in _PATCHES:
            setattr(owner, name, replacement)


def moto_workarounds_applied() -> bool:
    return StateTaskActivity._eval_execution is _activity_eval_execution


@dataclass(frozen=True)
class LocalMotoServer:
    """A moto server running in this process's threads, with the workarounds applied.

    ``stop()`` also restores the process-wide moto settings the server changed, so mock_aws users
    later in the same process (tests) get moto's defaults back, e.g. executions that do not run.
    """

    server: Any
    endpoint_url: str
    previous_settings: dict[str, Any] = field(default_factory=dict)
    previous_moto_port: str | None = None

    def stop(self) -> None:
        self.server.stop()
        for key, value in self.previous_settings.items():
            if value is None:
                default_user_config.pop(key, None)  # type: ignore[misc]
            else:
                default_user_config[key] = value  # type: ignore[literal-required]
        if self.previous_moto_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = self.previous_moto_port


def start_moto_server(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    activity_poll_seconds: float = AWS_ACTIVITY_POLL_SECONDS,
) -> LocalMotoServer:
    """Start moto's ThreadedMotoServer (port 0: a free one) for other processes to call.

    The server's backends are this process's, so registered Lambda handlers run here.
    """
    from moto.server import ThreadedMotoServer  # imported late: it pulls in flask

    apply_moto_workarounds(activity_poll_seconds=activity_poll_seconds)
    previous_settings = {key: default_user_config.get(key) for key in ("stepfunctions", "lambda")}
    previous_moto_port = os.environ.get("MOTO_PORT")
    # New dicts (not in-place updates), so that a caller's patch.dict restores them.
    default_user_config["stepfunctions"] = {
        **default_user_config.get("stepfunctions", {}),
        **MOTO_CONFIG["stepfunctions"],
    }
    default_user_config["lambda"] = {
        **default_user_config.get("lambda", {}),
        **MOTO_CONFIG["lambda"],
    }
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    # moto's interpreter reaches Lambda through http://localhost:$MOTO_PORT when it is not
    # inside mock_aws.
    os.environ["MOTO_PORT"] = str(bound_port)
    return LocalMotoServer(
        server=server,
        endpoint_url=f"http://{bound_host}:{bound_port}",
        previous_settings=previous_settings,
        previous_moto_port=previous_moto_port,
    )
