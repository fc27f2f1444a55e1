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


def test_importing_the_package_imports_none_of_its_modules() -> None:
    probe = (
        "import sys, instance_agent.model_copy; "
        "print(sorted(m for m in sys.modules if m.startswith('instance_agent.model_copy.')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_copy_entry_points_import_no_aws_sdk() -> None:
    probe = (
        "import sys; from instance_agent.model_copy import copy_model, client_config; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', 'awscrt'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
