"""Publish a local model directory to S3 with its manifest, the manifest last.

The platform team updates the model this way without touching any instance: every file is
checksummed (CRC64/NVME per chunk) and uploaded under the prefix, then ``manifest.json`` is
written. A reader that finds the manifest therefore finds every file it lists; a publish that
dies halfway leaves the previous manifest (or none), never a manifest naming missing files.
Publishing the same directory again to the same prefix is harmless and gives the same
``model_version``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from instance_agent.checksums import file_chunk_checksums
from instance_agent.config import MODEL_ENTRY_POINT
from instance_agent.manifest import (
    DEFAULT_CHUNK_SIZE,
    Manifest,
    ManifestError,
    ManifestFile,
    build_manifest,
    validate_relative_path,
)
from run_contract.s3_layout import MODEL_MANIFEST, NOT_FOUND_CODES

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

UPLOAD_PART_SIZE = 64 * 1024 * 1024
UPLOAD_CONCURRENCY = 8

PublishProgress: TypeAlias = Callable[[str, int, int], None]
"""``progress(stage, n, total)``: ``n`` more bytes of ``total`` done in ``checksum``/``upload``."""


class PublishError(ValueError):
    """The directory cannot be published as it is; the message says what to change."""


def model_files(source_dir: Path) -> list[tuple[str, Path]]:
    """Every regular file under ``source_dir`` as (relative POSIX path, real path), sorted.

    Nothing is skipped silently: a symlink to a file is followed only when it stays inside the
    directory; a symlink to a directory, a broken link, or anything that is neither a file nor a
    directory (socket, device, FIFO) is refused with an error saying what to change.
    """
    if not source_dir.exists():
        raise PublishError(f"model directory {source_dir} does not exist")
    if not source_dir.is_dir():
        raise PublishError(f"model directory {source_dir} is not a directory")
    root = source_dir.resolve()
    found: list[tuple[str, Path]] = []

    def unreadable(error: OSError) -> None:
        raise PublishError(f"cannot read {error.filename}: {error.strerror}") from error

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        here = Path(dirpath)
        for name in dirnames:
            if (here / name).is_symlink():
                # Followed directory links can loop or duplicate the model; refuse them.
                raise PublishError(
                    f"{here / name} is a symlink to a directory: replace it with the directory"
                )
        for name in filenames:
            path = here / name
            real = _inside(root, path) if path.is_symlink() else path
            if not real.is_file():
                raise PublishError(
                    f"{path} is not a regular file (socket, device or FIFO): remove it from "
                    "the model directory"
                )
            found.append((path.relative_to(root).as_posix(), real))
    if not found:
        raise PublishError(f"model directory {source_dir} has no files: nothing to publish")
    return sorted(found)


def _inside(root: Path, path: Path) -> Path:
    try:
        real = path.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        raise PublishError(f"{path} is a broken or looping symlink: fix or remove it") from None
    if real != root and root not in real.parents:
        raise PublishError(
            f"{path} links to {real}, outside the model directory {root}: copy the file in "
            "instead of linking it"
        )
    return real


def check_entry_point(files: list[tuple[str, Path]], source_dir: Path) -> None:
    """The model's own entry point, ``run.sh`` at its top, what the agent runs by default."""
    if any(relative == MODEL_ENTRY_POINT for relative, _path in files):
        return
    raise PublishError(
        f"{source_dir} has no {MODEL_ENTRY_POINT} at its top: the agent runs "
        f"`/bin/sh $MODEL_DIR/{MODEL_ENTRY_POINT}` when no model command is set, so this model "
        f"could not start. Add a {MODEL_ENTRY_POINT} (see examples/model/), or, if the stack "
        "sets model_command, model_shell_command or a container image that runs it, publish "
        "with --no-entry-point"
    )


