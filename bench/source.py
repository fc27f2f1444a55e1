"""The object the clients download: random bytes under the served directory, its checksum, the
agent's manifest next to it, and the byte check every client's copy must pass before timing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from awscrt import checksums

BUFFER_BYTES = 16 * 1024 * 1024
_SIDECAR_SUFFIX = ".bench.json"


class CopyMismatchError(RuntimeError):
    """A client's copy is missing or differs from the source object."""


@dataclass(frozen=True)
class SourceObject:
    """The served object: ``<serve_root>/<bucket>/<prefix><name>``."""

    serve_root: Path
    bucket: str
    prefix: str
    name: str
    size: int
    crc64nvme: str

    @property
    def key(self) -> str:
        return f"{self.prefix}{self.name}"

    @property
    def path(self) -> Path:
        return self.serve_root / self.bucket / self.key


def file_crc64nvme(path: Path) -> str:
    """CRC64/NVME of a whole file (awscrt's hardware-accelerated code, one reused buffer)."""
    crc = 0
    buffer = bytearray(BUFFER_BYTES)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            crc = checksums.crc64nvme(view[:n], crc)
    return f"{crc:016x}"


def write_random_file(path: Path, size: int) -> str:
    """Fill ``path`` with ``size`` random bytes (incompressible); returns their CRC64/NVME."""
    path.parent.mkdir(parents=True, exist_ok=True)
    crc = 0
    remaining = size
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        while remaining:
            block = os.urandom(min(BUFFER_BYTES, remaining))
            crc = checksums.crc64nvme(block, crc)
            handle.write(block)
            remaining -= len(block)
    partial.replace(path)
    return f"{crc:016x}"


def prepare_source(
    serve_root: Path, *, size: int, bucket: str, prefix: str, name: str
) -> SourceObject:
    """The source object, reused from an earlier run when its size and checksum still match."""
    source = SourceObject(serve_root, bucket, prefix, name, size, crc64nvme="")
    sidecar = serve_root / f"{bucket}{_SIDECAR_SUFFIX}"
    path = source.path
    if path.exists() and sidecar.exists() and path.stat().st_size == size:
        recorded = json.loads(sidecar.read_text())
        if recorded.get("size") == size and recorded.get("key") == source.key:
            crc = file_crc64nvme(path)  # also pulls the file into the page cache
            if crc == recorded.get("crc64nvme"):
                return SourceObject(serve_root, bucket, prefix, name, size, crc)
    crc = write_random_file(path, size)
    sidecar.write_text(json.dumps({"key": source.key, "size": size, "crc64nvme": crc}) + "\n")
    return SourceObject(serve_root, bucket, prefix, name, size, crc)


def warm_page_cache(path: Path) -> None:
    """Read ``path`` once so the served object comes from memory (the network side we emulate)."""
    buffer = bytearray(BUFFER_BYTES)
    with open(path, "rb", buffering=0) as handle:
        while handle.readinto(buffer):
            pass


def write_agent_manifest(source: SourceObject) -> Path:
    """Write ``<prefix>manifest.json`` with the agent's own ``publish`` code (same bytes as S3).

    Raises ImportError when the agent's publish module is not in this checkout.
    """
    from instance_agent.publish import build_model_manifest
    from run_contract.s3_layout import MODEL_MANIFEST

    directory = source.serve_root / source.bucket / source.prefix
    path = directory / MODEL_MANIFEST
    path.unlink(missing_ok=True)  # publish checksums every file of the directory but this one
    manifest, files = build_model_manifest(directory)
    if [relative for relative, _path in files] != [source.name]:
        raise CopyMismatchError(
            f"{directory} must hold only {source.name}, found {[r for r, _p in files]}: "
            "remove the other files or use a fresh --work-dir"
        )
    path.write_bytes(manifest.to_json())
    return path


def verify_copy(client: str, path: Path, *, size: int, crc64nvme: str | None) -> None:
    """Refuse a copy whose size differs or (with ``crc64nvme``) whose bytes differ."""
    if not path.is_file():
        raise CopyMismatchError(f"{client}: produced no file at {path}")
    actual_size = path.stat().st_size
    if actual_size != size:
        raise CopyMismatchError(
            f"{client}: {path} has {actual_size} bytes, the source has {size}: the client "
            "did not download the whole object"
        )
    if crc64nvme is not None:
        actual = file_crc64nvme(path)
        if actual != crc64nvme:
            raise CopyMismatchError(
                f"{client}: {path} has CRC64/NVME {actual}, the source has {crc64nvme}: the "
                "client wrote wrong bytes"
            )
