"""An `aws_launch_template`'s planned attributes as CreateLaunchTemplate's LaunchTemplateData.

The translation follows botocore's model of the request (`RequestLaunchTemplateData`): a
Terraform attribute maps to the member of the same name in PascalCase (blocks to structures or
lists of them, a tags map to a list of Key/Value pairs, "true"/"false" to booleans). An attribute
the plan sets that has no member is refused rather than left out, so a setting added in HCL
either reaches the local launch template or stops the local deploy with its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from botocore.model import ListShape, Shape, StructureShape

# The resource's own attributes: they name or version the template, not what it launches.
RESOURCE_ATTRIBUTES = frozenset(
    {
        "arn",
        "default_version",
        "description",
        "id",
        "latest_version",
        "name",
        "name_prefix",
        "region",
        "tags",
        "tags_all",
        "update_default_version",
    }
)

# Where Terraform's name is not the API member's name in snake_case.
RENAMED = {"vpc_security_group_ids": "SecurityGroupIds", "security_group_names": "SecurityGroups"}


class UnmappedAttributeError(ValueError):
    """A planned launch template attribute has no counterpart in LaunchTemplateData."""


@cache
def request_shape() -> StructureShape:
    import botocore.session

    model = botocore.session.get_session().get_service_model("ec2")
    shape = model.shape_for("RequestLaunchTemplateData")
    if not isinstance(shape, StructureShape):
        raise TypeError(f"botocore's RequestLaunchTemplateData is a {shape.type_name}")
    return shape


def pascal(name: str) -> str:
    return RENAMED.get(name) or "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _unset(value: Any) -> bool:
    return value is None or value in ([], {}, "")


def _convert(value: Any, shape: Shape, path: str) -> Any:
    if isinstance(shape, StructureShape):
        if isinstance(value, list):  # a block: Terraform plans it as a list of at most one
            if len(value) != 1:
                raise UnmappedAttributeError(f"{path}: {len(value)} blocks for one structure")
            (value,) = value
        if not isinstance(value, Mapping):
            raise UnmappedAttributeError(f"{path}: {type(value).__name__} for a structure")
        return _structure(value, shape, path)
    if isinstance(shape, ListShape):
        if isinstance(value, Mapping):  # tags = { Key = "Value" }
            return [{"Key": k, "Value": v} for k, v in sorted(value.items())]
        if not isinstance(value, list):
            raise UnmappedAttributeError(f"{path}: {type(value).__name__} for a list")
        return [_convert(item, shape.member, f"{path}[{i}]") for i, item in enumerate(value)]
    if shape.type_name == "boolean" and isinstance(value, str):
        # The provider keeps some flags (encrypted, delete_on_termination) as strings.
        if value not in ("true", "false"):
            raise UnmappedAttributeError(f"{path}: {value!r} for a boolean")
        return value == "true"
    return value


def _structure(attributes: Mapping[str, Any], shape: StructureShape, path: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value in sorted(attributes.items()):
        if _unset(value):
            continue
        member = pascal(name)
        if member not in shape.members:
            raise UnmappedAttributeError(
                f"{path}.{name} = {value!r}: no {member} in the API's {shape.name}; translate it "
                "in local_aws/launch_template_data.py or the local launch template would lack it"
            )
        data[member] = _convert(value, shape.members[member], f"{path}.{name}")
    return data


def launch_template_data(planned: Mapping[str, Any]) -> dict[str, Any]:
    """LaunchTemplateData for a planned `aws_launch_template` (its attributes as planned)."""
    data = {k: v for k, v in planned.items() if k not in RESOURCE_ATTRIBUTES}
    return _structure(data, request_shape(), "aws_launch_template")
