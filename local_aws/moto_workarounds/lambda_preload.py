"""Imported once by the local Lambda runtime's fork server: what a warm Lambda host has loaded.

The Python runtime and the Powertools layer's libraries are imported here, and botocore's JSON
data files (service models, endpoints, partitions) are read once and kept, so each invocation's
forked process builds its boto3 clients in milliseconds instead of parsing several megabytes of
JSON and deriving the same method names each time. What is created here (a throwaway session
with explicit dummy credentials and region) is never used again: the invocation's own
environment decides its sessions, credentials and endpoints.
"""

from __future__ import annotations

from typing import Final

import aws_lambda_powertools  # preloaded for the invocations
import aws_lambda_powertools.utilities.parser  # noqa: F401 - preloaded for the invocations
import aws_xray_sdk.core  # noqa: F401 - preloaded for the invocations
import boto3  # noqa: F401 - preloaded for the invocations
import botocore.session
import pydantic  # noqa: F401 - preloaded for the invocations

from local_aws import botocore_cache

# The services the project's functions call; others load on first use, as before.
WARM_SERVICES: Final = ("ec2", "stepfunctions", "s3", "logs", "sts")


def warm() -> None:
    botocore_cache.install()
    session = botocore.session.Session()
    loader = session.get_component("data_loader")
    for data in ("endpoints", "partitions", "sdk-default-configuration"):
        loader.load_data(data)
    for service in WARM_SERVICES:
        # Building a client (no call is made) also fills botocore's module-level name caches.
        session.create_client(
            service,
            region_name="us-east-1",
            aws_access_key_id="preload",
            aws_secret_access_key="preload",  # noqa: S106 - a dummy, never sent anywhere
        )


warm()
