"""The model manifest: ``<prefix>manifest.json``, written last by ``publish``.

It lists every file of the model with its size and one checksum per ``chunk_size`` chunk, so the
copy verifies each part the moment it arrives (in parallel, while the bytes are in cache) and can
name the exact file and byte range that differs. ``model_version`` is a digest of everything else
in the manifest: two publishes of the same bytes have the same version.

Example::

    {"format_version": 1, "algorithm": "crc64nvme", "chunk_size": 8388608,
     "files": [{"path": "weights/model.safetensors", "size": 10485760,
                "checksums": ["0c3a...", "91fe..."]}],
     "model_version": "sha256:5d1f..."}

A manifest read from S3 is validated strictly: an unknown or missing key, a wrong type, a size
that does not match the number of checksums, or a path that could escape the destination
directory is refused with an error naming the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from instance_agent.checksums import ALGORITHM, HEX_DIGITS, chunk_count
from run_contract.s3_layout import MODEL_MANIFEST

FORMAT_VERSION = 1
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
MIN_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 1024 * 1024 * 1024
# Suffix of files being copied; a model file may not end with it or the two would collide.
PARTIAL_SUFFIX = ".partial"

_CHECKSUM = re.compile(rf"[0-9a-f]{{{HEX_DIGITS}}}")
_TOP_KEYS = ("format_version", "algorithm", "chunk_size", "files", "model_version")
_FILE_KEYS = ("path", "size", "checksums")


class ManifestError(ValueError):
    """A manifest that cannot be trusted; the message names the field and what to do."""


@dataclass(frozen=True)
class ManifestFile:
    """One model file: its path relative to the model root, its size, its chunk checksums."""

    path: str
    size: int
    checksums: tuple[str, ...]


@dataclass(frozen=True)
class Manifest:
    """The whole model: how it was checksummed, its files, and its version digest."""

    chunk_size: int
    files: tuple[ManifestFile, ...]
    algorithm: str = ALGORITHM
    format_version: int = FORMAT_VERSION

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def model_version(self) -> str:
        return "sha256:" + hashlib.sha256(_canonical(self._content())).hexdigest()

    def _content(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "algorithm": self.algorithm,
            "chunk_size": self.chunk_size,
            "files": [
                {"path": f.path, "size": f.size, "checksums": list(f.checksums)} for f in self.files
            ],
        }

    def to_json(self) -> bytes:
        """The bytes ``publish`` writes to S3 (readable, stable key order)."""
        document = {**self._content(), "model_version": self.model_version}
        return (json.dumps(document, indent=1) + "\n").encode()


def _canonical(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def build_manifest(files: list[ManifestFile], chunk_size: int) -> Manifest:
    """A validated manifest from files already checksummed (sorted by path for a stable version)."""
    manifest = Manifest(chunk_size=chunk_size, files=tuple(sorted(files, key=lambda f: f.path)))
    _validate_chunk_size(chunk_size, "chunk_size")
    _validate_files(manifest.files, chunk_size, lambda i, f: f"files[{i}] ({f.path!r})")
    return manifest


def parse_manifest(data: bytes, source: str) -> Manifest:
    """Parse and validate a manifest; ``source`` (e.g. the S3 URL) is named in every error."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(
            f"{source}: not valid JSON ({error}); re-publish the model with `publish`"
        ) from None
    top = _object(document, _TOP_KEYS, source, "the manifest")
    version = top["format_version"]
    if not _is_int(version) or version != FORMAT_VERSION:
        raise ManifestError(
            f"{source}: format_version is {version!r}, this agent reads {FORMAT_VERSION}; "
            "re-publish the model with this agent's `publish`"
        )
    if top["algorithm"] != ALGORITHM:
        raise ManifestError(
            f"{source}: algorithm is {top['algorithm']!r}, expected {ALGORITHM!r}; "
            "re-publish the model with this agent's `publish`"
        )
    chunk_size = top["chunk_size"]
    _validate_chunk_size(chunk_size, f"{source}: chunk_size")
    raw_files = top["files"]
    if not isinstance(raw_files, list):
        raise ManifestError(f"{source}: files must be a list, got {type(raw_files).__name__}")
    files = []
    for index, raw in enumerate(raw_files):
        entry = _object(raw, _FILE_KEYS, source, f"files[{index}]")
        checksums = entry["checksums"]
        if not isinstance(checksums, list) or not all(isinstance(c, str) for c in checksums):
            raise ManifestError(f"{source}: files[{index}].checksums must be a list of strings")
        files.append(ManifestFile(entry["path"], entry["size"], tuple(checksums)))
    manifest = Manifest(chunk_size=chunk_size, files=tuple(files))
    _validate_files(manifest.files, chunk_size, lambda i, _f: f"{source}: files[{i}]")
    if not isinstance(top["model_version"], str) or top["model_version"] != manifest.model_version:
        raise ManifestError(
            f"{source}: model_version {top['model_version']!r} is not the digest of the "
            f"manifest's content ({manifest.model_version}); the manifest was edited or "
            "truncated: re-publish the model with `publish`"
        )
    return manifest


