"""The weekly-run state machine, rendered by the real Terraform binary and executed by moto's
interpreter with the real launcher handler; a thread plays the agent through the activity API."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from launcher import app, clients
from local_aws.moto_workarounds import register_lambda_handler, unregister_lambda_handler
from local_aws.terraform_render import TerraformRenderError, render_template_file
from tests.workflow.conftest import (
    REGION,
    create_function,
    create_state_machine,
    entered_states,
    take_task,
    wait_for_end,
)

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_stepfunctions import SFNClient

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


# ---- executions in moto's interpreter -----------------------------------------------------


@dataclass
class WeeklyRun:
    sfn: SFNClient
    ec2: EC2Client
    state_machine_arn: str
    activity_arn: str
    subnet_ids: list[str]
    defaults: dict[str, Any]

    def start(self, execution_input: dict[str, Any]) -> tuple[str, str]:
        """(execution ARN, execution name)."""
        name = f"weekly-{uuid.uuid4().hex[:12]}"
        arn = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(execution_input)
        )["executionArn"]
        return arn, name

    def instances(self) -> list[dict[str, Any]]:
        reservations = self.ec2.describe_instances()["Reservations"]
        return [dict(i) for r in reservations for i in r["Instances"]]


@pytest.fixture
def weekly_run(
    sfn: SFNClient, lambda_client: LambdaClient, role_arn: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WeeklyRun]:
    """Everything Terraform declares, in moto: network, launch template, the launcher with the
    real handler, the activity, and the state machine from the rendered template."""
    ec2: EC2Client = boto3.client("ec2", region_name=REGION)
    vpc_id = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.30.{n}.0/24", AvailabilityZone=zone)[
            "Subnet"
        ]["SubnetId"]
        for n, zone in enumerate([f"{REGION}a", f"{REGION}b"])
    ]
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    template_id = ec2.create_launch_template(
        LaunchTemplateName=PROJECT,
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": "t3.micro",
            "InstanceInitiatedShutdownBehavior": "terminate",
        },
    )["LaunchTemplate"]["LaunchTemplateId"]

    # The launcher's boto3 clients are module attributes: make them anew inside this mock.
    monkeypatch.setattr(clients, "ec2_client", None)
    monkeypatch.setattr(clients, "sfn_client", None)
    launcher_arn = create_function(
        lambda_client,
        role_arn,
        LAUNCHER,
        environment={
            "LAUNCH_TEMPLATE_ID": template_id,
            "LAUNCH_TEMPLATE_VERSION": "$Latest",
            "PROJECT_NAME": PROJECT,
            "MAX_INSTANCE_LIFETIME_SECONDS": "7200",
            "POWERTOOLS_SERVICE_NAME": "launcher",
            "POWERTOOLS_METRICS_NAMESPACE": "ScheduledGpuModelTest",
        },
    )
    register_lambda_handler(LAUNCHER, app.handler)
    activity_arn = sfn.create_activity(name=f"{PROJECT}-run")["activityArn"]
    defaults = {
        "instance_types": ["g4dn.xlarge", "g5.xlarge"],
        "subnet_ids": subnet_ids,
        "model_prefix": "models/current/",
        "max_runtime_seconds": 3600,
        "parameters": {"threshold": 0.5},
    }
    definition = render_template_file(
        TEMPLATE, template_variables(launcher_arn, activity_arn, defaults)
    )
    machine = create_state_machine(sfn, definition, PROJECT)
    yield WeeklyRun(sfn, ec2, machine, activity_arn, subnet_ids, defaults)
    unregister_lambda_handler(LAUNCHER)


@dataclass
class Agent:
    """Plays the instance agent: takes the task, then succeeds, fails, or goes silent."""

    sfn: SFNClient
    ec2: EC2Client
    activity_arn: str
    behaviour: str
    task_input: dict[str, Any] = field(default_factory=dict)
    instance_state_during_run: str = ""
    output: dict[str, Any] = field(default_factory=dict)
    _thread: threading.Thread | None = None

    def start(self) -> Agent:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join(timeout=30)

    def _run(self) -> None:
        token, self.task_input = take_task(self.sfn, self.activity_arn, worker="agent")
        instance_id = self.task_input["instance_id"]
        reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        self.instance_state_during_run = reservations[0]["Instances"][0]["State"]["Name"]
        if self.behaviour == "silent":
            return
        self.sfn.send_task_heartbeat(taskToken=token)
        if self.behaviour == "fail":
            self.sfn.send_task_failure(
                taskToken=token, error="ModelCommandFailed", cause="score.py exited with 3"
            )
            return
        results = self.task_input["results"]
        self.output = {
            "instance_id": instance_id,
            "results": {**results, "manifest_key": f"{results['prefix']}_manifest.json"},
            "timings": {"copy_model": 1.5, "run_model": 20.0},
        }
        self.sfn.send_task_success(taskToken=token, output=json.dumps(self.output))


def agent(run: WeeklyRun, behaviour: str) -> Agent:
    return Agent(run.sfn, run.ec2, run.activity_arn, behaviour).start()


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
        "model": {"bucket": BUCKET, "prefix": "models/current/"},
        "results": {"bucket": BUCKET, "prefix": f"runs/{name}/"},
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
    assert output["instance"]["instance_type"] == "g4dn.xlarge"
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
