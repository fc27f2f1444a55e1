"""publish_model: every file uploaded, the manifest last, refusals that say what to change."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from instance_agent.manifest import parse_manifest
from instance_agent.publish import PublishError, publish_model
from run_contract.s3_layout import MODEL_MANIFEST
from tests.instance_agent.model_copy.conftest import BUCKET, CHUNK, PREFIX

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def _keys(s3: S3Client) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_publish_uploads_every_file_and_the_manifest(
    s3: S3Client, model: tuple[Path, dict[str, bytes]]
) -> None:
    source, files = model
    manifest = publish_model(s3, source, BUCKET, PREFIX, chunk_size=CHUNK)
    assert _keys(s3) == {PREFIX + p for p in files} | {PREFIX + MODEL_MANIFEST}
    for relative, content in files.items():
        assert s3.get_object(Bucket=BUCKET, Key=PREFIX + relative)["Body"].read() == content
    stored = s3.get_object(Bucket=BUCKET, Key=PREFIX + MODEL_MANIFEST)["Body"].read()
    assert parse_manifest(stored, "stored") == manifest
    assert {f.path: f.size for f in manifest.files} == {p: len(c) for p, c in files.items()}


def test_manifest_is_written_after_every_file(
    s3: S3Client, model: tuple[Path, dict[str, bytes]]
) -> None:
    written: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        written.append(params["Key"])

    s3.meta.events.register("provide-client-params.s3.PutObject", record)
    s3.meta.events.register("provide-client-params.s3.CreateMultipartUpload", record)
    publish_model(s3, model[0], BUCKET, PREFIX, chunk_size=CHUNK)
    assert written[-1] == PREFIX + MODEL_MANIFEST
    assert len(written) == len(model[1]) + 1


def test_publishing_the_same_directory_again_gives_the_same_version(
    s3: S3Client, model: tuple[Path, dict[str, bytes]]
) -> None:
    first = publish_model(s3, model[0], BUCKET, PREFIX, chunk_size=CHUNK)
    second = publish_model(s3, model[0], BUCKET, PREFIX, chunk_size=CHUNK)
    assert first.model_version == second.model_version
    assert _keys(s3) == {PREFIX + p for p in model[1]} | {PREFIX + MODEL_MANIFEST}


def test_publishing_a_changed_model_withdraws_the_old_manifest_before_uploading(
    s3: S3Client, model: tuple[Path, dict[str, bytes]]
) -> None:
    source, _files = model
    publish_model(s3, source, BUCKET, PREFIX, chunk_size=CHUNK)
    (source / "config.json").write_bytes(b'{"layers": 3}')
    manifest_present_during_uploads: list[bool] = []

    def check(params: dict[str, Any], **_: Any) -> None:
        if params["Key"] != PREFIX + MODEL_MANIFEST:
            keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
            manifest_present_during_uploads.append(PREFIX + MODEL_MANIFEST in keys)

    s3.meta.events.register("provide-client-params.s3.PutObject", check)
    new = publish_model(s3, source, BUCKET, PREFIX, chunk_size=CHUNK)
    assert manifest_present_during_uploads
    assert not any(manifest_present_during_uploads)
    stored = s3.get_object(Bucket=BUCKET, Key=PREFIX + MODEL_MANIFEST)["Body"].read()
    assert json.loads(stored)["model_version"] == new.model_version


def test_missing_directory_is_refused(s3: S3Client, tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="does not exist"):
        publish_model(s3, tmp_path / "nope", BUCKET, PREFIX)


def test_empty_directory_is_refused(s3: S3Client, tmp_path: Path) -> None:
    (tmp_path / "model" / "sub").mkdir(parents=True)
    with pytest.raises(PublishError, match="has no files: nothing to publish"):
        publish_model(s3, tmp_path / "model", BUCKET, PREFIX)
    assert _keys(s3) == set()


def test_a_file_instead_of_a_directory_is_refused(s3: S3Client, tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(PublishError, match="is not a directory"):
        publish_model(s3, tmp_path / "file", BUCKET, PREFIX)


def test_prefix_without_trailing_slash_is_refused(
    s3: S3Client, model: tuple[Path, dict[str, bytes]]
) -> None:
    with pytest.raises(PublishError, match="must end with '/'"):
        publish_model(s3, model[0], BUCKET, "models/current")


def test_symlink_escaping_the_directory_is_refused(
    s3: S3Client, model: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    (tmp_path / "secret").write_bytes(b"not part of the model")
    (model[0] / "leak").symlink_to(tmp_path / "secret")
    with pytest.raises(PublishError, match="outside the model directory"):
        publish_model(s3, model[0], BUCKET, PREFIX)
    assert _keys(s3) == set()


def test_symlink_to_a_file_inside_the_directory_is_published_as_a_file(
    s3: S3Client, model: tuple[Path, dict[str, bytes]]
) -> None:
    source, files = model
    (source / "alias.json").symlink_to(source / "config.json")
    manifest = publish_model(s3, source, BUCKET, PREFIX, chunk_size=CHUNK)
    assert "alias.json" in {f.path for f in manifest.files}
    body = s3.get_object(Bucket=BUCKET, Key=PREFIX + "alias.json")["Body"].read()
    assert body == files["config.json"]


def test_symlink_to_a_directory_is_refused(
    s3: S3Client, model: tuple[Path, dict[str, bytes]]
) -> None:
    (model[0] / "again").symlink_to(model[0] / "weights")
    with pytest.raises(PublishError, match="symlink to a directory"):
        publish_model(s3, model[0], BUCKET, PREFIX)


def test_broken_symlink_is_refused(s3: S3Client, model: tuple[Path, dict[str, bytes]]) -> None:
    (model[0] / "dangling").symlink_to(model[0] / "gone")
    with pytest.raises(PublishError, match="broken or looping symlink"):
        publish_model(s3, model[0], BUCKET, PREFIX)


def test_socket_in_the_directory_is_refused(
    s3: S3Client, model: tuple[Path, dict[str, bytes]]
) -> None:
    path = model[0] / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(PublishError, match="not a regular file"):
            publish_model(s3, model[0], BUCKET, PREFIX)


def test_unreadable_directory_is_refused(
    s3: S3Client, model: tuple[Path, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # We run as root here, so a chmod would not stop the walk: make os.walk report the error.
    def walk(top: Path, onerror: Any = None, **_: Any) -> Any:
        onerror(PermissionError(13, "Permission denied", str(Path(top) / "weights")))
        return iter(())

    monkeypatch.setattr("instance_agent.publish.os.walk", walk)
    with pytest.raises(PublishError, match=r"cannot read .*weights: Permission denied"):
        publish_model(s3, model[0], BUCKET, PREFIX)


def test_a_file_named_like_the_manifest_is_refused(s3: S3Client, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / MODEL_MANIFEST).write_bytes(b"{}")
    with pytest.raises(PublishError, match="would overwrite the manifest"):
        publish_model(s3, tmp_path / "m", BUCKET, PREFIX)
