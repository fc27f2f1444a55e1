"""The model_copy package: its public names, each imported from its module on first use, so
importing the package (as the configuration does at boot) costs none of the engine."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from instance_agent import model_copy


def test_every_public_name_is_the_object_its_module_defines() -> None:
    homes = model_copy._HOMES
    assert sorted(homes) == sorted(model_copy.__all__)
    for name, home in homes.items():
        module = importlib.import_module(f"instance_agent.model_copy.{home}")
        assert getattr(model_copy, name) is getattr(module, name), name


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'copy_models'"):
        _ = model_copy.copy_models  # type: ignore[attr-defined]


def imported_after(statement: str) -> set[str]:
    """The modules a fresh interpreter has imported once it ran ``statement``."""
    probe = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_importing_the_package_imports_none_of_its_modules() -> None:
    modules = imported_after("import instance_agent.model_copy")
    assert "instance_agent.model_copy" in modules
    assert not {m for m in modules if m.startswith("instance_agent.model_copy.")}


def test_the_copy_entry_points_import_no_aws_sdk() -> None:
    modules = imported_after("from instance_agent.model_copy import copy_model, client_config")
    assert "instance_agent.model_copy.engine" in modules
    assert not {m.split(".")[0] for m in modules} & {"boto3", "botocore", "awscrt"}
