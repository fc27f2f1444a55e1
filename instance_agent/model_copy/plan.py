"""What to copy: the model's listing (its manifest), the streams and part size, and the parts.

The manifest (``<prefix>manifest.json``) lists every file with its size and a CRC64/NVME per
chunk. Every file becomes ranged parts of ``part_size`` (a multiple of the chunk size), and all
parts of all files go into one shared queue, so small files never serialise the copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from instance_agent.errors import ModelCopyFailed, ModelNotFound
from instance_agent.manifest import (
    PARTIAL_SUFFIX,
    Manifest,
    ManifestError,
    ManifestFile,
    parse_manifest,
)
from instance_agent.model_copy.settings import (
    DEFAULT_PART_SIZE,
    DEFAULT_SLICE_SIZE,
    MAX_CONCURRENCY,
    MIN_CONCURRENCY,
    CopySettings,
)
from run_contract.s3_layout import MODEL_MANIFEST, NOT_FOUND_CODES

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class CopyPlan:
    """Streams, part (range) size and slice size; the buffers are one slice per stream."""

    part_size: int
    max_concurrency: int
    slice_size: int = DEFAULT_SLICE_SIZE

    @property
    def buffer_bytes(self) -> int:
        return self.slice_size * self.max_concurrency


def plan_copy(
    total_bytes: int, largest_file: int, chunk_size: int, settings: CopySettings
) -> CopyPlan:
    """Choose streams and part size: the settings when given, else from size and CPU count.

    Streams: one per vCPU up to 3 vCPUs, at least 2 (on 2 vCPUs and loopback the copy is
    CPU-bound, and 2 streams beat 3 and 4: every extra thread adds GIL hand-overs); from 4
    vCPUs, 2 per vCPU up to 64 (S3 gives about 100 MB/s per stream, so the network-bound big
    instances need many, and a waiting stream costs no CPU). Part size: 64 MiB, lowered so a
    small model still spreads over every stream; parts are streamed through one slice buffer
    per stream, so part size does not cost memory. Always a multiple of the manifest's chunk
    size.
    """
    concurrency = settings.max_concurrency
    if concurrency is None:
        cpus = os.cpu_count() or 1
        concurrency = min(MAX_CONCURRENCY, max(MIN_CONCURRENCY, cpus if cpus < 4 else 2 * cpus))
    part_size = settings.part_size
    if part_size is None:
        part_size = min(DEFAULT_PART_SIZE, -(-total_bytes // concurrency))
    part_size = max(chunk_size, -(-part_size // chunk_size) * chunk_size)
    # No buffer needs to be bigger than the largest file, rounded up to a whole chunk.
    part_size = min(part_size, max(chunk_size, -(-largest_file // chunk_size) * chunk_size))
    parts = sum(1 for _ in range(0, max(total_bytes, 1), part_size))
    return CopyPlan(
        part_size=part_size,
        max_concurrency=max(1, min(concurrency, parts)),
        slice_size=min(settings.slice_size, part_size),
    )


@dataclass
class FileTask:
    """One file of the model: its S3 key, its ``.partial`` and final paths, parts still to come."""

    entry: ManifestFile
    key: str
    final: Path
    partial: Path
    parts_left: int
    done: bool = False


@dataclass(frozen=True)
class Part:
    """One ranged GET: bytes ``start`` to ``start + length - 1`` of ``file``."""

    file: FileTask
    index: int
    start: int
    length: int


def plan_parts(
    manifest: Manifest, prefix: str, destination: Path, part_size: int
) -> tuple[list[FileTask], list[Part]]:
    """Every file of the manifest under ``destination``, and the parts of all of them in order."""
    root = destination.resolve()
    files = [
        FileTask(
            entry=entry,
            key=prefix + entry.path,
            final=root / entry.path,
            partial=root / (entry.path + PARTIAL_SUFFIX),
            parts_left=-(-entry.size // part_size),
        )
        for entry in manifest.files
    ]
    parts = [
        Part(task, index, start, min(part_size, task.entry.size - start))
        for task in files
        for index, start in enumerate(range(0, task.entry.size, part_size))
    ]
    return files, parts


def read_manifest(s3: S3Client, bucket: str, prefix: str) -> Manifest:
    """The model's manifest, or the agent error that says what to do about it."""
    from botocore.exceptions import BotoCoreError, ClientError  # lazy import

    key = prefix + MODEL_MANIFEST
    url = f"s3://{bucket}/{key}"
    try:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in NOT_FOUND_CODES or code == "NoSuchBucket":
            raise ModelNotFound(
                f"{url} does not exist ({code}): publish the model to that prefix first "
                "(`python -m instance_agent publish`), or fix model.prefix"
            ) from None
        raise ModelCopyFailed(f"cannot read {url}: {error}") from error
    except BotoCoreError as error:
        raise ModelCopyFailed(f"cannot read {url}: {error}") from error
    try:
        return parse_manifest(data, url)
    except ManifestError as error:
        raise ModelCopyFailed(f"invalid model manifest: {error}") from None
