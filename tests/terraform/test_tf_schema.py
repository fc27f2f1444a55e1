"""The offline schema check: what `python -m terraform_tools.schema <dir>` accepts and reports."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

from terraform_tools import schema as tf_schema
from terraform_tools.schema import (
    ProviderPackage,
    ProviderSchema,
    Report,
    SchemaUnavailableError,
    check_paths,
)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def schemas() -> dict[str, ProviderSchema]:
    # The real schemas (downloaded into .cache/ on the first run, then read from the cache).
    return tf_schema.load_schemas()


def check(tmp_path: Path, schemas: dict[str, ProviderSchema], hcl: str) -> Report:
    (tmp_path / "main.tf").write_text(textwrap.dedent(hcl))
    return check_paths([tmp_path], schemas)


def messages(report: Report) -> list[str]:
    return [f"{f.line}: {f.block}: {f.message}" for f in report.findings]


def test_valid_module_has_no_findings(schemas: dict[str, ProviderSchema]) -> None:
    report = check_paths([FIXTURES / "valid_module"], schemas)

    assert messages(report) == []
    assert report.not_checked == []
    assert report.blocks_checked == 9


def test_misspelled_argument_is_reported_with_a_suggestion(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        """
        resource "aws_s3_bucket" "this" {
          bucket_prefx = "models-"
        }
        """,
    )

    assert messages(report) == [
        '3: resource "aws_s3_bucket" "this": unknown argument "bucket_prefx"; '
        'did you mean "bucket_prefix"?'
    ]


def test_missing_required_argument_is_reported_at_the_block(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        """
        resource "aws_iam_role" "this" {
          name = "launcher"
        }
        """,
    )

    assert messages(report) == [
        '2: resource "aws_iam_role" "this": missing required argument "assume_role_policy"'
    ]


def test_unknown_resource_type_is_reported_with_the_closest_type(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(tmp_path, schemas, 'resource "aws_s3_bukcet" "this" {}\n')

    assert messages(report) == [
        '1: resource "aws_s3_bukcet" "this": unknown resource type in hashicorp/aws 6.25.0; '
        'did you mean "aws_s3_bucket"?'
    ]


def test_data_source_used_as_resource_says_so(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(tmp_path, schemas, 'resource "aws_iam_policy_document" "this" {}\n')

    assert messages(report) == [
        '1: resource "aws_iam_policy_document" "this": unknown resource type in '
        'hashicorp/aws 6.25.0; "aws_iam_policy_document" is a data source'
    ]


def test_unknown_nested_block_is_reported_with_a_suggestion(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        """
        resource "aws_launch_template" "this" {
          metadata_option {
            http_tokens = "required"
          }
        }
        """,
    )

    assert messages(report) == [
        '3: resource "aws_launch_template" "this": unknown block type "metadata_option"; '
        'did you mean "metadata_options"?'
    ]


def test_unknown_argument_two_levels_deep_names_the_nesting(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        """
        resource "aws_launch_template" "this" {
          block_device_mappings {
            device_name = "/dev/xvda"
            ebs {
              volume_typ = "gp3"
            }
          }
        }
        """,
    )

    assert messages(report) == [
        '6: resource "aws_launch_template" "this": unknown argument "volume_typ" in '
        'block_device_mappings > ebs; did you mean "volume_type"?'
    ]


def test_missing_required_argument_inside_a_nested_block(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        """
        data "aws_iam_policy_document" "this" {
          statement {
            actions = ["s3:GetObject"]
            principals {
              type = "Service"
            }
          }
        }
        """,
    )

    assert messages(report) == [
        '5: data "aws_iam_policy_document" "this": missing required argument "identifiers" '
        "in statement > principals"
    ]


def test_dynamic_block_provides_the_required_block_it_generates(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        """
        resource "aws_lb_listener" "this" {
          load_balancer_arn = "arn"
          dynamic "default_action" {
            for_each = ["forward"]
            content {
              type             = default_action.value
              target_group_arn = "arn"
            }
          }
        }
        """,
    )

    assert messages(report) == []


def test_required_block_missing_without_a_dynamic_block(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path, schemas, 'resource "aws_lb_listener" "this" {\n  load_balancer_arn = "a"\n}\n'
    )

    assert messages(report) == [
        '1: resource "aws_lb_listener" "this": missing required block "default_action"'
    ]


def test_dynamic_block_content_is_checked_against_the_nested_schema(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        """
        resource "aws_security_group" "this" {
          dynamic "ingress" {
            for_each = var.rules
            content {
              from_port = 443
              to_prot   = 443
            }
          }
        }
        """,
    )

    assert messages(report) == [
        '7: resource "aws_security_group" "this": unknown argument "to_prot" in ingress; '
        'did you mean "to_port"?'
    ]


def test_dynamic_block_of_an_unknown_type_is_reported(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        """
        resource "aws_security_group" "this" {
          dynamic "ingres" {
            for_each = var.rules
            content {}
          }
        }
        """,
    )

    assert messages(report) == [
        '3: resource "aws_security_group" "this": dynamic "ingres": no such nested block; '
        'did you mean "ingress"?'
    ]


def test_dynamic_block_without_for_each_is_reported(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        """
        resource "aws_security_group" "this" {
          dynamic "egress" {
            content {}
          }
        }
        """,
    )

    assert messages(report) == [
        '3: resource "aws_security_group" "this": dynamic "egress": missing required "for_each"'
    ]


def test_data_source_arguments_are_checked(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        """
        data "aws_ssm_parameter" "ami" {
          with_decrypt = false
        }
        """,
    )

    assert messages(report) == [
        '3: data "aws_ssm_parameter" "ami": unknown argument "with_decrypt"; '
        'did you mean "with_decryption"?',
        '2: data "aws_ssm_parameter" "ami": missing required argument "name"',
    ]


def test_unknown_data_source_is_reported(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(tmp_path, schemas, 'data "aws_caller_identiy" "this" {}\n')

    assert messages(report) == [
        '1: data "aws_caller_identiy" "this": unknown data source in hashicorp/aws 6.25.0; '
        'did you mean "aws_caller_identity"?'
    ]


def test_meta_arguments_and_meta_blocks_are_accepted(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        """
        resource "aws_sqs_queue" "this" {
          for_each   = toset(["a"])
          provider   = aws.east
          depends_on = [aws_sqs_queue.other]
          lifecycle {
            prevent_destroy = true
            ignore_changes  = [tags]
            precondition {
              condition     = true
              error_message = "never"
            }
          }
          provisioner "local-exec" {
            command = "true"
          }
          connection {
            host = "example"
          }
        }
        data "aws_region" "this" {
          count = 1
          lifecycle {
            postcondition {
              condition     = true
              error_message = "never"
            }
          }
        }
        """,
    )

    assert messages(report) == []


def test_count_and_for_each_together_are_reported(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        'resource "aws_sqs_queue" "this" {\n  count = 1\n  for_each = {}\n}\n',
    )

    assert messages(report) == [
        '1: resource "aws_sqs_queue" "this": "count" and "for_each" cannot both be set; keep one'
    ]


def test_unknown_lifecycle_argument_is_reported(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        """
        resource "aws_sqs_queue" "this" {
          lifecycle {
            prevent_destory = true
          }
        }
        """,
    )

    assert messages(report) == [
        '4: resource "aws_sqs_queue" "this": unknown argument "prevent_destory" in lifecycle; '
        'did you mean "prevent_destroy"?'
    ]


def test_block_written_as_an_argument_is_reported(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        """
        resource "aws_launch_template" "this" {
          metadata_options = { http_tokens = "required" }
        }
        """,
    )

    assert messages(report) == [
        '3: resource "aws_launch_template" "this": "metadata_options" is a block, not an '
        "argument: write `metadata_options { ... }` (or a dynamic block) instead of "
        "`metadata_options = ...`"
    ]


def test_argument_written_as_a_block_is_reported(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        """
        resource "aws_sqs_queue" "this" {
          tags {
            Name = "x"
          }
        }
        """,
    )

    assert messages(report) == [
        '3: resource "aws_sqs_queue" "this": "tags" is an argument, not a block: write `tags = ...`'
    ]


def test_archive_file_is_checked_against_the_archive_provider(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        """
        data "archive_file" "code" {
          type       = "zip"
          source_dir = "src"
        }
        """,
    )

    assert messages(report) == [
        '2: data "archive_file" "code": missing required argument "output_path"'
    ]


def test_types_of_providers_without_a_schema_are_listed_as_not_checked(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(tmp_path, schemas, 'resource "random_id" "suffix" {\n  byte_length = 4\n}\n')

    assert messages(report) == []
    assert [str(n).replace(str(tmp_path), "DIR") for n in report.not_checked] == [
        'not checked: DIR/main.tf:1: resource "random_id" "suffix": no schema for provider '
        "hashicorp/random (schemas known: hashicorp/archive, hashicorp/aws)"
    ]


def test_provider_block_is_checked(tmp_path: Path, schemas: dict[str, ProviderSchema]) -> None:
    report = check(tmp_path, schemas, 'provider "aws" {\n  regoin = "eu-west-1"\n}\n')

    assert messages(report) == [
        '2: provider "aws": unknown argument "regoin"; did you mean "region"?'
    ]


def test_unparseable_file_is_a_finding_with_its_line(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(tmp_path, schemas, 'resource "aws_sqs_queue" "this" {\n  name = \n}\n')

    assert len(report.findings) == 1
    assert report.findings[0].line == 2
    assert report.findings[0].message.startswith("cannot parse HCL: Unexpected token")


def test_cli_prints_one_line_per_finding_and_exits_1(
    tmp_path: Path, schemas: dict[str, ProviderSchema], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "main.tf").write_text('resource "aws_iam_role" "this" {\n  nmae = "x"\n}\n')

    status = tf_schema.main([str(tmp_path)])

    out = capsys.readouterr().out.splitlines()
    assert status == 1
    assert out[0] == (
        f'{tmp_path}/main.tf:2: resource "aws_iam_role" "this": unknown argument "nmae"; '
        'did you mean "name"?'
    )
    assert out[1].endswith('missing required argument "assume_role_policy"')
    assert out[2].startswith("tf_schema: 2 finding(s), 0 not checked; 1 block(s) in 1 file(s)")


def test_cli_exits_0_on_a_valid_module(capsys: pytest.CaptureFixture[str]) -> None:
    assert tf_schema.main([str(FIXTURES / "valid_module")]) == 0
    assert "tf_schema: 0 finding(s)" in capsys.readouterr().out


def test_cli_exits_2_on_a_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tf_schema.main([str(tmp_path / "nowhere")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_real_schema_knows_the_types_this_project_uses(
    schemas: dict[str, ProviderSchema],
) -> None:
    aws = schemas["hashicorp/aws"]
    template = aws.block(aws.resources["aws_launch_template"])

    assert len(aws.resources) > 1500
    assert "aws_iam_policy_document" in aws.data_sources
    assert template.blocks["metadata_options"].syntax == "block"
    assert "region" in template.attributes  # new per-resource argument in provider 6.x
    assert aws.block(aws.resources["aws_sfn_state_machine"]).attributes["definition"] is True


# ---- reading the jsii assembly, on a small synthetic one --------------------------------------

PACKAGE = ProviderPackage(
    source="hashicorp/demo",
    version="1.2.3",
    dist="cdktf-cdktf-provider-demo",
    dist_version="9.9.9",
    wheel_sha256="0" * 64,
)
LINK = "https://registry.terraform.io/providers/hashicorp/demo/1.2.3/docs/resources/thing"


def prop(name: str, anchor: str, type_ref: dict[str, Any], **extra: Any) -> dict[str, Any]:
    # As in the real assembly: the docs link in the summary, or in the remarks of a block.
    link = f"Docs at Terraform Registry: {{@link {LINK}#{anchor} X#{anchor}}}"
    docs = (
        {"summary": extra.pop("summary"), "remarks": link}
        if "summary" in extra
        else {"summary": link}
    )
    return {"name": name, "docs": docs, "type": type_ref, **extra}


def assembly(version: str = "1.2.3") -> dict[str, Any]:
    p = "demo."
    link = LINK.replace("1.2.3", version)
    return {
        "name": "demo",
        "types": {
            p + "Thing": {
                "kind": "class",
                "base": "cdktf.TerraformResource",
                "docs": {"summary": f"Represents a {{@link {link} demo_thing}}."},
                "initializer": {"parameters": [{"name": "config", "type": {"fqn": p + "Cfg"}}]},
            },
            p + "Cfg": {
                "datatype": True,
                "properties": [
                    prop("selfAttribute", "self", {"primitive": "string"}),
                    prop("note", "note", {"primitive": "string"}, optional=True),
                    prop(
                        "rule",
                        "rule",
                        {
                            "union": {
                                "types": [
                                    {
                                        "collection": {
                                            "kind": "array",
                                            "elementtype": {"fqn": p + "Rule"},
                                        }
                                    }
                                ]
                            }
                        },
                        optional=True,
                        summary="rule block.",
                    ),
                    prop("setting", "setting", {"fqn": p + "Rule"}, optional=True),
                    prop(
                        "byName",
                        "by_name",
                        {"collection": {"kind": "map", "elementtype": {"fqn": p + "Rule"}}},
                        optional=True,
                    ),
                ],
            },
            p + "Rule": {
                "datatype": True,
                "properties": [prop("port", "port", {"primitive": "number"})],
            },
        },
    }


def test_attribute_names_come_from_the_docs_anchor_not_the_property_name() -> None:
    schema = tf_schema.schema_from_assembly(assembly(), PACKAGE)
    thing = schema.block(schema.resources["demo_thing"])

    assert thing.attributes == {"self": True, "note": False, "by_name": False}


def test_struct_properties_become_nested_blocks_with_their_syntax() -> None:
    schema = tf_schema.schema_from_assembly(assembly(), PACKAGE)
    thing = schema.block(schema.resources["demo_thing"])

    assert {n: (b.required, b.syntax) for n, b in thing.blocks.items()} == {
        "rule": (False, "block"),
        "setting": (False, "either"),
    }
    assert schema.block(thing.blocks["rule"].struct).attributes == {"port": True}


def test_assembly_of_another_provider_version_is_refused() -> None:
    with pytest.raises(SchemaUnavailableError, match=r"hashicorp/demo 1\.2\.4, expected 1\.2\.3"):
        tf_schema.schema_from_assembly(assembly(version="1.2.4"), PACKAGE)


def test_schema_survives_the_json_cache_round_trip() -> None:
    schema = tf_schema.schema_from_assembly(assembly(), PACKAGE)
    again = ProviderSchema.from_json(json.loads(json.dumps(schema.to_json())))

    assert again.block(again.resources["demo_thing"]) == schema.block(
        schema.resources["demo_thing"]
    )


def wheel_with(tmp_path: Path, package: ProviderPackage, payload: dict[str, Any]) -> Path:
    jsii = json.dumps(payload).encode()
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/.jsii")
        info.size = len(jsii)
        tar.addfile(info, io.BytesIO(jsii))
    wheel = tmp_path / "wheels" / package.wheel_name
    wheel.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{package.module}/_jsii/provider-demo@9.9.9.jsii.tgz", tgz.getvalue())
    return wheel


def test_cached_wheel_is_turned_into_a_cached_schema(tmp_path: Path) -> None:
    wheel = wheel_with(tmp_path, PACKAGE, assembly())
    package = ProviderPackage(
        **{**PACKAGE.__dict__, "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}
    )

    schema = tf_schema.load_provider_schema(package, tmp_path)

    assert list(schema.resources) == ["demo_thing"]
    assert (tmp_path / package.cache_name).exists()
    wheel.unlink()  # the second load must not need the wheel at all
    assert tf_schema.load_provider_schema(package, tmp_path).resources == schema.resources


def test_wheel_with_an_unexpected_hash_is_refused(tmp_path: Path) -> None:
    wheel_with(tmp_path, PACKAGE, assembly())

    with pytest.raises(SchemaUnavailableError, match=r"expected 0{64}; delete it"):
        tf_schema.load_provider_schema(PACKAGE, tmp_path)


# ---- calls to local modules -------------------------------------------------------------------


def module_with_variables(tmp_path: Path) -> Path:
    child = tmp_path / "modules" / "bucket"
    child.mkdir(parents=True)
    (child / "variables.tf").write_text(
        'variable "name" {\n  type = string\n}\n'
        'variable "versioning" {\n  type    = bool\n  default = true\n}\n'
    )
    return tmp_path


def test_module_call_with_an_unknown_variable_is_reported(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    root = module_with_variables(tmp_path)
    report = check(
        root,
        schemas,
        """
        module "bucket" {
          source     = "./modules/bucket"
          name       = "models"
          versionign = false
        }
        """,
    )

    assert messages(report) == [
        '5: module "bucket": unknown argument "versionign": ./modules/bucket has no variable '
        '"versionign"; did you mean "versioning"?'
    ]


def test_module_call_without_a_required_variable_is_reported(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    root = module_with_variables(tmp_path)
    report = check(root, schemas, 'module "bucket" {\n  source = "./modules/bucket"\n}\n')

    assert messages(report) == [
        '1: module "bucket": missing required argument "name" (variable without a default in '
        "./modules/bucket)"
    ]


def test_registry_module_is_listed_as_not_checked(
    tmp_path: Path, schemas: dict[str, ProviderSchema]
) -> None:
    report = check(
        tmp_path,
        schemas,
        'module "vpc" {\n  source  = "terraform-aws-modules/vpc/aws"\n  version = "5.0.0"\n}\n',
    )

    assert messages(report) == []
    assert [n.reason for n in report.not_checked] == [
        "source terraform-aws-modules/vpc/aws is not a local path; only local modules are read"
    ]
