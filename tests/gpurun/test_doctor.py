"""``gpurun doctor`` against a small stack in moto: healthy, then each thing broken in turn."""

from __future__ import annotations

from typing import Any

import boto3

from tests.gpurun.cli_helpers import gpurun
from tests.gpurun.conftest import AGENT_LOG_GROUP, REGION, SCHEDULE, SmallStack, definition


def checks(stack: SmallStack) -> dict[str, dict[str, Any]]:
    result = gpurun("doctor", *stack.flags(), "--json")
    return {c["name"]: c for c in result.json()}


def test_a_healthy_stack_passes_every_check_and_exits_0(small_stack: SmallStack) -> None:
    result = gpurun("doctor", *small_stack.flags())

    assert result.code == 0, result.out
    assert "FAIL" not in result.out
    for name in (
        "bucket",
        "activity",
        "launch template",
        "ami",
        "log shipping",
        "gpu image",
        "fits g5.xlarge",
        "fits g4dn.xlarge",
        "schedule",
        "model",
    ):
        assert f"ok   {name}:" in result.out


def test_the_schedule_check_shows_the_next_fire_time_in_utc(small_stack: SmallStack) -> None:
    detail = checks(small_stack)["schedule"]["detail"]

    assert "cron(0 6 ? * TUE *) Europe/Paris: next run " in detail
    # 06:00 in Paris is 04:00 or 05:00 UTC depending on daylight saving time.
    assert "T04:00:00+00:00" in detail or "T05:00:00+00:00" in detail


def test_a_disabled_schedule_fails_and_says_how_to_enable_it(small_stack: SmallStack) -> None:
    scheduler = boto3.client("scheduler", region_name=REGION)
    current = scheduler.get_schedule(Name=SCHEDULE)
    scheduler.update_schedule(
        Name=SCHEDULE,
        ScheduleExpression=current["ScheduleExpression"],
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=current["Target"],
        State="DISABLED",
    )

    result = gpurun("doctor", *small_stack.flags())

    assert result.code == 1
    assert "FAIL schedule:" in result.out
    assert "is DISABLED: no weekly run will start" in result.out
    assert "schedule_enabled = true" in result.out


def test_an_ami_parameter_that_does_not_exist_fails_the_ami_check(small_stack: SmallStack) -> None:
    boto3.client("ssm", region_name=REGION).delete_parameter(Name="/ops-test/ami")

    found = checks(small_stack)["ami"]

    assert found["ok"] is False
    assert "/ops-test/ami cannot be read" in found["detail"]
    assert "var.ami" in found["fix"]


def test_an_ami_id_that_does_not_resolve_fails_the_ami_check(small_stack: SmallStack) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/ops-test/ami", Value="ami-0123456789abcdef0", Type="String", Overwrite=True
    )

    found = checks(small_stack)["ami"]

    assert found["ok"] is False
    assert "ami-0123456789abcdef0 is not resolvable" in found["detail"]


def test_a_missing_bucket_fails_the_bucket_check(small_stack: SmallStack) -> None:
    small_stack.s3.delete_object(Bucket=small_stack.bucket, Key="models/current/manifest.json")
    small_stack.s3.delete_bucket(Bucket=small_stack.bucket)

    result = gpurun("doctor", *small_stack.flags())

    assert result.code == 1
    assert f"FAIL bucket: s3://{small_stack.bucket} is not reachable" in result.out


def test_an_unpublished_model_fails_the_model_check_with_the_publish_command(
    small_stack: SmallStack,
) -> None:
    small_stack.s3.delete_object(Bucket=small_stack.bucket, Key="models/current/manifest.json")

    found = checks(small_stack)["model"]

    assert found["ok"] is False
    assert "ModelNotFound" in found["detail"]
    assert found["fix"].startswith("gpurun publish-model")


