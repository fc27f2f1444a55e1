"""pyproject.toml lists every package by name (``[tool.setuptools] packages``), so a new
subpackage left off the list would be missing from the editable install's view of the tree;
the list is pinned to the packages the tree holds."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# Top-level packages live at the root, or under functions/ (mapped by package-dir).
PACKAGE_ROOTS = (ROOT, ROOT / "functions")
NOT_SHIPPED = {"tests"}


def setuptools_table() -> dict[str, Any]:
    table: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(table["tool"]["setuptools"])


def packages_in_the_tree() -> dict[str, Path]:
    """Every directory with an ``__init__.py`` under a top-level package, by dotted name."""
    found: dict[str, Path] = {}
    for root in PACKAGE_ROOTS:
        for top in sorted(p.parent for p in root.glob("*/__init__.py")):
            if top.name in NOT_SHIPPED:
                continue
            for init in sorted(top.rglob("__init__.py")):
                if "__pycache__" in init.parts:
                    continue
                package = init.parent
                dotted = ".".join((top.name, *package.relative_to(top).parts))
                found[dotted] = package
    return found


def test_pyproject_lists_exactly_the_packages_of_the_tree() -> None:
    listed = set(setuptools_table()["packages"])
    in_tree = set(packages_in_the_tree())
    assert listed == in_tree, (
        f"add to [tool.setuptools] packages: {sorted(in_tree - listed)}; "
        f"remove (no such package): {sorted(listed - in_tree)}"
    )


def test_every_package_under_functions_is_mapped_by_package_dir() -> None:
    mapped = setuptools_table()["package-dir"]
    for name, path in packages_in_the_tree().items():
        if "." not in name and path.parent == ROOT / "functions":
            assert mapped.get(name) == f"functions/{name}", name