def build_model_manifest(
    source_dir: Path,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: PublishProgress | None = None,
) -> tuple[Manifest, list[tuple[str, Path]]]:
    """Checksum every file of ``source_dir``; the manifest and its files in manifest order."""
    files = model_files(source_dir)
    total = sum(path.stat().st_size for _relative, path in files)
    on_bytes = None if progress is None else (lambda n: progress("checksum", n, total))
    entries = []
    for relative, path in files:
        try:
            validate_relative_path(relative, f"file {path}")
        except ManifestError as error:
            raise PublishError(str(error)) from None
        entries.append(
            ManifestFile(
                path=relative,
                size=path.stat().st_size,
                checksums=tuple(file_chunk_checksums(path, chunk_size, on_bytes)),
            )
        )
    try:
        manifest = build_manifest(entries, chunk_size)
    except ManifestError as error:
        raise PublishError(str(error)) from None
    for entry, (_relative, path) in zip(manifest.files, files, strict=True):
        if path.stat().st_size != entry.size:
            raise PublishError(f"{path} changed while it was being checksummed: publish again")
    return manifest, files


def publish_model(
    s3: S3Client,
    source_dir: Path,
    bucket: str,
    prefix: str,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: PublishProgress | None = None,
    require_entry_point: bool = False,
) -> Manifest:
    """Upload every file of ``source_dir`` under ``s3://bucket/prefix``, then its manifest.

    ``progress(stage, n, total)`` reports ``n`` more bytes of ``total`` done in the stage
    (``checksum``, then ``upload``); upload calls come from the transfer's threads.
    ``require_entry_point``: refuse a directory without ``run.sh`` before anything is uploaded.
    """
    if not bucket:
        raise PublishError("bucket is empty: give the model bucket's name")
    if prefix and not prefix.endswith("/"):
        raise PublishError(f"prefix {prefix!r} must end with '/' (e.g. models/current/)")
    if require_entry_point:
        check_entry_point(model_files(source_dir), source_dir)
    manifest, files = build_model_manifest(source_dir, chunk_size, progress)
    _withdraw_other_manifest(s3, bucket, prefix + MODEL_MANIFEST, manifest.to_json())
    _upload_files(s3, bucket, prefix, files, total=manifest.total_bytes, progress=progress)
    # Last: only now does the model exist for a reader.
    s3.put_object(
        Bucket=bucket,
        Key=prefix + MODEL_MANIFEST,
        Body=manifest.to_json(),
        ContentType="application/json",
    )
    logger.info(
        "published %s to s3://%s/%s: %d files, %d bytes",
        manifest.model_version,
        bucket,
        prefix,
        len(manifest.files),
        manifest.total_bytes,
    )
    return manifest


def _withdraw_other_manifest(s3: S3Client, bucket: str, key: str, new: bytes) -> None:
    """Delete a different manifest already at the prefix before overwriting its files.

    Otherwise, while the new files upload, a reader would find the old manifest next to a mix of
    old and new files. Without a manifest the prefix reads as "not published" until we finish.
    """
    from botocore.exceptions import ClientError  # lazy import

    try:
        old = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in NOT_FOUND_CODES:
            return
        raise
    if old != new:
        logger.info(
            "replacing the model at s3://%s/%s: its old manifest is withdrawn first", bucket, key
        )
        s3.delete_object(Bucket=bucket, Key=key)


def _upload_files(
    s3: S3Client,
    bucket: str,
    prefix: str,
    files: list[tuple[str, Path]],
    *,
    total: int,
    progress: PublishProgress | None,
) -> None:
    from boto3.s3.transfer import S3Transfer, TransferConfig  # lazy: only publish needs it

    config = TransferConfig(
        multipart_threshold=UPLOAD_PART_SIZE,
        multipart_chunksize=UPLOAD_PART_SIZE,
        max_concurrency=UPLOAD_CONCURRENCY,
    )
    transfer = S3Transfer(client=s3, config=config)  # type: ignore[arg-type]
    on_bytes = None if progress is None else (lambda n: progress("upload", n, total))
    for relative, path in files:
        transfer.upload_file(str(path), bucket, prefix + relative, callback=on_bytes)
