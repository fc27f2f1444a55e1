"""The tfplugin6 schema of a provider, generated from its CDKTF jsii assembly.

The offline provider stand-in (terraform_tools/provider.py) serves it to Terraform, so that
`terraform validate` and `terraform test` check terraform/ against the real hashicorp/aws 6.25.0
and hashicorp/archive 2.7.1 schemas: every argument and block with its nesting, its value type,
required or optional, and the computed attributes a reference may read.

The assembly is the one terraform_tools/schema.py already reads (same pinned wheels, same
docs-link naming of each Terraform attribute). What it does not record, and how we serve it:

- optional+computed is indistinguishable from optional: a resource's optional arguments are
  served optional (`id` excepted, optional+computed as in every SDKv2 resource), a data
  source's top-level optional arguments optional+computed (most are filters read back, e.g.
  aws_region's `region`), so a mock can fill them;
- lists and sets are both jsii arrays: served as lists (a set-typed attribute therefore accepts
  an index where real Terraform would refuse one);
- a block with at most one item is a bare struct: served as a list with max_items 1 (the SDKv2
  convention, which `x[0].y` references rely on); min/max item counts are not recorded either;
- computed attributes holding objects or lists of objects are served as `dynamic`; a struct
  that contains itself is cut at the second level as a `dynamic` attribute;
- computed-only attributes have no docs link, so their names are recovered from the camel case
  (see `_snake`): a name CDKTF renamed (a reserved word) or split unusually is served wrong;
- no provider-side validation (enums, formats, conflicts): the stand-in answers every
  Validate* call with no diagnostics.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from terraform_tools.schema import (
    DEFAULT_CACHE_DIR,
    PROVIDERS,
    ProviderPackage,
    SchemaUnavailableError,
    _download_wheel,
    _property_link,
    _read_assembly,
    _struct_in,
)

SCHEMA_FORMAT = 1
# CDKTF camel-cases with a word break at every letter-digit boundary: `base64sha256` and
# `ipv6_cidr` both come back with a capital after the digit. Mostly that capital was a new word;
# a hash name (`sha256`) or a lone letter (`crc32c`) after a digit was not.
_CAMEL = re.compile(r"(?<!^)(?<![0-9](?=Sha|Md))(?<![0-9](?=[A-Z](?:[A-Z0-9]|$)))(?=[A-Z])")
_BASE_CLASSES = {
    "cdktf.TerraformResource": "resource",
    "cdktf.TerraformDataSource": "data",
    "cdktf.TerraformProvider": "provider",
}
# In the CDKTF config of a provider, not in the provider's schema.
_PROVIDER_META = frozenset({"alias"})


def _snake(camel: str) -> str:
    return _CAMEL.sub("_", camel).lower()


def _cty(type_ref: dict[str, Any], types: dict[str, Any]) -> Any:
    """The cty type (JSON form) of a jsii type reference of a primitive or collection."""
    if "primitive" in type_ref:
        return {"string": "string", "number": "number", "boolean": "bool"}.get(
            type_ref["primitive"], "dynamic"
        )
    if "union" in type_ref:
        members = [m for m in type_ref["union"]["types"] if m.get("fqn") != "cdktf.IResolvable"]
        return _cty(members[0], types) if len(members) == 1 else "dynamic"
    if "collection" in type_ref:
        element = _cty(type_ref["collection"]["elementtype"], types)
        return ["map" if type_ref["collection"]["kind"] == "map" else "list", element]
    return "dynamic"


class _Builder:
    def __init__(self, assembly: dict[str, Any], package: ProviderPackage) -> None:
        self.types: dict[str, Any] = assembly["types"]
        self.package = package
        self.kind = "resource"  # of the block being built

    def block(self, fqn: str, stack: tuple[str, ...], *, top: bool = False) -> dict[str, Any]:
        """{"attributes": [...], "block_types": [...]} of a config struct and its getters."""
        attributes: list[dict[str, Any]] = []
        blocks: list[dict[str, Any]] = []
        configured: set[str] = set()
        for prop in self.types[fqn].get("properties", []):
            link = _property_link(prop)
            if link is None:
                raise SchemaUnavailableError(
                    f"{self.package.dist}: {fqn}.{prop['name']} has no docs link naming its "
                    "Terraform attribute; update terraform_tools/provider_schema.py"
                )
            name = link.group("anchor")
            configured.add(prop["name"])
            if name in _PROVIDER_META and fqn.endswith("ProviderConfig"):
                continue
            required = not prop.get("optional")
            flags = {"required": True} if required else {"optional": True}
            if top and not required and (name == "id" or self.kind == "data"):
                flags["computed"] = True
            nested = _struct_in(prop["type"], self.types)
            if nested is None:
                attributes.append({"name": name, "type": _cty(prop["type"], self.types), **flags})
                continue
            struct, is_map = nested
            if struct in stack:
                attributes.append({"name": name, "type": "dynamic", **flags})
                continue
            inner = self.block(struct, (*stack, struct))
            inner.update(self.computed(struct, inner["_configured"]))
            is_block = prop.get("docs", {}).get("summary", "").endswith(" block.")
            is_list = "collection" in json.dumps(prop["type"])
            if is_block and not is_map:
                nested_block: dict[str, Any] = {
                    "type_name": name,
                    "block": inner,
                    "nesting": "LIST",
                }
                if not is_list:
                    nested_block["max_items"] = 1
                if required:
                    nested_block["min_items"] = 1
                blocks.append(nested_block)
            else:
                nesting = "MAP" if is_map else "LIST" if is_list else "SINGLE"
                attributes.append({"name": name, "nested": inner, "nesting": nesting, **flags})
        return {"attributes": attributes, "block_types": blocks, "_configured": configured}

    def computed(self, struct_or_class: str, configured: set[str]) -> dict[str, Any]:
        """Read-only getters of a resource class, or of a struct's OutputReference."""
        fqn = struct_or_class
        if self.types.get(fqn, {}).get("kind") != "class":
            fqn = f"{struct_or_class}OutputReference"
        extra: list[dict[str, Any]] = []
        for prop in self.types.get(fqn, {}).get("properties", []):
            name = prop["name"]
            if not prop.get("immutable") or prop.get("static") or name in configured:
                continue
            if name.endswith("Input") and name.removesuffix("Input") in configured:
                continue  # the getter of what the configuration set
            if name in ("internalValue", "fqn", "creationStack"):
                continue
            cty = _cty(prop["type"], self.types)
            extra.append({"name": _snake(name), "type": cty, "computed": True})
        return {"computed": extra}


