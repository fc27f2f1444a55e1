"""Properties of the launcher over generated events (hypothesis), on one moto world per test:

- it raises only its declared errors (run_contract.error_names) or AWS's own ClientError;
- after a validation error, nothing in EC2 or Step Functions was changed;
- it never terminates an instance without the project's tag.

Events are valid ones (start, stop, cleanup, sweep, instance_lost) with fields replaced, dropped
or added: hostile strings (trailing newlines, non-ASCII digits, control characters, megabyte
values), wrong types, other accounts' and executions' ARNs, other projects' instances; and
events that are not objects at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from launcher import clients
from launcher.errors import EventValidationError
from run_contract.error_names import LAUNCHER_ERRORS
from tests.launcher.conftest import (
    PROJECT,
    RUN_RECORDS_BUCKET,
    Invoke,
    Network,
    Template,
    Workflow,
    launch_tagged,
    tags_of,
)

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_stepfunctions import SFNClient

# Calls that change something: none may follow a validation error.
MUTATIONS = frozenset(
    {
        "RunInstances",
        "TerminateInstances",
        "StopInstances",
        "CreateTags",
        "DeleteTags",
        "StopExecution",
        "SendTaskFailure",
        "SendTaskSuccess",
    }
)
HOSTILE_TEXT = st.sampled_from(
    [
        "",
        "\n",
        "i-0123456789abcdef0\n",
        "g4dn.xlarge\n",
        "subnet-0a1b2c3d\n",
        "models/current/\n",
        "arn:aws:states:eu-west-1:"
        + "\uff11" * 12
        + ":execution:scheduled-gpu-model:w",  # fullwidth
        "arn:aws:states:us-east-1:999999999999:execution:scheduled-gpu-model:weekly-2025-01-07",
        "weekly\x00-2025",
        "weekly\u202e-2025",
        "models/../secrets/",
        "SUCCEEDED",
        "RUNNING",
        "terminated",
    ]
)
MEGABYTE_TEXT = st.integers(1_000_000, 1_100_000).map(lambda n: "x" * n)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    HOSTILE_TEXT,
    MEGABYTE_TEXT,
)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=8,
)


@dataclass
class Watch:
    """What the launcher's own clients did during one invocation."""

    ec2: EC2Client
    mutations: list[str] = field(default_factory=list)
    untagged_terminations: list[str] = field(default_factory=list)

    def before_parameter_build(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name in MUTATIONS:
            self.mutations.append(model.name)
        if model.name == "TerminateInstances":
            for instance_id in params.get("InstanceIds", []):
                found = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
                instance = found[0]["Instances"][0] if found else {}
                if tags_of(instance).get("Project") != PROJECT:
                    self.untagged_terminations.append(instance_id)


@dataclass(frozen=True)
class World:
    """Valid events of every action, pointing at real resources of one moto world."""

    events: dict[str, dict[str, Any]]
    values: dict[str, list[Any]]


@pytest.fixture
def world(  # noqa: PLR0917 - pytest passes fixtures positionally
    start_event: dict[str, Any],
    workflow: Workflow,
    network: Network,
    launch_template: Template,
    ec2: EC2Client,
    sfn: SFNClient,
    s3: Any,
) -> World:
    subnet = network.subnet_ids[0]
    ours = launch_tagged(
        ec2,
        launch_template,
        subnet,
        {"Project": PROJECT, "StepFunctionsExecution": workflow.execution_arn},
    )
    foreign = launch_tagged(ec2, launch_template, subnet, {"Name": "someone-elses"})
    other_project = launch_tagged(
        ec2,
        launch_template,
        subnet,
        {"Project": "another-project", "StepFunctionsExecution": workflow.execution_arn},
    )
    ended = sfn.start_execution(stateMachineArn=workflow.state_machine_arn, name="ended-run")[
        "executionArn"
    ]
    sfn.stop_execution(executionArn=ended)
    results = {"bucket": RUN_RECORDS_BUCKET, "prefix": f"runs/{workflow.execution_name}/"}
    events = {
        "start": start_event,
        "stop": {
            "action": "stop",
            "execution_arn": workflow.execution_arn,
            "instance": {"instance_id": ours, "instance_type": "g4dn.xlarge"},
            "run": start_event["run"],
            "error": {"Error": "ModelCommandFailed", "Cause": "exit 3"},
            "results": results,
        },
        "cleanup": {"action": "cleanup", "execution_arn": ended, "status": "ABORTED"},
        "sweep": {"action": "sweep"},
        "instance_lost": {"action": "instance_lost", "instance_id": ours, "state": "terminated"},
    }
    values: dict[str, list[Any]] = {
        "execution_arn": [workflow.execution_arn, ended],
        "instance_id": [ours, foreign, other_project],
        "instance": [{"instance_id": i} for i in (ours, foreign, other_project)],
        "status": ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "RUNNING"],
        "action": sorted(events),
    }
    return World(events, values)


