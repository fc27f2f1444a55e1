"""The real services behind the phases: boto3 clients, IMDS, the disks, the copy engine.

Imported by ``run``, after the configuration is valid: this is where boto3 comes in. The phases'
modules are imported where they are used, so that the benchmark (``bench.client_main``) builds
its S3 client with :func:`make_s3_client` without importing the rest of the agent.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from instance_agent.agent import CopyFunction, CopyReportLike, Services
    from instance_agent.config import AgentConfig, CopySettingsConfig
    from instance_agent.model_copy import CopyProgress

log = logging.getLogger("instance_agent.copy")


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def log_copy_progress(progress: CopyProgress) -> None:
    percent = 100.0 * progress.bytes_done / progress.bytes_total if progress.bytes_total else 100.0
    log.info(
        "copy progress: %d/%d bytes (%.1f%%) %.1f MB/s ETA %s",
        progress.bytes_done,
        progress.bytes_total,
        percent,
        progress.mb_per_s,
        format_eta(progress.eta_seconds),
    )


def make_s3_client(
    region: str,
    endpoint_url: str | None,
    max_concurrency: int | None = None,
    *,
    addressing_style: Literal["virtual", "path"] | None = None,
) -> S3Client:
    """The copy's S3 client: the engine's ``client_config`` (SigV4 presigning, standard
    retries) with one pooled connection per stream (``max_concurrency``, or the most the engine
    chooses), so no part opens a connection of its own.

    ``addressing_style`` None: virtual-hosted on AWS (botocore then presigns on the bucket's own
    region endpoint, so the copy's lean HTTP path works outside us-east-1 too) and botocore's
    choice on a custom endpoint such as the local AWS; the benchmark's nginx wants ``path``.
    """
    import boto3
    from botocore.config import Config

    from instance_agent.model_copy import MAX_CONCURRENCY, client_config

    client_settings = client_config(max_concurrency or MAX_CONCURRENCY)
    style = addressing_style or ("virtual" if endpoint_url is None else None)
    if style is not None:
        client_settings = client_settings.merge(Config(s3={"addressing_style": style}))
    return boto3.client("s3", region_name=region, endpoint_url=endpoint_url, config=client_settings)


def copy_function(settings: CopySettingsConfig) -> CopyFunction:
    from instance_agent.model_copy import copy_model

    copy_settings = settings.engine_settings()

    def copy(
        s3: Any,
        bucket: str,
        prefix: str,
        destination: Path,
        *,
        cancel: threading.Event | None = None,
    ) -> CopyReportLike:
        return copy_model(
            s3,
            bucket,
            prefix,
            destination,
            settings=copy_settings,
            progress=log_copy_progress,
            cancel=cancel,
        )

    return copy


def default_services(config: AgentConfig, shutdown: Callable[[str], None]) -> Services:
    from instance_agent.activity import make_sfn_client
    from instance_agent.agent import Services
    from instance_agent.imds import fetch_identity
    from instance_agent.storage import prepare_storage

    return Services(
        sfn=make_sfn_client(config.region, config.endpoint_url),
        s3=make_s3_client(config.region, config.endpoint_url, config.copy.max_concurrency),
        identity=functools.partial(
            fetch_identity, config.imds_endpoint, config.imds_timeout_seconds
        ),
        prepare_storage=prepare_storage,
        copy_model=copy_function(config.copy),
        shutdown=shutdown,
        make_heartbeat_sfn=functools.partial(
            make_sfn_client, config.region, config.endpoint_url, total_max_attempts=1
        ),
    )
