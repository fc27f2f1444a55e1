"""boto3 clients, created on first use and kept as module attributes.

Tests (and the local AWS) replace ``ec2_client`` / ``sfn_client`` or reset them to None after
changing the environment; boto3 itself honours AWS_ENDPOINT_URL and the region variables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient

# Standard retry mode backs off on throttling; whatever is left after it becomes
# LauncherTransientError, which the workflow retries on a longer scale.
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=20
)

ec2_client: EC2Client | None = None
poll_sfn_client: SFNClient | None = None
sfn_client: SFNClient | None = None
s3_client: S3Client | None = None


def ec2() -> EC2Client:
    """The EC2 client, created on first use."""
    global ec2_client  # noqa: PLW0603 - a lazily created module attribute, swappable in tests
    if ec2_client is None:
        ec2_client = boto3.client("ec2", config=_CONFIG)
    return ec2_client


def stepfunctions() -> SFNClient:
    """The Step Functions client, created on first use."""
    global sfn_client  # noqa: PLW0603 - a lazily created module attribute, swappable in tests
    if sfn_client is None:
        sfn_client = boto3.client("stepfunctions", config=_CONFIG)
    return sfn_client


def s3() -> S3Client:
    """The S3 client for run records: ``s3_client`` if set (tests), else a new one per call.

    Not cached: stop runs once per run, so a fresh client costs nothing that matters, and it
    always follows the current environment (the local AWS changes AWS_ENDPOINT_URL between
    deployments in one process).
    """
    if s3_client is not None:
        return s3_client
    return boto3.client("s3", config=_CONFIG)


def activity_poller() -> SFNClient:
    """A Step Functions client for GetActivityTask, whose long poll outlasts the default read
    timeout; one attempt, so a timed-out poll is never retried into a second task."""
    global poll_sfn_client  # noqa: PLW0603 - a lazily created module attribute, swappable in tests
    if poll_sfn_client is None:
        from launcher.lost_instances import POLL_CLIENT_CONFIG

        poll_sfn_client = boto3.client("stepfunctions", config=POLL_CLIENT_CONFIG)
    return poll_sfn_client
