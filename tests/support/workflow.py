"""The weekly run deployed by the one harness, with idle instances and a scripted agent.

``deploy_weekly_run`` (the root conftest's ``weekly_run`` fixture) is the stack ``LocalRun``
deploys (the state machine Terraform's template renders, the launcher's code in the local Lambda
runtime), with instances that run nothing (``IdleBackend``) and no nets outside the execution,
so each test sees the state machine alone; ``agent(run, behaviour)`` plays the instance agent
through the activity API.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from local_aws.local_run import LocalRun, Nets
from local_aws.machines import IdleBackend

REGION = "eu-west-1"
# Short, so a silent agent fails its run quickly; not so short that a loaded machine misses the
# gap between the scripted agent taking its task and its first heartbeat.
HEARTBEAT_TIMEOUT_SECONDS = 5
# A backstop only: every test waits for its execution's events, not for this timeout.
EXECUTION_TIMEOUT_SECONDS = 900
DEFAULTS: dict[str, Any] = {
    "instance_types": ["g4dn.xlarge", "g5.xlarge"],
    "model_prefix": "models/current/",
    "max_runtime_seconds": 3600,
    "parameters": {"threshold": 0.5},
}


@dataclasses.dataclass
class WeeklyRun:
    """The deployed workflow, as a test starts and inspects it."""

    run: LocalRun
    sfn: Any
    ec2: Any
    state_machine_arn: str
    activity_arn: str
    bucket: str
    subnet_ids: list[str]
    defaults: dict[str, Any]
    agents: list[ScriptedAgent] = dataclasses.field(default_factory=list)

    def stop_agents(self) -> None:
        """The test is over: agents still polling stop, so none takes a later test's task."""
        for worker in self.agents:
            worker.stop()

    def start(self, execution_input: dict[str, Any]) -> tuple[str, str]:
        """(execution ARN, execution name)."""
        name = f"weekly-{uuid.uuid4().hex[:12]}"
        return self.run.start_execution(name, execution_input), name

    def instances(self) -> list[dict[str, Any]]:
        reservations = self.ec2.describe_instances()["Reservations"]
        return [dict(i) for r in reservations for i in r["Instances"]]


def deploy_weekly_run(make_run: Callable[..., LocalRun]) -> WeeklyRun:
    run = make_run(
        publish=False,
        backend=IdleBackend(),
        nets=Nets(execution_rule=False, instance_rule=False, sweeper=False),
        settings={
            "instance_types": tuple(DEFAULTS["instance_types"]),
            "run_parameters": DEFAULTS["parameters"],
            "heartbeat_timeout_seconds": HEARTBEAT_TIMEOUT_SECONDS,
            "activity_timeout_seconds": 60,
            "execution_timeout_seconds": EXECUTION_TIMEOUT_SECONDS,
        },
    )
    deployed = run.deployed
    return WeeklyRun(
        run=run,
        sfn=run.aws.client("stepfunctions"),
        ec2=run.aws.client("ec2"),
        state_machine_arn=deployed.state_machine_arn,
        activity_arn=deployed.activity_arn,
        bucket=deployed.bucket_name,
        subnet_ids=list(deployed.subnet_ids),
        defaults={**DEFAULTS, "subnet_ids": list(deployed.subnet_ids)},
    )


def wait_for_end(sfn: Any, execution_arn: str, timeout: float = 300.0) -> dict[str, Any]:
    """describe_execution once the execution is no longer RUNNING."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        description: dict[str, Any] = dict(sfn.describe_execution(executionArn=execution_arn))
        if description["status"] != "RUNNING":
            return description
        time.sleep(0.1)
    raise AssertionError(f"execution {execution_arn} still RUNNING after {timeout} s")


def take_task(
    sfn: Any,
    activity_arn: str,
    worker: str = "test-worker",
    timeout: float = 100.0,
    stop: threading.Event | None = None,
) -> tuple[str, dict[str, Any]]:
    """Poll the activity like a worker until a task comes: (token, input). ``stop`` ends the
    polling early (the test is over: a poller left behind would take the next test's task)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        response = sfn.get_activity_task(activityArn=activity_arn, workerName=worker)
        if response.get("taskToken"):
            return response["taskToken"], json.loads(response["input"])
    raise AssertionError(f"no task on {activity_arn} within {timeout} s")


def entered_states(sfn: Any, execution_arn: str) -> list[str]:
    """Names of the states the execution entered, in order."""
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [
        e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")
    ]


@dataclasses.dataclass
class ScriptedAgent:
    """Plays the instance agent: takes the task, then succeeds, fails, or goes silent."""

    sfn: Any
    ec2: Any
    activity_arn: str
    behaviour: str
    task_input: dict[str, Any] = dataclasses.field(default_factory=dict)
    instance_state_during_run: str = ""
    output: dict[str, Any] = dataclasses.field(default_factory=dict)
    _thread: threading.Thread | None = None
    _stop: threading.Event = dataclasses.field(default_factory=threading.Event)

    def start(self) -> ScriptedAgent:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join(timeout=30)

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        # Polls until its task comes or the test ends: a loaded machine can take minutes to get
        # an execution to its RunModel state (the execution's own timeout is the backstop).
        token, self.task_input = take_task(
            self.sfn,
            self.activity_arn,
            worker="agent",
            timeout=EXECUTION_TIMEOUT_SECONDS,
            stop=self._stop,
        )
        if self.behaviour != "silent":
            # First, before anything else can take the heartbeat timeout's few seconds.
            self.sfn.send_task_heartbeat(taskToken=token)
        instance_id = self.task_input["instance_id"]
        reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        self.instance_state_during_run = reservations[0]["Instances"][0]["State"]["Name"]
        if self.behaviour == "silent":
            return
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


def agent(run: WeeklyRun, behaviour: str) -> ScriptedAgent:
    worker = ScriptedAgent(run.sfn, run.ec2, run.activity_arn, behaviour)
    run.agents.append(worker)
    return worker.start()
