"""The local launch template is Terraform's: every attribute the plan sets reaches
LaunchTemplateData (local_aws/launch_template_data.py), or the local deploy refuses it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from local_aws import terraform_values
from local_aws.deployment import Deployment, LocalSettings
from local_aws.launch_template_data import UnmappedAttributeError, launch_template_data
from local_aws.terraform_values import LAUNCH_TEMPLATE

ACCOUNT = "123456789012"


def _planned(root: Path = terraform_values.TERRAFORM_DIR, cache: Path | None = None) -> Any:
    return terraform_values.plan(LocalSettings(), account_id=ACCOUNT, root=root, cache_dir=cache)


def _deployment() -> Deployment:
    return Deployment(
        settings=LocalSettings(),
        activity_arn=f"arn:aws:states:eu-west-1:{ACCOUNT}:activity:a",
        bucket_name="b",
        instance_profile_arn=f"arn:aws:iam::{ACCOUNT}:instance-profile/p",
        security_group_id="sg-1",
        subnet_ids=["subnet-1", "subnet-2"],
    )


def test_blocks_tags_and_string_flags_take_the_apis_shapes() -> None:
    data = launch_template_data(
        {
            "name": "not data",
            "tags": {"Project": "not data either"},
            "instance_type": "g5.xlarge",
            "key_name": None,
            "ebs_optimized": "true",
            "metadata_options": [{"http_tokens": "required", "http_protocol_ipv6": None}],
            "placement": [],
            "block_device_mappings": [
                {"device_name": "/dev/sda1", "ebs": [{"encrypted": "false", "volume_size": 9}]}
            ],
            "tag_specifications": [{"resource_type": "instance", "tags": {"B": "2", "A": "1"}}],
            "vpc_security_group_ids": ["sg-1"],
        }
    )

    assert data == {
        "InstanceType": "g5.xlarge",
        "EbsOptimized": True,
        "MetadataOptions": {"HttpTokens": "required"},
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/sda1", "Ebs": {"Encrypted": False, "VolumeSize": 9}}
        ],
        "TagSpecifications": [
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "A", "Value": "1"}, {"Key": "B", "Value": "2"}],
            }
        ],
        "SecurityGroupIds": ["sg-1"],
    }


@pytest.mark.parametrize(
    ("attributes", "named"),
    [
        ({"future_setting": "on"}, "aws_launch_template.future_setting"),
        (
            {"metadata_options": [{"http_tokenz": "required"}]},
            "aws_launch_template.metadata_options.http_tokenz",
        ),
        ({"ebs_optimized": "yes"}, "'yes' for a boolean"),
        ({"monitoring": [{"enabled": True}, {"enabled": False}]}, "2 blocks for one structure"),
    ],
)
def test_a_setting_without_a_place_in_the_api_is_refused_by_name(
    attributes: dict[str, Any], named: str
) -> None:
    with pytest.raises(UnmappedAttributeError) as raised:
        launch_template_data(attributes)
    assert named in str(raised.value)


def test_every_planned_setting_reaches_the_local_template() -> None:
    values = _planned()
    deployment = _deployment()
    data = values.local_launch_template_data(deployment)

    planned = values.evaluation.resource(LAUNCH_TEMPLATE)
    assert data["InstanceType"] == planned["instance_type"] == LocalSettings().instance_types[0]
    assert data["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    (root,) = data["BlockDeviceMappings"]
    assert root["Ebs"]["VolumeSize"] == LocalSettings().root_volume_size_gib
    assert root["Ebs"]["Encrypted"] is True
    tags = {spec["ResourceType"]: spec["Tags"] for spec in data["TagSpecifications"]}
    assert tags["instance"] == [{"Key": "Project", "Value": LocalSettings().name}]
    # The identifiers are the local deployment's.
    assert data["SecurityGroupIds"] == ["sg-1"]
    assert data["IamInstanceProfile"] == {"Arn": deployment.instance_profile_arn}
    assert data["UserData"] == values.local_user_data(deployment)
    assert "placeholder" not in str(data)


def test_the_template_needs_its_security_group_and_profile_deployed_first() -> None:
    deployment = _deployment()
    deployment.security_group_id = ""

    with pytest.raises(terraform_values.MockIdentifierError, match="security_group_id"):
        _planned().local_launch_template_data(deployment)


@pytest.mark.slow
def test_a_setting_added_in_hcl_reaches_the_local_template(tmp_path: Path) -> None:
    tree = tmp_path / "terraform"
    shutil.copytree(
        terraform_values.TERRAFORM_DIR, tree, ignore=shutil.ignore_patterns(".terraform*")
    )
    main_tf = tree / "modules/launch_template/main.tf"
    anchor = '  instance_initiated_shutdown_behavior = "terminate"\n'
    text = main_tf.read_text()
    assert anchor in text
    main_tf.write_text(text.replace(anchor, anchor + "  disable_api_stop = true\n"))

    data = _planned(tree, tmp_path / "evaluations").local_launch_template_data(_deployment())

    assert data["DisableApiStop"] is True
    assert "DisableApiStop" not in _planned().local_launch_template_data(_deployment())
