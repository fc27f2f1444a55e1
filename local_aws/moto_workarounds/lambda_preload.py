"""Imported once by the local Lambda runtime's fork server: what a warm Lambda host has loaded.

The Python runtime and the Powertools layer's libraries are imported here, and botocore's JSON
data files (service models, endpoints, partitions) are read once and kept, so each invocation's
forked process builds its boto3 clients in milliseconds instead of parsing several megabytes of
JSON and deriving the same method names each time. What is created here (a throwaway session
with explicit dummy credentials and region) is never used again: the invocation's own
environment decides its sessions, credentials and endpoints.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import aws_lambda_powertools  # preloaded for the invocations
import aws_lambda_powertools.utilities.parser  # noqa: F401 - preloaded for the invocations
import aws_xray_sdk.core  # noqa: F401 - preloaded for the invocations
import boto3  # noqa: F401 - preloaded for the invocations
import botocore.loaders
import botocore.session
import pydantic  # noqa: F401 - preloaded for the invocations

# The services the project's functions call; others load on first use, as before.
WARM_SERVICES: Final = ("ec2", "stepfunctions", "s3", "logs", "sts")

_original_load_file = botocore.loaders.JSONFileLoader.load_file


_FILE_LOADER: Final = botocore.loaders.JSONFileLoader()


@functools.lru_cache(maxsize=256)
def _load_file_once(file_path: str) -> Any:
    return _original_load_file(_FILE_LOADER, file_path)


def _cached_load_file(self: Any, file_path: str) -> Any:
    # What a path holds does not depend on the loader instance (each session has its own), and
    # botocore treats what it loads as read-only (its own instance cache shares it too).
    return _load_file_once(file_path)


def warm() -> None:
    botocore.loaders.JSONFileLoader.load_file = _cached_load_file  # type: ignore[method-assign]
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
