"""The real-boot suite's shared parts: the guest image, the agent artifacts, the demo model.

``make test`` runs the happy path only; ``make vm-test`` runs every case (``--vm-all``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from local_aws.local_run import cached_model
from local_aws.vm.artifact import build_agent_artifact
from local_aws.vm.host_tools import ensure_host_tools
from local_aws.vm.image import GuestImage, ensure_image
from tests.vm.harness import REPORTS_DIR, build_hanging_artifact


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--vm-all",
        action="store_true",
        default=False,
        help="run every real-boot case (make vm-test), not only the happy path",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--vm-all"):
        return
    skip = pytest.mark.skip(reason="a real-boot failure case: make vm-test runs it")
    for item in items:
        if "vm_matrix" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    """Built once per set of inputs, cached outside the clone."""
    ensure_host_tools()
    return ensure_image(say=print)


@pytest.fixture(scope="session")
def agent_artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("artifacts")
    return {
        "real": build_agent_artifact(directory / "instance-agent.tar.gz"),
        "hanging": build_hanging_artifact(directory / "hanging-agent.tar.gz"),
    }


@pytest.fixture(scope="session")
def vm_model() -> Path:
    """The demo model with 8 MiB of padding, so the copy moves real bytes."""
    return cached_model(REPORTS_DIR / "model-cache", padding_mib=8)