def test_an_instance_type_not_offered_in_the_subnets_zones_fails(small_stack: SmallStack) -> None:
    from tests.gpurun.conftest import definition

    small_stack.sfn.update_state_machine(
        stateMachineArn=small_stack.state_machine_arn,
        definition=definition(
            {
                "instance_types": ["p5.48xlarge", "g5.xlarge"],
                "subnet_ids": small_stack.subnet_ids,
                "model_prefix": "models/current/",
            }
        ),
    )

    found = checks(small_stack)

    assert found["offering p5.48xlarge"]["ok"] is False
    assert "eu-west-1a, eu-west-1b" in found["offering p5.48xlarge"]["detail"]
    assert found["offering g5.xlarge"]["ok"] is True


def test_a_missing_launch_template_fails_without_checking_the_ami(small_stack: SmallStack) -> None:
    small_stack.ec2.delete_launch_template(LaunchTemplateId=small_stack.launch_template_id)

    found = checks(small_stack)

    assert found["launch template"]["ok"] is False
    assert "ami" not in found


def test_a_name_given_nowhere_fails_its_check_naming_the_flag_and_variable(
    small_stack: SmallStack,
) -> None:
    flags = small_stack.flags()
    index = flags.index("--activity-arn")
    del flags[index : index + 2]

    result = gpurun("doctor", *flags)

    assert "FAIL activity: activity_arn is not known" in result.out
    assert "--activity-arn" in result.out
    assert "GPURUN_ACTIVITY_ARN" in result.out


def image_named(stack: SmallStack, name: str, *, architecture: str = "x86_64") -> str:
    """A new image for the stack's AMI parameter; its id."""
    ec2 = boto3.client("ec2", region_name=REGION)
    builder = ec2.run_instances(ImageId=stack.image_id, MinCount=1, MaxCount=1)["Instances"][0]
    image_id = ec2.create_image(InstanceId=builder["InstanceId"], Name=name)["ImageId"]
    ec2.terminate_instances(InstanceIds=[builder["InstanceId"]])
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/ops-test/ami", Value=image_id, Type="String", Overwrite=True
    )
    return image_id


def test_an_image_that_names_no_gpu_driver_fails_the_gpu_image_check(
    small_stack: SmallStack,
) -> None:
    image_named(small_stack, "plain-ubuntu-24.04")

    result = gpurun("doctor", *small_stack.flags())

    assert result.code == 1
    assert "FAIL gpu image:" in result.out
    assert "names no GPU driver" in result.out
    assert "use a Deep Learning AMI" in result.out


def test_an_instance_type_without_a_gpu_fails_its_fit_check(small_stack: SmallStack) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    defaults = {
        "instance_types": ["m5.large"],
        "subnet_ids": small_stack.subnet_ids,
        "model_prefix": "models/current/",
        "max_runtime_seconds": 3600,
        "parameters": {},
    }
    sfn.update_state_machine(
        stateMachineArn=small_stack.state_machine_arn, definition=definition(defaults)
    )

    found = checks(small_stack)["fits m5.large"]

    assert found["ok"] is False
    assert found["detail"] == "m5.large has no GPU"


def test_a_missing_agent_log_group_fails_the_log_shipping_check(small_stack: SmallStack) -> None:
    boto3.client("logs", region_name=REGION).delete_log_group(logGroupName=AGENT_LOG_GROUP)

    found = checks(small_stack)["log shipping"]

    assert found["ok"] is False
    assert f"log group {AGENT_LOG_GROUP} of the user data does not exist" in found["detail"]


def test_a_launch_template_without_user_data_fails_the_log_shipping_check(
    small_stack: SmallStack,
) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    ec2.create_launch_template_version(
        LaunchTemplateId=small_stack.launch_template_id,
        LaunchTemplateData={"ImageId": "resolve:ssm:/ops-test/ami", "InstanceType": "g5.xlarge"},
    )

    found = checks(small_stack)["log shipping"]

    assert found["ok"] is False
    assert "no user data" in found["detail"]