@st.composite
def events(draw: st.DrawFn, world: World) -> Any:
    """A valid event whose fields are each kept, swapped for another real value (another
    execution, someone else's instance), replaced by hostile JSON, or dropped; sometimes with
    an extra key, or a nested field changed; and now and then not an object at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(JSON_SCALARS, st.lists(ANY_JSON, max_size=3)))
    event = json.loads(json.dumps(world.events[draw(st.sampled_from(sorted(world.events)))]))
    for key in sorted(event):
        # Mostly kept, so that a changed field usually meets the checks behind the edge's.
        weights = ["keep"] * (18 if key == "action" else 6) + ["real value"] * 2
        change = draw(st.sampled_from([*weights, "hostile", "drop", "nest"]))
        if change == "real value" and key in world.values:
            event[key] = draw(st.sampled_from(world.values[key]))
        elif change == "hostile":
            event[key] = draw(ANY_JSON)
        elif change == "drop":
            del event[key]
        elif change == "nest" and isinstance(event[key], dict) and event[key]:
            inner = event[key]
            inner_key = draw(st.sampled_from([*sorted(inner), "extra"]))
            inner[inner_key] = draw(
                st.one_of(ANY_JSON, st.sampled_from(world.values["instance_id"]))
            )
    if draw(st.booleans()) and draw(st.booleans()):
        event[draw(st.text(max_size=12))] = draw(ANY_JSON)
    return event


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(data=st.data())
def test_generated_events_raise_only_declared_errors_and_never_touch_what_is_not_ours(
    data: st.DataObject, world: World, invoke: Invoke, ec2: EC2Client
) -> None:
    generated = data.draw(events(world))
    watch = Watch(ec2)
    # before-parameter-build: the API parameters as the launcher passed them.
    hooks = [
        (clients.ec2(), "before-parameter-build.ec2.*"),
        (clients.stepfunctions(), "before-parameter-build.*.*"),
    ]
    for client, name in hooks:
        client.meta.events.register(name, watch.before_parameter_build)
    action = generated.get("action") if isinstance(generated, dict) else None
    if not (isinstance(action, str) and action in world.events):
        action = f"no known action ({type(generated).__name__})"
    raised: Exception | None = None
    try:
        invoke(generated)
    except Exception as error:  # judged below, outside the handler
        raised = error
    finally:
        for client, name in hooks:
            client.meta.events.unregister(name, watch.before_parameter_build)
    event(f"{action}: {'done' if raised is None else type(raised).__name__}")
    if isinstance(raised, EventValidationError):
        assert watch.mutations == [], f"changed {watch.mutations} for a refused event"
    elif raised is not None and not isinstance(raised, ClientError):  # AWS's own: passed through
        assert type(raised).__name__ in LAUNCHER_ERRORS, f"undeclared {raised!r}"
    assert watch.untagged_terminations == []