def _merge(block: dict[str, Any]) -> dict[str, Any]:
    """Fold the computed getters into the attributes (a configured name wins)."""
    names = {a["name"] for a in block["attributes"]} | {
        b["type_name"] for b in block["block_types"]
    }
    computed = [a for a in block.pop("computed", []) if a["name"] not in names]
    block.pop("_configured", None)
    for attribute in block["attributes"]:
        if "nested" in attribute:
            _merge(attribute["nested"])
    for nested in block["block_types"]:
        _merge(nested["block"])
    block["attributes"] = [*block["attributes"], *computed]
    return block


def schema_from_assembly(assembly: dict[str, Any], package: ProviderPackage) -> dict[str, Any]:
    """{"provider": block, "resources": {type: block}, "data_sources": {type: block}}."""
    builder = _Builder(assembly, package)
    provider: dict[str, Any] | None = None
    resources: dict[str, Any] = {}
    data_sources: dict[str, Any] = {}
    for fqn, spec in builder.types.items():
        kind = _BASE_CLASSES.get(spec.get("base", ""))
        if spec.get("kind") != "class" or kind is None:
            continue
        summary = spec.get("docs", {}).get("summary", "")
        label = re.search(
            r"\{@link https://registry\.terraform\.io/\S+ (?P<label>[^}]+)\}", summary
        )
        params = spec.get("initializer", {}).get("parameters", [])
        config = next((p for p in params if p["name"] == "config"), None)
        if label is None or config is None:
            raise SchemaUnavailableError(f"{package.dist}: {fqn} has no registry link or config")
        struct = config["type"]["fqn"]
        builder.kind = kind
        block = builder.block(struct, (struct,), top=kind != "provider")
        if kind == "provider":
            provider = _merge(block)
            continue
        block.update(builder.computed(fqn, block["_configured"]))
        (resources if kind == "resource" else data_sources)[label.group("label").strip()] = _merge(
            block
        )
    if provider is None or not resources:
        raise SchemaUnavailableError(f"{package.dist}: no provider config or no resources found")
    return {"provider": provider, "resources": resources, "data_sources": data_sources}


