"""Fixtures of the local AWS machinery: one emulator per session, emptied after every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_aws.server import LocalAws, local_aws_server


# Package scope: the server changes process-wide moto settings while it runs, which the
# in-process mock_aws tests of other packages must not inherit.
@pytest.fixture(scope="package")
def _local_aws_session() -> Iterator[LocalAws]:
    # Starting and stopping moto's server costs about a second; resetting it costs milliseconds.
    with local_aws_server(activity_poll_seconds=1) as aws:
        yield aws


@pytest.fixture
def local_aws(_local_aws_session: LocalAws) -> Iterator[LocalAws]:
    yield _local_aws_session
    _local_aws_session.reset()
