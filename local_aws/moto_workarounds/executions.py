"""Executions: generated names, and what an ended execution reports.

- moto 5.2.5 names an execution started without a `name` "None" (its ARN ends in `:None`), so
  every schedule-started or console-started run would share one name. Here such an execution gets
  a UUID, as on AWS.
- moto records no error (and DescribeExecution no stopDate) for a TIMED_OUT execution, and drops
  StopExecution's error and cause. Here a timed-out execution reports `States.Timeout` and its
  stop date, as AWS does, and an aborted one keeps the error and cause given to StopExecution.
- moto's StopExecution right after StartExecution fails (AttributeError) while the execution's
  worker thread has not built its environment yet; AWS stops it. Here the stop waits for it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, Final

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

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


# The worker builds its environment first thing in its thread: milliseconds, more under load.
_WORKER_START_SECONDS: Final = 10.0


def _wait_for_worker_environment(execution: Any) -> None:
    deadline = time.monotonic() + _WORKER_START_SECONDS
    while time.monotonic() < deadline:
        # Only the parser backend's executions have a worker (moto's basic backend has none).
        worker = getattr(execution, "exec_worker", None)
        if worker is None or worker.env is not None:
            return
        if getattr(execution, "exec_status", None) != ExecutionStatus.RUNNING:
            return
        time.sleep(0.005)


def _stop_execution(self: Any) -> Any:
    """StopExecution passing the request's error and cause on to the execution (moto drops them)."""
    arn = self._get_param("executionArn")
    backend = self.stepfunction_backend
    execution = backend.describe_execution(arn)  # validates the ARN, raises ExecutionDoesNotExist
    _wait_for_worker_environment(execution)
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


PATCHES: Final[list[tuple[type, str, Callable[..., Any]]]] = [
    (StepFunctionResponse, "stop_execution", _stop_execution),
    (StepFunctionResponse, "describe_execution", _describe_execution),
    (BaseExecutionWorkerCommunication, "_reflect_execution_status", _reflect_execution_status),
    (StepFunctionsParserBackend, "start_execution", _start_execution),
]
