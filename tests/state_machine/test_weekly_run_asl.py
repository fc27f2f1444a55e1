"""The weekly-run state machine, rendered by Terraform and executed by moto's interpreter in the
local AWS with the launcher's code; instances run nothing, a thread plays the agent through the
activity API (the real agent's runs are in tests/end_to_end)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from terraform_tools.render import TerraformRenderError, render_template_file
from tests.support.workflow import (
    REGION,
    WeeklyRun,
    agent,
    entered_states,
    wait_for_end,
)

# Runs through the local AWS (deployed workflow, executions): make unit leaves them out.
pytestmark = pytest.mark.slow

TEMPLATE = (
    Path(__file__).resolve().parents[2] / "terraform/modules/workflow/weekly_run.asl.json.tftpl"
)
PROJECT = "scheduled-gpu-model"
LAUNCHER = f"{PROJECT}-launcher"
BUCKET = f"{PROJECT}-models-123456789012"
HEARTBEAT_SECONDS = 1
ACTIVITY_TIMEOUT_SECONDS = 60
EXECUTION_TIMEOUT_SECONDS = 120
TEMPLATE_VARIABLES = (
    "launcher_function_arn",
    "activity_arn",
    "model_bucket",
    "run_defaults",
    "heartbeat_timeout_seconds",
    "activity_timeout_seconds",
    "execution_timeout_seconds",
)
HAPPY_PATH = [
    "LoadRunDefaults",
    "ApplyDefaults",
    "StartInstance",
    "RunModel",
    "StopInstance",
    "DidTheRunFail",
    "RunSucceeded",
]


def template_variables(
    launcher_arn: str, activity_arn: str, run_defaults: dict[str, Any]
) -> dict[str, Any]:
    return {
        "launcher_function_arn": launcher_arn,
        "activity_arn": activity_arn,
        "model_bucket": BUCKET,
        "run_defaults": run_defaults,
        "heartbeat_timeout_seconds": HEARTBEAT_SECONDS,
        "activity_timeout_seconds": ACTIVITY_TIMEOUT_SECONDS,
        "execution_timeout_seconds": EXECUTION_TIMEOUT_SECONDS,
    }


# ---- the template as Terraform renders it -------------------------------------------------

SAMPLE_DEFAULTS: dict[str, Any] = {
    "instance_types": ["g4dn.xlarge", "g5.xlarge"],
    "subnet_ids": ["subnet-0123456789abcdef0"],
    "model_prefix": "models/current/",
    "max_runtime_seconds": 3600,
    "parameters": {"threshold": 0.5, "label.$": "a key that must stay literal"},
}
SAMPLE_LAUNCHER = f"arn:aws:lambda:{REGION}:123456789012:function:{LAUNCHER}"
SAMPLE_ACTIVITY = f"arn:aws:states:{REGION}:123456789012:activity:{PROJECT}-run"


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    text = render_template_file(
        TEMPLATE, template_variables(SAMPLE_LAUNCHER, SAMPLE_ACTIVITY, SAMPLE_DEFAULTS)
    )
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def test_the_template_renders_to_json_without_template_syntax_left() -> None:
    text = render_template_file(
        TEMPLATE, template_variables(SAMPLE_LAUNCHER, SAMPLE_ACTIVITY, SAMPLE_DEFAULTS)
    )

    json.loads(text)
    assert "${" not in text
    assert "%{" not in text


def test_the_run_defaults_are_rendered_as_a_literal_result(rendered: dict[str, Any]) -> None:
    assert rendered["States"]["LoadRunDefaults"]["Result"] == SAMPLE_DEFAULTS


def test_the_launcher_and_activity_arns_are_substituted(rendered: dict[str, Any]) -> None:
    states = rendered["States"]

    assert states["StartInstance"]["Parameters"]["FunctionName"] == SAMPLE_LAUNCHER
    assert states["StopInstance"]["Parameters"]["FunctionName"] == SAMPLE_LAUNCHER
    assert states["RunModel"]["Resource"] == SAMPLE_ACTIVITY


def test_the_model_bucket_is_substituted_for_model_and_results(rendered: dict[str, Any]) -> None:
    parameters = rendered["States"]["RunModel"]["Parameters"]

    assert parameters["model"]["bucket"] == BUCKET
    assert parameters["results"]["bucket"] == BUCKET


def test_the_timeouts_are_substituted_as_numbers(rendered: dict[str, Any]) -> None:
    run_model = rendered["States"]["RunModel"]

    assert run_model["HeartbeatSeconds"] == HEARTBEAT_SECONDS
    assert run_model["TimeoutSeconds"] == ACTIVITY_TIMEOUT_SECONDS
    assert rendered["TimeoutSeconds"] == EXECUTION_TIMEOUT_SECONDS


def test_every_catch_leads_to_stop_instance(rendered: dict[str, Any]) -> None:
    states = rendered["States"]

    for name in ("StartInstance", "RunModel"):
        assert [(c["ErrorEquals"], c["ResultPath"], c["Next"]) for c in states[name]["Catch"]] == [
            (["States.ALL"], "$.error", "StopInstance")
        ]


def test_stop_instance_is_not_retried_on_errors_a_retry_cannot_fix(
    rendered: dict[str, Any],
) -> None:
    first, last = rendered["States"]["StopInstance"]["Retry"]

    assert first == {
        "ErrorEquals": ["ForeignInstanceError", "EventValidationError"],
        "MaxAttempts": 0,
    }
    assert last["ErrorEquals"] == ["States.ALL"]
    assert last["MaxAttempts"] >= 5


@pytest.mark.parametrize("missing", TEMPLATE_VARIABLES)
def test_rendering_without_a_documented_variable_fails_naming_it(missing: str) -> None:
    variables = template_variables(SAMPLE_LAUNCHER, SAMPLE_ACTIVITY, SAMPLE_DEFAULTS)
    del variables[missing]

    with pytest.raises(TerraformRenderError, match=rf'does not contain key\s+"{missing}"'):
        render_template_file(TEMPLATE, variables)


# ---- executions in moto's interpreter, through the local AWS -------------------------------


def test_the_rendered_definition_is_accepted_by_step_functions(weekly_run: WeeklyRun) -> None:
    described = weekly_run.sfn.describe_state_machine(stateMachineArn=weekly_run.state_machine_arn)

    assert json.loads(described["definition"])["StartAt"] == "LoadRunDefaults"


def test_the_happy_path_runs_the_model_stops_the_instance_and_succeeds(
    weekly_run: WeeklyRun,
) -> None:
    worker = agent(weekly_run, "succeed")
    execution, _ = weekly_run.start({})
    ended = wait_for_end(weekly_run.sfn, execution)
    worker.join()

    assert ended["status"] == "SUCCEEDED"
    assert entered_states(weekly_run.sfn, execution) == HAPPY_PATH
    output = json.loads(ended["output"])
    assert output["result"] == worker.output
    instance_id = worker.task_input["instance_id"]
    assert output["stopped"]["terminated"] == [instance_id]
    assert worker.instance_state_during_run in {"pending", "running"}
    assert [i["State"]["Name"] for i in weekly_run.instances()] == ["terminated"]


def test_the_activity_task_carries_what_the_agent_needs(weekly_run: WeeklyRun) -> None:
    worker = agent(weekly_run, "succeed")
    execution, name = weekly_run.start({})
    wait_for_end(weekly_run.sfn, execution)
    worker.join()

    [instance] = weekly_run.instances()
    assert worker.task_input == {
        "instance_id": instance["InstanceId"],
        "execution_arn": execution,
        "execution_name": name,
        "model": {"bucket": weekly_run.bucket, "prefix": "models/current/"},
        "results": {"bucket": weekly_run.bucket, "prefix": f"runs/{name}/"},
        "max_runtime_seconds": 3600,
        "parameters": {"threshold": 0.5},
    }


def test_a_failed_activity_stops_the_instance_and_fails_with_its_error_and_cause(
    weekly_run: WeeklyRun,
) -> None:
    worker = agent(weekly_run, "fail")
    execution, _ = weekly_run.start({})
    ended = wait_for_end(weekly_run.sfn, execution)
    worker.join()

    assert (ended["status"], ended["error"], ended["cause"]) == (
        "FAILED",
        "ModelCommandFailed",
        "score.py exited with 3",
    )
    assert entered_states(weekly_run.sfn, execution)[-3:] == [
        "StopInstance",
        "DidTheRunFail",
        "RunFailed",
    ]
    assert [i["State"]["Name"] for i in weekly_run.instances()] == ["terminated"]


def test_a_missed_heartbeat_stops_the_instance_and_fails_with_a_heartbeat_timeout(
    weekly_run: WeeklyRun,
) -> None:
    worker = agent(weekly_run, "silent")
    execution, _ = weekly_run.start({})
    ended = wait_for_end(weekly_run.sfn, execution)
    worker.join()

    # AWS's name, which the workarounds reproduce (plain moto 5.2.5 says States.Timeout).
    assert (ended["status"], ended["error"]) == ("FAILED", "States.HeartbeatTimeout")
    assert "StopInstance" in entered_states(weekly_run.sfn, execution)
    assert [i["State"]["Name"] for i in weekly_run.instances()] == ["terminated"]


def test_a_start_failure_still_reaches_stop_instance_and_fails_with_the_launcher_error(
    weekly_run: WeeklyRun,
) -> None:
    execution, _ = weekly_run.start({"instance_types": []})
    ended = wait_for_end(weekly_run.sfn, execution)

    assert (ended["status"], ended["error"]) == ("FAILED", "EventValidationError")
    assert "instance_types" in json.loads(ended["cause"])["errorMessage"]
    assert entered_states(weekly_run.sfn, execution) == [
        "LoadRunDefaults",
        "ApplyDefaults",
        "StartInstance",
        "StopInstance",
        "DidTheRunFail",
        "RunFailed",
    ]
    assert weekly_run.instances() == []


def test_an_empty_input_uses_every_default(weekly_run: WeeklyRun) -> None:
    worker = agent(weekly_run, "succeed")
    execution, _ = weekly_run.start({})
    ended = wait_for_end(weekly_run.sfn, execution)
    worker.join()

    output = json.loads(ended["output"])
    assert output["run"] == weekly_run.defaults
    assert output["instance"]["instance_type"] == weekly_run.defaults["instance_types"][0]
    assert output["instance"]["subnet_id"] == weekly_run.subnet_ids[0]


def test_an_input_key_overrides_only_its_default(weekly_run: WeeklyRun) -> None:
    worker = agent(weekly_run, "succeed")
    overrides = {
        "instance_types": ["g5.xlarge"],
        "max_runtime_seconds": 900,
        "parameters": {"week": 12},
    }
    execution, _ = weekly_run.start(overrides)
    ended = wait_for_end(weekly_run.sfn, execution)
    worker.join()

    output = json.loads(ended["output"])
    assert output["run"] == {**weekly_run.defaults, **overrides}
    assert output["instance"]["instance_type"] == "g5.xlarge"
    assert worker.task_input["max_runtime_seconds"] == 900
    assert worker.task_input["parameters"] == {"week": 12}


def test_an_unknown_input_key_fails_the_run_naming_it_before_any_launch(
    weekly_run: WeeklyRun,
) -> None:
    execution, _ = weekly_run.start({"gpu_count": 4})
    ended = wait_for_end(weekly_run.sfn, execution)

    assert (ended["status"], ended["error"]) == ("FAILED", "EventValidationError")
    assert "gpu_count" in json.loads(ended["cause"])["errorMessage"]
    assert weekly_run.instances() == []
