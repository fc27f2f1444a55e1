"""botocore's JSON data files (service models, endpoints, partitions), read once per process.

Every boto3 session has its own loader, so every new session parses the same megabytes of JSON
again (EC2's model alone: about 0.4 s). What a path holds does not depend on the loader, and
botocore treats what it loads as read-only (its own per-loader cache shares it the same way), so
one process-wide cache keyed by path is safe. Used by the local Lambda runtime's fork server and
by the test suite, whose tests each build fresh clients; never by the agent or the functions.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import botocore.loaders

_ORIGINAL_LOAD_FILE: Final = botocore.loaders.JSONFileLoader.load_file
_FILE_LOADER: Final = botocore.loaders.JSONFileLoader()


@functools.lru_cache(maxsize=256)
def _load_file_once(file_path: str) -> Any:
    return _ORIGINAL_LOAD_FILE(_FILE_LOADER, file_path)


def _cached_load_file(self: Any, file_path: str) -> Any:
    return _load_file_once(file_path)


def install() -> None:
    """Route every JSONFileLoader through the cache (idempotent)."""
    botocore.loaders.JSONFileLoader.load_file = _cached_load_file  # type: ignore[method-assign]
