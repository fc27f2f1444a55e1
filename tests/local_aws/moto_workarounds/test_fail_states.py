"""A Fail state re-raises the error name its ErrorPath selects, States.* names included."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.local_aws.moto_workarounds.conftest import create_state_machine
from tests.support.workflow import wait_for_end

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


@pytest.mark.parametrize("error", ["States.Timeout", "States.HeartbeatTimeout", "ModelNotFound"])
def test_a_fail_state_re_raises_the_error_name_its_error_path_selects(
    sfn: SFNClient, error: str
) -> None:
    machine = create_state_machine(
        sfn,
        {
            "StartAt": "Failed",
            "States": {"Failed": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}},
        },
        f"reraise-{error.replace('.', '-')}",
    )

    execution = sfn.start_execution(
        stateMachineArn=machine, input=json.dumps({"e": error, "c": "why"})
    )["executionArn"]
    ended = wait_for_end(sfn, execution)

    assert (ended["status"], ended["error"], ended["cause"]) == ("FAILED", error, "why")
