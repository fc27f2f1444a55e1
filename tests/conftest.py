"""Fixtures shared across the suite: the local AWS and the one harness that deploys into it.

Every test that needs the deployed stack gets it from ``make_run`` (``local_aws.local_run``'s
``LocalRun``: deploy what Terraform declares, publish the model, supervise the instances, stand
in for the nets); none deploys its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local_aws import botocore_cache
from local_aws.deployment import LocalSettings
from local_aws.local_run import LocalRun, Nets, cached_model
from local_aws.machines import MachineBackend
from local_aws.process_machine import DEMO_MODEL_COMMAND, InstanceOptions, ProcessBackend
from local_aws.server import LocalAws, local_aws_server
from tests.support.workflow import WeeklyRun, deploy_weekly_run

MakeRun = Callable[..., LocalRun]

# Most tests build fresh boto3 clients: parse botocore's JSON models once per process, not per
# client (about 0.8 s per EC2 client otherwise).
botocore_cache.install()


# Module scope: starting and stopping moto's server costs about a second, resetting it
# milliseconds; and the server changes process-wide moto settings while it runs, which the
# in-process mock_aws tests of other modules must not inherit.
@pytest.fixture(scope="module")
def local_aws_server_for_module() -> Iterator[LocalAws]:
    # A one-second long poll: an agent killed mid-poll, or a test's end, costs at most a second.
    with local_aws_server(activity_poll_seconds=1) as aws:
        yield aws


@pytest.fixture
def local_aws(local_aws_server_for_module: LocalAws) -> Iterator[LocalAws]:
    """The module's local AWS, emptied after the test."""
    yield local_aws_server_for_module
    local_aws_server_for_module.reset()


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded demo model (with 1 MiB of padding), trained once per session."""
    return cached_model(tmp_path_factory.mktemp("model-cache"), padding_mib=1)


def start_local_run(
    aws: LocalAws,
    *,
    work_dir: Path,
    model_dir: Path | None,
    settings: LocalSettings | dict[str, Any] | None = None,
    nets: Nets | None = None,
    backend: MachineBackend | None = None,
    **options: Any,
) -> LocalRun:
    """A started LocalRun; ``options`` are the process backend's InstanceOptions, plus
    ``agent_command`` (the process backend's, e.g. the built artifact on another Python)."""
    if isinstance(settings, dict):
        settings = LocalSettings(**settings)
    agent_command = options.pop("agent_command", None)
    if backend is None and agent_command is not None:
        options.setdefault("model_command", DEMO_MODEL_COMMAND)
        backend = ProcessBackend(InstanceOptions(**options), agent_command=agent_command)
        options = {}
    if backend is None:
        options.setdefault("model_command", DEMO_MODEL_COMMAND)
        backend_options: InstanceOptions | None = InstanceOptions(**options)
    elif options:
        raise TypeError(f"instance options {sorted(options)} apply to the process backend only")
    else:
        backend_options = None
    run = LocalRun(
        aws,
        settings=settings or LocalSettings(),
        work_dir=work_dir,
        model_dir=model_dir,
        instance_options=backend_options,
        backend=backend,
        nets=nets,
    )
    return run.__enter__()


@pytest.fixture
def make_run(local_aws: LocalAws, demo_model: Path, tmp_path: Path) -> Iterator[MakeRun]:
    """Deploys one case (settings, nets, instance knobs or a backend) into the local AWS."""
    runs: list[LocalRun] = []

    def make(*, publish: bool = True, **kwargs: Any) -> LocalRun:
        run = start_local_run(
            local_aws, work_dir=tmp_path, model_dir=demo_model if publish else None, **kwargs
        )
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.stop()


@pytest.fixture
def weekly_run(make_run: MakeRun) -> Iterator[WeeklyRun]:
    """The deployed workflow with idle instances and no nets: the test plays the agent."""
    run = deploy_weekly_run(make_run)
    yield run
    run.stop_agents()