# ---- tfplugin6 messages ---------------------------------------------------------------------


def _pb_block(block: dict[str, Any]) -> Any:
    from tf.gen import tfplugin_pb2 as pb

    return pb.Schema.Block(
        attributes=[_pb_attribute(a) for a in block["attributes"]],
        block_types=[
            pb.Schema.NestedBlock(
                type_name=b["type_name"],
                block=_pb_block(b["block"]),
                nesting=getattr(pb.Schema.NestedBlock.NestingMode, b["nesting"]),
                min_items=b.get("min_items", 0),
                max_items=b.get("max_items", 0),
            )
            for b in block["block_types"]
        ],
    )


def _pb_attribute(attribute: dict[str, Any]) -> Any:
    from tf.gen import tfplugin_pb2 as pb

    flags = {k: attribute[k] for k in ("required", "optional", "computed") if k in attribute}
    if "nested" in attribute:
        inner = attribute["nested"]
        nested_attributes = [_pb_attribute(a) for a in inner["attributes"]]
        # A nested attribute cannot hold blocks: its blocks become list-of-object attributes.
        for b in inner["block_types"]:
            nested_attributes.append(
                _pb_attribute(
                    {
                        "name": b["type_name"],
                        "nested": b["block"],
                        "nesting": "LIST",
                        "optional": True,
                    }
                )
            )
        return pb.Schema.Attribute(
            name=attribute["name"],
            nested_type=pb.Schema.Object(
                attributes=nested_attributes,
                nesting=getattr(pb.Schema.Object.NestingMode, attribute["nesting"]),
            ),
            **flags,
        )
    return pb.Schema.Attribute(
        name=attribute["name"], type=json.dumps(attribute["type"]).encode(), **flags
    )


def schema_response(schema: dict[str, Any]) -> bytes:
    """A serialized GetProviderSchema.Response for the schema."""
    from tf.gen import tfplugin_pb2 as pb

    def one(block: dict[str, Any]) -> Any:
        return pb.Schema(version=0, block=_pb_block(block))

    response = pb.GetProviderSchema.Response(
        provider=one(schema["provider"]),
        provider_meta=pb.Schema(version=0, block=pb.Schema.Block()),
        resource_schemas={name: one(b) for name, b in schema["resources"].items()},
        data_source_schemas={name: one(b) for name, b in schema["data_sources"].items()},
    )
    return bytes(response.SerializeToString())


def package_for(source: str) -> ProviderPackage:
    for package in PROVIDERS:
        if package.source == source:
            return package
    raise SchemaUnavailableError(f"no pinned schema package for {source}")


def cached_schema_response(package: ProviderPackage, cache_dir: Path) -> bytes:
    """The serialized schema of `package`, built from its wheel on first use."""
    # Keyed on the wheel and on this generator, so an edit here rebuilds the schema.
    stamp = hashlib.sha256(
        package.wheel_sha256.encode() + str(SCHEMA_FORMAT).encode() + Path(__file__).read_bytes()
    ).hexdigest()[:16]
    cached = cache_dir / f"{package.source.replace('/', '-')}-{package.version}-{stamp}.pb"
    if cached.exists():
        return cached.read_bytes()
    wheel = _download_wheel(package, DEFAULT_CACHE_DIR / "wheels")
    data = schema_response(schema_from_assembly(_read_assembly(wheel, package), package))
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(data)
    partial.replace(cached)
    return data
