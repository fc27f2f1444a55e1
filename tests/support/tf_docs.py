"""The Inputs and Outputs tables of the Terraform READMEs, generated from variables.tf/outputs.tf.

terraform-docs' layout (inputs: Name | Description | Type | Default | Required; outputs:
Name | Description), in declaration order, without its anchors and column padding so that rows
stay short enough to read as text. Each module's README.md, the root's included, holds the
tables between `<!-- BEGIN_TF_DOCS -->` and `<!-- END_TF_DOCS -->`; everything outside the
markers is written by hand.

Usage: `python -m tests.support.tf_docs terraform [more directories]` rewrites the tables of
every module under the directories (`make docs`); with `--check` it rewrites nothing and exits
1 listing the READMEs that are out of date (`make lint`). Exit status 2 when a module has no
README.md, a README has no markers, or a .tf file cannot be parsed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lark.exceptions import LarkError

from terraform_tools.schema import display_path
from tests.support.tf_module import (
    NO_DEFAULT,
    Output,
    Variable,
    expression,
    read_outputs,
    read_variables,
)

BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"
SKIPPED_DIRECTORIES = frozenset({".terraform", "build"})


class DocsError(Exception):
    """The tables cannot be generated; the message names the file and what to do."""


def hcl_value(value: Any) -> str:
    """A default as HCL writes it: `"UTC"`, `["a", "b"]`, `{}`, `null`, `true`, `30`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(hcl_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = [f"{k} = {hcl_value(v)}" for k, v in value.items() if not str(k).startswith("__")]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, str):
        return expression(value)
    return str(value)


def code(text: str) -> str:
    """An inline code span for a table cell (`|` escaped, as GitHub's tables need even there)."""
    fence = "``" if "`" in text else "`"
    padding = " " if fence == "``" else ""
    return f"{fence}{padding}{text.replace('|', chr(92) + '|')}{padding}{fence}"


def prose(text: str) -> str:
    """Free text for a table cell: one line, `|` escaped, `<` and `*` outside code spans too
    (GitHub would take `<parameter>` for an HTML tag and drop it)."""
    parts = " ".join(text.split()).split("`")
    for index in range(0, len(parts), 2):  # the even parts are outside code spans
        parts[index] = parts[index].replace("<", "\\<").replace("*", "\\*")
    return "`".join(parts).replace("|", "\\|")


def inputs_table(variables: Iterable[Variable]) -> str:
    rows = [
        "| Name | Description | Type | Default | Required |",
        "| --- | --- | --- | --- | :---: |",
    ]
    for v in variables:
        default = "n/a" if v.default is NO_DEFAULT else code(hcl_value(v.default))
        rows.append(
            f"| {code(v.name)} | {prose(v.description)} | {code(' '.join(v.type.split()))} "
            f"| {default} | {'yes' if v.required else 'no'} |"
        )
    return "\n".join(rows) if len(rows) > 2 else "No inputs."


def outputs_table(outputs: Iterable[Output]) -> str:
    rows = ["| Name | Description |", "| --- | --- |"]
    rows += [f"| {code(o.name)} | {prose(o.description)} |" for o in outputs]
    return "\n".join(rows) if len(rows) > 2 else "No outputs."


def render(module_dir: Path) -> str:
    """What goes between the markers of the module's README."""
    try:
        variables, outputs = read_variables(module_dir), read_outputs(module_dir)
    except (LarkError, RuntimeError) as error:
        raise DocsError(f"{module_dir}: cannot parse its .tf files: {error}") from error
    return (
        "<!-- Generated from variables.tf and outputs.tf by `make docs`; edit those. -->\n\n"
        f"## Inputs\n\n{inputs_table(variables)}\n\n"
        f"## Outputs\n\n{outputs_table(outputs)}\n"
    )


def with_tables(readme: Path, tables: str) -> str:
    """The README's text with `tables` between its markers."""
    if not readme.is_file():
        raise DocsError(
            f"{readme}: no README.md; write one (purpose, usage, cost) with {BEGIN} and {END} "
            "where the tables go"
        )
    text = readme.read_text(encoding="utf-8")
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise DocsError(f"{readme}: needs one {BEGIN} line, then one {END} line")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{tables}{END}{tail}"


def module_dirs(paths: Sequence[Path]) -> list[Path]:
    """Every directory holding .tf files under the paths (each one Terraform module)."""
    found = set()
    for root in paths:
        if not root.is_dir():
            raise DocsError(f"{root}: not a directory")
        for tf in root.rglob("*.tf"):
            if not SKIPPED_DIRECTORIES.intersection(tf.relative_to(root).parts):
                found.add(tf.parent)
    return sorted(found)


def stale_readmes(paths: Sequence[Path], *, write: bool) -> list[Path]:
    """READMEs whose tables are not the generated ones (rewritten first when `write`)."""
    stale = []
    for module_dir in module_dirs(paths):
        readme = module_dir / "README.md"
        expected = with_tables(readme, render(module_dir))
        if readme.read_text(encoding="utf-8") != expected:
            stale.append(readme)
            if write:
                readme.write_text(expected, encoding="utf-8")
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.tf_docs",
        description="Write the Inputs and Outputs tables of every Terraform module's README.md "
        "from its variables.tf and outputs.tf.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="directories of Terraform modules")
    parser.add_argument(
        "--check", action="store_true", help="rewrite nothing; exit 1 if a README is out of date"
    )
    args = parser.parse_args(argv)
    try:
        stale = stale_readmes(args.paths, write=not args.check)
    except DocsError as error:
        print(f"tf_docs: {error}", file=sys.stderr)
        return 2
    for readme in stale:
        print(f"{display_path(readme)}: {'out of date' if args.check else 'rewritten'}")
    if args.check and stale:
        print(f"tf_docs: {len(stale)} README(s) out of date; run `make docs`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
