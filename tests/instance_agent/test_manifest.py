"""The model manifest: its format, its version digest, and strict validation of what S3 gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from instance_agent.checksums import chunk_checksum, file_chunk_checksums
from instance_agent.manifest import (
    Manifest,
    ManifestError,
    ManifestFile,
    build_manifest,
    parse_manifest,
)

CHUNK = 64 * 1024


def _manifest() -> Manifest:
    return build_manifest(
        [
            ManifestFile("b/weights.bin", CHUNK + 1, (chunk_checksum(b"x"), chunk_checksum(b"y"))),
            ManifestFile("a.json", 2, (chunk_checksum(b"{}"),)),
            ManifestFile("empty", 0, ()),
        ],
        CHUNK,
    )


def _document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_manifest().to_json())
    document.update(changes)
    return document


def _resealed(document: dict[str, Any]) -> bytes:
    """The document with a model_version that matches its (edited) content."""
    document = dict(document)
    document.pop("model_version", None)
    files = tuple(
        ManifestFile(f["path"], f["size"], tuple(f["checksums"])) for f in document["files"]
    )
    version = Manifest(chunk_size=document["chunk_size"], files=files).model_version
    return json.dumps({**document, "model_version": version}).encode()


def _file_entry(**changes: Any) -> dict[str, Any]:
    return {"path": "x.bin", "size": 1, "checksums": [chunk_checksum(b"x")], **changes}


def test_manifest_survives_a_round_trip_through_json() -> None:
    manifest = _manifest()
    assert parse_manifest(manifest.to_json(), "s3://b/m.json") == manifest


def test_files_are_sorted_by_path_so_the_version_does_not_depend_on_walk_order() -> None:
    assert [f.path for f in _manifest().files] == ["a.json", "b/weights.bin", "empty"]


def test_model_version_is_a_digest_of_the_content() -> None:
    same = _manifest()
    other = build_manifest([ManifestFile("a.json", 2, (chunk_checksum(b"{]"),))], CHUNK)
    assert _manifest().model_version == same.model_version
    assert _manifest().model_version.startswith("sha256:")
    assert other.model_version != same.model_version


def test_edited_manifest_is_refused_because_its_version_no_longer_matches() -> None:
    document = _document()
    document["files"][0]["checksums"] = [chunk_checksum(b"edited")]
    with pytest.raises(ManifestError, match=r"model_version .* not the digest"):
        parse_manifest(json.dumps(document).encode(), "s3://b/m.json")


@pytest.mark.parametrize(
    "path",
    ["../escape.bin", "a/../../escape.bin", "/etc/passwd", "a//b", "./a", "a\\b", "", "x.partial"],
)
def test_path_that_could_escape_or_collide_is_refused(path: str) -> None:
    document = _document(files=[_file_entry(path=path)])
    with pytest.raises(ManifestError, match=r"files\[0\]\.path"):
        parse_manifest(_resealed(document), "s3://b/m.json")


def test_checksum_count_that_does_not_match_the_size_is_refused() -> None:
    document = _document(files=[_file_entry(size=CHUNK + 1)])
    with pytest.raises(ManifestError, match=r"files\[0\]\.checksums has 1 entries.*needs 2"):
        parse_manifest(_resealed(document), "s3://b/m.json")


def test_negative_size_is_refused() -> None:
    document = _document(files=[_file_entry(size=-1, checksums=[])])
    with pytest.raises(ManifestError, match=r"files\[0\]\.size must be an integer >= 0"):
        parse_manifest(_resealed(document), "s3://b/m.json")


def test_malformed_checksum_is_refused() -> None:
    document = _document(files=[_file_entry(checksums=["XYZ"])])
    with pytest.raises(ManifestError, match=r"files\[0\]\.checksums\[0\] is 'XYZ'"):
        parse_manifest(_resealed(document), "s3://b/m.json")


def test_unknown_key_is_refused_and_named() -> None:
    with pytest.raises(ManifestError, match=r"unknown key.*compression"):
        parse_manifest(json.dumps(_document(compression="zstd")).encode(), "s3://b/m.json")


def test_missing_key_is_refused_and_named() -> None:
    document = _document()
    del document["chunk_size"]
    with pytest.raises(ManifestError, match="lacks chunk_size"):
        parse_manifest(json.dumps(document).encode(), "s3://b/m.json")


def test_other_format_version_is_refused() -> None:
    with pytest.raises(ManifestError, match="format_version is 2"):
        parse_manifest(json.dumps(_document(format_version=2)).encode(), "s3://b/m.json")


def test_other_algorithm_is_refused() -> None:
    with pytest.raises(ManifestError, match="algorithm is 'md5'"):
        parse_manifest(json.dumps(_document(algorithm="md5")).encode(), "s3://b/m.json")


@pytest.mark.parametrize("chunk_size", [0, 1000, 3 * CHUNK, 2**31, "8MiB", True])
def test_chunk_size_that_is_not_a_sane_power_of_two_is_refused(chunk_size: object) -> None:
    with pytest.raises(ManifestError, match="chunk_size is"):
        parse_manifest(json.dumps(_document(chunk_size=chunk_size)).encode(), "s3://b/m.json")


def test_same_path_listed_twice_is_refused() -> None:
    document = _document(files=[_file_entry(), _file_entry()])
    with pytest.raises(ManifestError, match="listed twice"):
        parse_manifest(_resealed(document), "s3://b/m.json")


def test_file_that_is_also_a_directory_is_refused() -> None:
    document = _document(files=[_file_entry(path="a"), _file_entry(path="a/b")])
    with pytest.raises(ManifestError, match="'a' is a file and also the directory of 'a/b'"):
        parse_manifest(_resealed(document), "s3://b/m.json")


def test_invalid_json_is_refused_naming_the_source() -> None:
    with pytest.raises(ManifestError, match=r"s3://b/m\.json: not valid JSON"):
        parse_manifest(b"{not json", "s3://b/m.json")


def test_file_chunk_checksums_are_one_per_chunk_including_a_short_last_one(tmp_path: Path) -> None:
    data = bytes(range(256)) * (CHUNK // 256) * 2 + b"tail"
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert file_chunk_checksums(path, CHUNK) == [
        chunk_checksum(data[:CHUNK]),
        chunk_checksum(data[CHUNK : 2 * CHUNK]),
        chunk_checksum(b"tail"),
    ]


def test_empty_file_has_no_chunk_checksums(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert file_chunk_checksums(tmp_path / "empty", CHUNK) == []
