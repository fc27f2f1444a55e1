"""Uploading the model's output, with ``_manifest.json`` written LAST.

A reader that finds the manifest knows every file it lists is complete; a failed upload leaves
no manifest, so a partial result set is never mistaken for a finished one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from instance_agent.errors import ResultsUploadFailed
from run_contract.s3_layout import RESERVED_RESULT_NAMES, RESULTS_MANIFEST

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("instance_agent.results")

_HASH_BLOCK = 8 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class UploadedResults:
    bucket: str
    prefix: str
    manifest_key: str
    files: int
    bytes: int
    seconds: float


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def list_output_files(output_dir: Path) -> list[Path]:
    """Every regular file under the output directory, in a stable order; symlinks are refused."""
    files: list[Path] = []
    for path in sorted(output_dir.rglob("*")):
        if path.is_symlink():
            raise ResultsUploadFailed(
                f"{path} is a symbolic link; the model must write real files to OUTPUT_DIR"
            )
        if path.is_file():
            files.append(path)
    return files


def upload_results(
    s3: S3Client,
    output_dir: Path,
    bucket: str,
    prefix: str,
    *,
    before_manifest: Callable[[int, int], None] | None = None,
) -> UploadedResults:
    """Upload every output file, then the manifest (keys, sizes, SHA-256) as the last object.

    ``before_manifest(files, bytes)`` runs after the files and before the manifest: the agent
    writes run.json there, so the manifest stays the last object of the prefix.
    """
    started = time.monotonic()
    if not output_dir.is_dir():
        raise ResultsUploadFailed(f"the output directory {output_dir} does not exist")
    if prefix and not prefix.endswith("/"):
        raise ResultsUploadFailed(f"results.prefix {prefix!r} must end with '/'")
    manifest_key = prefix + RESULTS_MANIFEST
    entries: list[dict[str, Any]] = []
    for path in list_output_files(output_dir):
        relative = path.relative_to(output_dir).as_posix()
        key = prefix + relative
        if relative in RESERVED_RESULT_NAMES:
            raise ResultsUploadFailed(
                f"the model wrote {relative}, a name reserved for the results manifest and the "
                "run record; rename it"
            )
        size = path.stat().st_size
        checksum = _sha256(path)
        try:
            # upload_file switches to multipart for large files; the digest is ours, computed
            # from the bytes on disk, so the manifest says what the model actually wrote.
            s3.upload_file(str(path), bucket, key)
        except Exception as exc:
            raise ResultsUploadFailed(
                f"uploading {relative} to s3://{bucket}/{key} failed: {exc}; "
                "no results manifest was written"
            ) from exc
        log.info("uploaded %s (%d bytes)", key, size)
        entries.append({"key": key, "size": size, "sha256": checksum})
    total = sum(entry["size"] for entry in entries)
    if before_manifest is not None:
        before_manifest(len(entries), total)
    manifest = {"format_version": 1, "files": entries, "total_bytes": total}
    try:
        s3.put_object(
            Bucket=bucket,
            Key=manifest_key,
            Body=(json.dumps(manifest, indent=1) + "\n").encode(),
            ContentType="application/json",
        )
    except Exception as exc:
        raise ResultsUploadFailed(
            f"writing the results manifest s3://{bucket}/{manifest_key} failed: {exc}"
        ) from exc
    seconds = time.monotonic() - started
    log.info(
        "results: %d file(s), %d bytes, manifest s3://%s/%s",
        len(entries),
        total,
        bucket,
        manifest_key,
    )
    return UploadedResults(bucket, prefix, manifest_key, len(entries), total, seconds)
