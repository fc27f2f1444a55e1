"""start: one instance per execution, from the launch template, tagged, found again on retry."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from launcher import clients
from launcher.errors import EventValidationError
from launcher.instances import client_token
from tests.launcher.conftest import (
    PROJECT,
    TEMPLATE_INSTANCE_TYPE,
    CallLog,
    Invoke,
    Network,
    Template,
    Workflow,
    instance_of,
    tags_of,
)

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_stepfunctions import SFNClient


def _project_instances(ec2: EC2Client) -> list[Any]:
    pages = ec2.describe_instances(
        Filters=[
            {"Name": "tag:Project", "Values": [PROJECT]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )["Reservations"]
    return [i for r in pages for i in r["Instances"]]


def _volumes_of(ec2: EC2Client, instance: Any) -> list[Any]:
    # The instance's block device mapping, not "attached to": moto leaves its default root
    # volume attached even when the template maps the same device.
    ids = [m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]]
    return list(ec2.describe_volumes(VolumeIds=ids)["Volumes"])


def test_start_returns_the_instance_in_the_first_type_and_subnet(
    invoke: Invoke, start_event: dict[str, Any], network: Network
) -> None:
    result = invoke(start_event)
    assert result["instance_id"].startswith("i-")
    assert result["instance_type"] == "g4dn.xlarge"
    assert result["subnet_id"] == network.subnet_ids[0]
    assert result["availability_zone"] == network.zones[0]
    assert result["reused"] is False


def test_start_launches_from_the_launch_template(
    invoke: Invoke,
    start_event: dict[str, Any],
    ec2: EC2Client,
    launch_template: Template,
    network: Network,
) -> None:
    instance = instance_of(ec2, invoke(start_event)["instance_id"])
    assert instance["ImageId"] == launch_template.image_id
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [network.security_group_id]
    assert tags_of(instance)["aws:ec2launchtemplate:id"] == launch_template.template_id
    volumes = _volumes_of(ec2, instance)
    assert [(v["Size"], v["VolumeType"], v["Encrypted"]) for v in volumes] == [(60, "gp3", True)]


def test_start_overrides_only_the_instance_type_and_subnet(
    invoke: Invoke, start_event: dict[str, Any], aws_calls: CallLog, launch_template: Template
) -> None:
    invoke(start_event)
    [request] = aws_calls.params("RunInstances")
    assert set(request) == {
        "LaunchTemplate",
        "InstanceType",
        "SubnetId",
        "MinCount",
        "MaxCount",
        "ClientToken",
        "TagSpecifications",
    }
    assert request["LaunchTemplate"] == {
        "LaunchTemplateId": launch_template.template_id,
        "Version": "$Latest",
    }
    assert [s["ResourceType"] for s in request["TagSpecifications"]] == ["instance", "volume"]
    assert request["InstanceType"] != TEMPLATE_INSTANCE_TYPE


def test_start_tags_instance_and_volume_with_project_execution_and_run_name(
    invoke: Invoke, start_event: dict[str, Any], ec2: EC2Client, workflow: Workflow
) -> None:
    instance = instance_of(ec2, invoke(start_event)["instance_id"])
    expected = {
        "Project": PROJECT,
        "StepFunctionsExecution": workflow.execution_arn,
        "RunName": workflow.execution_name,
        "Name": f"{PROJECT}-{workflow.execution_name}",
    }
    assert tags_of(instance).items() >= expected.items()
    volumes = _volumes_of(ec2, instance)
    assert volumes
    for volume in volumes:
        assert tags_of(volume).items() >= expected.items()


def test_second_start_of_the_same_execution_returns_the_same_instance(
    invoke: Invoke, start_event: dict[str, Any], ec2: EC2Client
) -> None:
    first = invoke(start_event)
    second = invoke(start_event)
    assert second["instance_id"] == first["instance_id"]
    assert second["reused"] is True
    assert {k: v for k, v in second.items() if k != "reused"} == {
        k: v for k, v in first.items() if k != "reused"
    }
    assert [i["InstanceId"] for i in _project_instances(ec2)] == [first["instance_id"]]


def test_second_start_calls_no_run_instances(
    invoke: Invoke, start_event: dict[str, Any], aws_calls: CallLog
) -> None:
    invoke(start_event)
    invoke(start_event)
    assert aws_calls.operations("ec2").count("RunInstances") == 1


def test_start_after_the_instance_was_terminated_launches_a_new_one(
    invoke: Invoke, start_event: dict[str, Any], ec2: EC2Client
) -> None:
    first = invoke(start_event)["instance_id"]
    ec2.terminate_instances(InstanceIds=[first])
    second = invoke(start_event)
    assert second["instance_id"] != first
    assert second["reused"] is False


def test_client_token_is_derived_from_the_execution_and_the_pair(
    invoke: Invoke, start_event: dict[str, Any], aws_calls: CallLog, workflow: Workflow
) -> None:
    invoke(start_event)
    [request] = aws_calls.params("RunInstances")
    expected = client_token(workflow.execution_arn, request["InstanceType"], request["SubnetId"])
    assert request["ClientToken"] == expected


def test_client_token_fits_the_api_limit_and_differs_per_pair() -> None:
    arn = "arn:aws:states:eu-west-1:123456789012:execution:" + "m" * 80 + ":" + "n" * 80
    tokens = {
        client_token(arn, t, s)
        for t in ("g4dn.xlarge", "g5.xlarge")
        for s in ("subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788")
    }
    assert len(tokens) == 4
    for token in tokens:
        assert len(token) <= 64
        assert token.isascii()
    assert client_token(arn, "g4dn.xlarge", "subnet-0a1b2c3d4e5f60718") in tokens


def test_client_token_differs_per_execution() -> None:
    one = "arn:aws:states:eu-west-1:123456789012:execution:m:run-1"
    two = "arn:aws:states:eu-west-1:123456789012:execution:m:run-2"
    assert client_token(one, "g5.xlarge", "subnet-0a1b2c3d") != client_token(
        two, "g5.xlarge", "subnet-0a1b2c3d"
    )


def test_long_execution_names_truncate_the_name_tag_to_256(
    invoke: Invoke,
    sfn: Any,
    start_event: dict[str, Any],
    ec2: EC2Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROJECT_NAME", "p" * 250)
    sfn.stop_execution(executionArn=start_event["execution_arn"])
    name = "n" * 80
    machine = start_event["state_machine_arn"]
    arn = sfn.start_execution(stateMachineArn=machine, name=name)["executionArn"]
    start_event.update(execution_arn=arn, execution_name=name)
    instance = instance_of(ec2, invoke(start_event)["instance_id"])
    assert tags_of(instance)["Name"] == ("p" * 250 + "-" + name)[:256]


def test_a_token_answered_with_a_terminated_instance_launches_a_new_one(
    invoke: Invoke, start_event: dict[str, Any], aws_calls: CallLog, workflow: Workflow
) -> None:
    # After a redrive, EC2 answers the execution's old token with the instance it launched
    # then, now terminated. moto ignores tokens, so the first answer is patched in.
    gone = "i-0dead0dead0dead00"
    answers = [{"Instances": [{"InstanceId": gone, "State": {"Name": "terminated"}}]}]

    def stale_answer(**_: Any) -> tuple[Any, dict[str, Any]] | None:
        return (_Ok(), answers.pop()) if answers else None

    handler: Any = stale_answer
    clients.ec2().meta.events.register("before-call.ec2.RunInstances", handler)
    result = invoke(start_event)
    assert result["instance_id"] != gone
    first, second = (p["ClientToken"] for p in aws_calls.params("RunInstances"))
    pair = ("g4dn.xlarge", start_event["run"]["subnet_ids"][0])
    assert first == client_token(workflow.execution_arn, *pair)
    assert second == client_token(workflow.execution_arn, *pair, replaces=gone)


class _Ok:
    status_code = 200


# ---- start confirms the execution with Step Functions ---------------------------------------


def test_start_for_an_execution_that_is_over_launches_nothing(
    invoke: Invoke, start_event: dict[str, Any], sfn: SFNClient, aws_calls: CallLog
) -> None:
    sfn.stop_execution(executionArn=start_event["execution_arn"])

    with pytest.raises(EventValidationError, match="the execution is ABORTED, not RUNNING"):
        invoke(start_event)

    assert "RunInstances" not in aws_calls.operations("ec2")


def test_start_for_an_execution_step_functions_does_not_know_launches_nothing(
    invoke: Invoke, start_event: dict[str, Any], aws_calls: CallLog
) -> None:
    start_event["execution_arn"] = start_event["execution_arn"].replace(
        "weekly-2025-01-07", "invented"
    )
    start_event["execution_name"] = "invented"

    with pytest.raises(EventValidationError, match="not an execution Step Functions knows"):
        invoke(start_event)

    assert "RunInstances" not in aws_calls.operations("ec2")


def test_start_for_an_execution_of_another_state_machine_launches_nothing(
    invoke: Invoke, start_event: dict[str, Any], sfn: SFNClient, aws_calls: CallLog
) -> None:
    other = sfn.create_state_machine(
        name="someone-elses-machine",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/other",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=other, name="their-run")["executionArn"]
    # The event's fields agree with each other and with Step Functions; only the launcher's
    # own STATE_MACHINE_ARN says the run is not this launcher's.
    start_event.update(state_machine_arn=other, execution_arn=execution, execution_name="their-run")

    with pytest.raises(EventValidationError, match="not the state machine this launcher serves"):
        invoke(start_event)

    assert "RunInstances" not in aws_calls.operations("ec2")
