"""Activities: queues, GetActivityTask, SendTask*, and timeouts that count from the take.

moto 5.2.5's interpreter gives every execution an empty activity store, so an activity task state
fails at once, and the GetActivityTask API is not implemented. Here an activity task state
publishes its task to a process-wide queue per activity ARN; `GetActivityTask` long-polls that
queue (up to `activity_poll_seconds`, then an empty `taskToken`, as AWS does after 60 s) and hands
each task out exactly once, recording the worker name in the ActivityStarted event, and never
after its execution has ended. `TimeoutSeconds` and `HeartbeatSeconds` count from the moment a
worker takes the task, as on AWS (moto counted the task timeout from scheduling). A missed
heartbeat fails the state with `States.HeartbeatTimeout` (AWS's name; moto said
`States.Timeout`). `SendTaskSuccess`, `SendTaskFailure` (now with its `cause`, which moto
dropped) and `SendTaskHeartbeat` drive the waiting state; on a closed or timed-out task they fail
with `TaskTimedOut`, on an unknown token with `InvalidToken`.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult, EmptyResult
from moto.stepfunctions.exceptions import ActivityDoesNotExist, InvalidToken
from moto.stepfunctions.parser.api import (
    ActivityScheduledEventDetails,
    ActivityStartedEventDetails,
    ActivitySucceededEventDetails,
    ActivityTimedOutEventDetails,
    ExecutionFailedEventDetails,
    HistoryEventExecutionDataDetails,
    HistoryEventType,
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
from moto.stepfunctions.parser.asl.eval.callback.callback import (
    CallbackOutcomeFailure,
    CallbackOutcomeFailureError,
)
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.models import (
    StepFunctionsParserBackend,
    stepfunctions_parser_backends,
)
from moto.stepfunctions.parser.utils import TMP_THREADS
from moto.stepfunctions.responses import StepFunctionResponse

# AWS's long-poll limit for GetActivityTask.
AWS_ACTIVITY_POLL_SECONDS: Final = 60.0

# How often a waiting state looks whether its execution has ended (stopped or timed out).
_EXECUTION_CHECK_SECONDS: Final = 0.2


def event_details(**kwargs: Any) -> Any:
    """An EventDetails dict (a TypedDict whose every key mypy would otherwise demand)."""
    return kwargs


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
    # Whether the task's execution still runs: a task of an ended execution is never handed out.
    execution_running: Callable[[], bool] = lambda: True
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

    def publish(
        self,
        token: str,
        activity_arn: str,
        task_input: str,
        execution_running: Callable[[], bool],
    ) -> _ActivityTask:
        task = _ActivityTask(
            token=token,
            activity_arn=activity_arn,
            task_input=task_input,
            execution_running=execution_running,
        )
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
                    # The execution may have ended (timed out, aborted) since it was scheduled.
                    if task.state is _TaskState.SCHEDULED and task.execution_running():
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
        event_details=event_details(
            activityTimedOutEventDetails=ActivityTimedOutEventDetails(
                error=error_type.to_name(), cause=str(ex)
            )
        ),
    )


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
        event_details=event_details(
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
            _broker.close(task)  # under the broker's lock: no poller can take it any more
            return False
        task.changed.wait(_EXECUTION_CHECK_SECONDS)
    started = ActivityStartedEventDetails()
    if task.worker_name:
        started["workerName"] = task.worker_name
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.ActivityStarted,
        event_details=event_details(activityStartedEventDetails=started),
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
    task = _broker.publish(token, activity_arn, task_input, env.is_running)
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
        event_details=event_details(activityScheduledEventDetails=scheduled),
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
        event_details=event_details(
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


_original_activity_from_error: Final = StateTaskActivity._from_error
_original_send_task_success: Final = StepFunctionResponse.send_task_success
_original_send_task_failure: Final = StepFunctionResponse.send_task_failure
_original_send_task_heartbeat: Final = StepFunctionResponse.send_task_heartbeat


def set_poll_seconds(seconds: float) -> None:
    """GetActivityTask's long-poll time for every activity of this process."""
    _broker.poll_seconds = seconds


PATCHES: Final[list[tuple[type, str, Callable[..., Any]]]] = [
    (StateTaskActivity, "_eval_execution", _activity_eval_execution),
    (StateTaskActivity, "_evaluate_with_timeout", _activity_evaluate_with_timeout),
    (StateTaskActivity, "_from_error", _activity_from_error),
    (StepFunctionResponse, "get_activity_task", _get_activity_task),
    (StepFunctionResponse, "send_task_success", _send_task_success),
    (StepFunctionResponse, "send_task_failure", _send_task_failure),
    (StepFunctionResponse, "send_task_heartbeat", _send_task_heartbeat),
]
