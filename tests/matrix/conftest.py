"""The failure matrix's local AWS: one emulator per module, a fresh deployment per case."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local_aws.deployment import LocalSettings
from local_aws.local_run import LocalRun, Nets, cached_model
from local_aws.process_machine import DEMO_MODEL_COMMAND, InstanceOptions
from local_aws.server import LocalAws, local_aws_server

MakeRun = Callable[..., LocalRun]


@pytest.fixture(scope="module")
def matrix_aws() -> Iterator[LocalAws]:
    # A short long-poll: an agent killed mid-poll, or a test's end, costs at most a second.
    with local_aws_server(activity_poll_seconds=1) as aws:
        yield aws


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory.mktemp("model-cache"), padding_mib=1)


@pytest.fixture
def make_run(matrix_aws: LocalAws, demo_model: Path, tmp_path: Path) -> Iterator[MakeRun]:
    """Deploys one case (settings, instance knobs, nets) into the emptied emulator."""
    runs: list[LocalRun] = []

    def make(
        *,
        settings: dict[str, Any],
        publish: bool = True,
        nets: Nets | None = None,
        **options: Any,
    ) -> LocalRun:
        options.setdefault("model_command", DEMO_MODEL_COMMAND)
        run = LocalRun(
            matrix_aws,
            settings=LocalSettings(**settings),
            work_dir=tmp_path,
            model_dir=demo_model if publish else None,
            instance_options=InstanceOptions(**options),
            nets=nets,
        )
        runs.append(run)
        return run.__enter__()

    yield make
    try:
        for run in runs:
            run.stop()
    finally:
        # Every case starts from an empty emulator (same names, nothing left over).
        matrix_aws.reset()
