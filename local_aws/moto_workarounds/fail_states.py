"""Fail states: re-raise a `States.*` error name, as AWS lets `ErrorPath` do.

moto 5.2.5 refuses a Fail state whose `ErrorPath` resolves to a `States.*` name (it treats it as
a custom error name), so re-raising a caught `States.Timeout` or `States.HeartbeatTimeout` ended
the execution with `States.Runtime` instead. Here the Fail state reports the name it was given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
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
from moto.stepfunctions.parser.asl.component.state.fail.state_fail import StateFail

from local_aws.moto_workarounds.activities import event_details


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
            event_details=event_details(taskFailedEventDetails=details),
        )
    )


PATCHES: Final[list[tuple[type, str, Callable[..., Any]]]] = [
    (StateFail, "_eval_state", _fail_eval_state),
]