def _object(value: object, keys: tuple[str, ...], source: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(f"{source}: {what} must be a JSON object")
    missing = [k for k in keys if k not in value]
    unknown = sorted(set(value) - set(keys))
    if missing:
        raise ManifestError(f"{source}: {what} lacks {', '.join(missing)}")
    if unknown:
        raise ManifestError(f"{source}: {what} has unknown key(s) {', '.join(unknown)}")
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_chunk_size(chunk_size: object, where: str) -> None:
    if (
        not _is_int(chunk_size)
        or not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE  # type: ignore[operator]
        or chunk_size & (chunk_size - 1)  # type: ignore[operator]
    ):
        raise ManifestError(
            f"{where} is {chunk_size!r}: it must be a power of two between "
            f"{MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes"
        )


def validate_relative_path(path: object, where: str) -> str:
    """A model path must stay inside the destination: relative, POSIX, no ``..``, no empties."""
    if not isinstance(path, str) or not path:
        raise ManifestError(f"{where}.path must be a non-empty string")
    if "\\" in path or "\x00" in path:
        raise ManifestError(f"{where}.path {path!r} contains a backslash or NUL byte")
    if path.startswith("/"):
        raise ManifestError(f"{where}.path {path!r} is absolute; paths are relative to the model")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ManifestError(
            f"{where}.path {path!r} has an empty, '.' or '..' component; "
            "paths must stay inside the model directory"
        )
    if path.endswith(PARTIAL_SUFFIX):
        raise ManifestError(
            f"{where}.path {path!r} ends with {PARTIAL_SUFFIX!r}, the suffix the copy uses for "
            "files in flight: rename the file"
        )
    if path == MODEL_MANIFEST:
        raise ManifestError(f"{where}.path {path!r} would overwrite the manifest: rename the file")
    return path


def _validate_files(files: tuple[ManifestFile, ...], chunk_size: int, where: Any) -> None:
    seen: set[str] = set()
    for index, entry in enumerate(files):
        at = where(index, entry)
        validate_relative_path(entry.path, at)
        if not _is_int(entry.size) or entry.size < 0:
            raise ManifestError(f"{at}.size must be an integer >= 0, got {entry.size!r}")
        expected = chunk_count(entry.size, chunk_size)
        if len(entry.checksums) != expected:
            raise ManifestError(
                f"{at}.checksums has {len(entry.checksums)} entries; a file of {entry.size} bytes "
                f"in chunks of {chunk_size} needs {expected}"
            )
        for position, checksum in enumerate(entry.checksums):
            if not isinstance(checksum, str) or not _CHECKSUM.fullmatch(checksum):
                raise ManifestError(
                    f"{at}.checksums[{position}] is {checksum!r}, expected {HEX_DIGITS} "
                    "lowercase hex digits"
                )
        if entry.path in seen:
            raise ManifestError(f"{at}.path {entry.path!r} is listed twice")
        seen.add(entry.path)
    # A file cannot also be a directory of another file ("a" and "a/b").
    for path in seen:
        for parent in PurePosixPath(path).parents:
            if str(parent) in seen:
                raise ManifestError(
                    f"files: {str(parent)!r} is a file and also the directory of {path!r}"
                )
