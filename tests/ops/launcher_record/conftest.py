"""The launcher tests' fixtures (moto, network, launch template, workflow, handler), with the
S3 client reset too and a model bucket for the run records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from launcher import clients
from tests.launcher.conftest import (
    REGION,
    ec2,
    env,
    invoke,
    lambda_context,
    launch_template,
    network,
    sfn,
    start_event,
    workflow,
)

__all__ = [
    "aws",
    "ec2",
    "env",
    "invoke",
    "lambda_context",
    "launch_template",
    "network",
    "sfn",
    "start_event",
    "workflow",
]

BUCKET = "scheduled-gpu-model-models"


@pytest.fixture
def aws(env: None) -> Iterator[None]:
    """moto in-process; every lazily created launcher client (S3 included) made anew inside."""
    clients.ec2_client = clients.sfn_client = clients.s3_client = None
    with mock_aws():
        yield
    clients.ec2_client = clients.sfn_client = clients.s3_client = None


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return client
