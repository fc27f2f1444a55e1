"""The offline provider stand-in: the schema it serves, and that it never plans or applies."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from tf.gen import tfplugin_pb2 as pb

from terraform_tools import offline as tf_offline
from terraform_tools.provider import REFUSAL, SCHEMA_CACHE
from terraform_tools.provider_schema import _snake, cached_schema_response, package_for

LIST = pb.Schema.NestedBlock.NestingMode.LIST


@pytest.fixture(scope="module")
def aws() -> Any:
    data = cached_schema_response(package_for("hashicorp/aws"), SCHEMA_CACHE)
    return pb.GetProviderSchema.Response.FromString(data)


def attribute(block: Any, name: str) -> Any:
    (found,) = [a for a in block.attributes if a.name == name]
    return found


def nested(block: Any, name: str) -> Any:
    (found,) = [b for b in block.block_types if b.type_name == name]
    return found


def test_arguments_keep_their_type_and_optionality(aws: Any) -> None:
    template = aws.resource_schemas["aws_launch_template"].block

    assert attribute(template, "user_data").type == b'"string"'
    assert attribute(template, "user_data").optional
    assert attribute(template, "vpc_security_group_ids").type == b'["list", "string"]'
    assert attribute(template, "tags").type == b'["map", "string"]'
    assert attribute(template, "update_default_version").type == b'"bool"'


def test_required_arguments_are_required(aws: Any) -> None:
    role = aws.resource_schemas["aws_iam_role"].block

    assert attribute(role, "assume_role_policy").required


def test_computed_attributes_are_served_for_references(aws: Any) -> None:
    template = aws.resource_schemas["aws_launch_template"].block

    assert attribute(template, "latest_version").computed
    assert attribute(template, "latest_version").type == b'"number"'
    assert not attribute(template, "latest_version").optional
    assert attribute(aws.data_source_schemas["aws_iam_policy_document"].block, "json").computed


def test_a_block_of_at_most_one_item_is_a_list_of_one(aws: Any) -> None:
    options = nested(aws.resource_schemas["aws_launch_template"].block, "metadata_options")

    assert options.nesting == LIST
    assert options.max_items == 1
    assert attribute(options.block, "http_tokens").type == b'"string"'


def test_repeatable_blocks_nest_with_their_own_blocks(aws: Any) -> None:
    mappings = nested(aws.resource_schemas["aws_launch_template"].block, "block_device_mappings")

    assert mappings.nesting == LIST
    assert mappings.max_items == 0
    assert attribute(nested(mappings.block, "ebs").block, "volume_size").type == b'"number"'


def test_data_source_filters_are_read_back(aws: Any) -> None:
    region = attribute(aws.data_source_schemas["aws_region"].block, "region")

    assert region.optional
    assert region.computed


@pytest.mark.parametrize(
    ("camel", "snake"),
    [
        ("latestVersion", "latest_version"),
        ("ipv6CidrBlock", "ipv6_cidr_block"),
        ("outputBase64Sha256", "output_base64sha256"),
        ("checksumCrc32C", "checksum_crc32c"),
        ("s3Key", "s3_key"),
    ],
)
def test_computed_names_are_recovered_from_cdktf_camel_case(camel: str, snake: str) -> None:
    assert _snake(camel) == snake


def test_the_stand_in_refuses_to_plan(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws" }\n  }\n}\n'
        'resource "aws_sqs_queue" "this" {\n  name = "q"\n}\n'
    )
    env = tf_offline.environment(tmp_path / ".data", tf_offline.install(tmp_path / ".cache"))
    assert tf_offline.init(tmp_path, env).returncode == 0

    done = tf_offline.run(["plan", "-input=false", "-no-color", "-refresh=false"], tmp_path, env)

    assert done.returncode != 0
    assert " ".join(REFUSAL.split()[:6]) in " ".join(done.stderr.split())


def test_the_stand_in_keeps_serving_after_its_handshake(tmp_path: Path) -> None:
    launcher = tf_offline.install(tmp_path / ".cache").parent / "plugins"
    process = subprocess.Popen(
        [str(launcher / "terraform-provider-archive")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        handshake = process.stdout.readline().split("|")
        time.sleep(1.5)  # longer than its parent check's interval

        assert handshake[:3] == ["1", "6", "unix"]
        assert process.poll() is None
    finally:
        process.kill()
        process.wait(timeout=10)
