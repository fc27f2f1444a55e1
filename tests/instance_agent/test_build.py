"""The artifact build's offline parts: pins read from requirements.txt, a reproducible tarball."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from instance_agent.build import BuildError, pins, write_tarball


def test_pins_come_from_requirements_with_extras_and_comments(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# runtime\nboto3==1.43.11\nmoto[server]==5.2.5  # tests\n")
    assert pins(requirements, ["boto3", "moto"]) == ["boto3==1.43.11", "moto==5.2.5"]


def test_a_package_without_an_exact_pin_is_named(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("boto3>=1.40\n")
    with pytest.raises(BuildError, match=r"no exact pin .* for boto3"):
        pins(requirements, ["boto3"])


def test_the_repository_pins_every_vendored_package() -> None:
    requirements = Path(__file__).resolve().parents[2] / "requirements.txt"
    assert len(pins(requirements, ["boto3", "botocore", "awscrt"])) == 3


def test_the_tarball_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "site" / "instance_agent").mkdir(parents=True)
    (root / "site" / "instance_agent" / "cli.py").write_text("print('x')\n")
    write_tarball(root, tmp_path / "a.tar.gz")
    (root / "site" / "instance_agent" / "cli.py").touch()  # a new mtime must not matter
    write_tarball(root, tmp_path / "b.tar.gz")
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()


def test_the_artifact_carries_the_agent_and_the_contract_it_shares_with_the_launcher(
    tmp_path: Path,
) -> None:
    from instance_agent.build import CONTRACT, PACKAGE, copy_agent

    copy_agent(tmp_path)

    copied = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    expected_agent = {
        f"instance_agent/{p.relative_to(PACKAGE).as_posix()}"
        for p in PACKAGE.rglob("*.py")
        if "__pycache__" not in p.parts
    }
    expected_contract = {
        f"run_contract/{p.relative_to(CONTRACT).as_posix()}"
        for p in CONTRACT.rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert "run_contract/run_record.py" in expected_contract
    assert copied == expected_agent | expected_contract | {"instance_agent/README.md"}


def test_the_artifact_carries_the_model_copy_package_and_imports_it_from_site(
    tmp_path: Path,
) -> None:
    from instance_agent.build import copy_agent

    copy_agent(tmp_path)

    package = tmp_path / "instance_agent" / "model_copy"
    modules = {p.name for p in package.glob("*.py")}
    assert {"__init__.py", "settings.py", "plan.py", "engine.py", "transport.py"} <= modules
    # No site-packages (-S) and no checkout on the path (-I): only what the artifact carries.
    probe = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); "
        "from instance_agent.model_copy import copy_model, client_config, CopySettings; "
        "import instance_agent.model_copy as m; print(m.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(package / "__init__.py")
