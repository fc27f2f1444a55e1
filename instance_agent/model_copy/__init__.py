"""Copy a published model from S3 to local disk as fast as the machine allows, verified.

Each choice was measured with ``python -m bench``, see ``instance_agent/BENCHMARKING.md``. The
package, one job a module:

- ``settings``: how to copy (:class:`CopySettings`), every setting's default and bounds;
- ``plan``: what to copy: the manifest (sizes and a CRC64/NVME per chunk), the streams and part
  size, every file's ranged parts in one shared queue;
- ``engine``: :func:`copy_model`: the workers, each slice checksummed and ``pwrite``-n at its
  offset, retries with backoff, progress, ``.partial`` files renamed into place once verified;
- ``transport``: how the ranged GETs travel (the lean HTTP path on presigned URLs, or the boto3
  client) and what S3's answers mean; :func:`client_config` for the caller's client.

The names below are imported from their module on first use, not with the package: the agent
imports its configuration (which uses ``settings``) at boot, before any copy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from instance_agent.model_copy.engine import (
        CHECKSUM_REREADS,
        CopyCancelled,
        CopyProgress,
        CopyReport,
        copy_model,
    )
    from instance_agent.model_copy.plan import CopyPlan, plan_copy
    from instance_agent.model_copy.settings import (
        DEFAULT_PART_SIZE,
        DEFAULT_SLICE_SIZE,
        MAX_CONCURRENCY,
        MAX_CONCURRENCY_SETTING,
        MAX_SLICE_SIZE,
        MIN_CONCURRENCY,
        MIN_SLICE_SIZE,
        TRANSPORTS,
        CopySettings,
        MiB,
    )
    from instance_agent.model_copy.transport import PRESIGN_SECONDS, client_config

__all__ = [
    "CHECKSUM_REREADS",
    "DEFAULT_PART_SIZE",
    "DEFAULT_SLICE_SIZE",
    "MAX_CONCURRENCY",
    "MAX_CONCURRENCY_SETTING",
    "MAX_SLICE_SIZE",
    "MIN_CONCURRENCY",
    "MIN_SLICE_SIZE",
    "PRESIGN_SECONDS",
    "TRANSPORTS",
    "CopyCancelled",
    "CopyPlan",
    "CopyProgress",
    "CopyReport",
    "CopySettings",
    "MiB",
    "client_config",
    "copy_model",
    "plan_copy",
]

# Where each public name is defined; imported from there on first use.
_HOMES = {
    "CHECKSUM_REREADS": "engine",
    "CopyCancelled": "engine",
    "CopyProgress": "engine",
    "CopyReport": "engine",
    "copy_model": "engine",
    "CopyPlan": "plan",
    "plan_copy": "plan",
    "DEFAULT_PART_SIZE": "settings",
    "DEFAULT_SLICE_SIZE": "settings",
    "MAX_CONCURRENCY": "settings",
    "MAX_CONCURRENCY_SETTING": "settings",
    "MAX_SLICE_SIZE": "settings",
    "MIN_CONCURRENCY": "settings",
    "MIN_SLICE_SIZE": "settings",
    "TRANSPORTS": "settings",
    "CopySettings": "settings",
    "MiB": "settings",
    "PRESIGN_SECONDS": "transport",
    "client_config": "transport",
}


if not TYPE_CHECKING:  # to mypy the names are the imports above, so a typo stays an error

    def __getattr__(name: str) -> object:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
        globals()[name] = value  # found directly from now on
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
