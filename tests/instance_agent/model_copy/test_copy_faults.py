"""copy_model over real HTTP (the ranged server on 127.0.0.1), on both transports: the lean path
(GETs on the workers' own connections to presigned URLs) and the boto3 client. Retries of single
parts after dropped connections and server errors, errors that name what is wrong, the streamed
checksum, and the memory bound of the slice buffers.

The client here does not retry by itself, so every retry seen is the copy engine's own.
"""

from __future__ import annotations

import dataclasses
import logging
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config

from instance_agent.errors import ModelChecksumMismatch, ModelCopyFailed, ModelNotFound
from instance_agent.manifest import Manifest
from instance_agent.model_copy import MIN_SLICE_SIZE, CopySettings, copy_model
from run_contract.s3_layout import MODEL_MANIFEST
from tests.instance_agent.model_copy.conftest import (
    BUCKET,
    CHUNK,
    PREFIX,
    SESSION_TOKEN,
    partial_files,
    read_tree,
    served_path,
)
from tests.instance_agent.model_copy.ranged_server import Faults

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Ranged = tuple["S3Client", Faults, Callable[[Path], Manifest]]
SETTINGS = CopySettings(part_size=2 * CHUNK, max_concurrency=3, retry_base_seconds=0.01)
KEY = PREFIX + "weights/part-1.bin"


@pytest.fixture(params=["http", "boto3"])
def settings(request: pytest.FixtureRequest) -> CopySettings:
    """SETTINGS on each transport: every test below holds for both."""
    return dataclasses.replace(SETTINGS, transport=request.param)


def _ranges(faults: Faults, key: str) -> list[str]:
    return [r for method, k, r in faults.requests if k == key and method == "GET"]


def _queries(faults: Faults, key: str) -> list[str]:
    return [query for k, query in faults.queries if k == key]


def test_copy_over_http_is_byte_identical(
    ranged: Ranged, model: tuple[Path, dict[str, bytes]], tmp_path: Path, settings: CopySettings
) -> None:
    s3, _faults, stage = ranged
    stage(model[0])
    copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings)
    assert read_tree(tmp_path / "dest") == model[1]


def test_dropped_connection_is_retried_for_that_part_only(
    ranged: Ranged, model: tuple[Path, dict[str, bytes]], tmp_path: Path, settings: CopySettings
) -> None:
    s3, faults, stage = ranged
    stage(model[0])
    faults.drop_mid_body[KEY] = 1
    copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings)
    assert read_tree(tmp_path / "dest") == model[1]
    ranges = _ranges(faults, KEY)
    # part-1.bin has 2 parts; the one that was dropped is asked for twice, the other once.
    assert len(ranges) == 3
    assert len(set(ranges)) == 2


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_and_throttling_are_retried(
    ranged: Ranged,
    model: tuple[Path, dict[str, bytes]],
    tmp_path: Path,
    settings: CopySettings,
    status: int,
) -> None:
    s3, faults, stage = ranged
    stage(model[0])
    faults.error_status[KEY] = [status, status]
    copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings)
    assert read_tree(tmp_path / "dest") == model[1]
    assert len(_ranges(faults, KEY)) == 4


def test_access_denied_fails_at_once_naming_the_object(
    ranged: Ranged, model: tuple[Path, dict[str, bytes]], tmp_path: Path, settings: CopySettings
) -> None:
    s3, faults, stage = ranged
    stage(model[0])
    faults.error_status[KEY] = [403]
    with pytest.raises(ModelCopyFailed, match=f"s3://{BUCKET}/{KEY} bytes .*AccessDenied"):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings)
    assert len(_ranges(faults, KEY)) <= 2  # no retries: one GET per part at most
    assert partial_files(tmp_path / "dest") == []


def test_retries_exhausted_fail_the_copy_naming_the_part_and_leave_no_partial_file(
    ranged: Ranged, model: tuple[Path, dict[str, bytes]], tmp_path: Path, settings: CopySettings
) -> None:
    s3, faults, stage = ranged
    stage(model[0])
    faults.drop_mid_body[KEY] = 100
    settings = dataclasses.replace(settings, part_retries=2)
    with pytest.raises(
        ModelCopyFailed, match=r"weights/part-1.bin bytes \d+-\d+ .* failed 3 times"
    ):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings)
    assert partial_files(tmp_path / "dest") == []
    assert not (tmp_path / "dest" / "weights" / "part-1.bin").exists()


def test_missing_object_is_not_retried(
    ranged: Ranged, model: tuple[Path, dict[str, bytes]], tmp_path: Path, settings: CopySettings
) -> None:
    s3, faults, stage = ranged
    stage(model[0])
    served_path(tmp_path, "weights/part-1.bin").unlink()
    with pytest.raises(ModelNotFound, match=r"weights/part-1\.bin"):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings)
    assert len(_ranges(faults, KEY)) <= 2  # one GET per part at most, no retries


def test_object_longer_than_the_manifest_says_fails_naming_both_sizes(
    ranged: Ranged, model: tuple[Path, dict[str, bytes]], tmp_path: Path, settings: CopySettings
) -> None:
    s3, _faults, stage = ranged
    stage(model[0])
    path = served_path(tmp_path, "weights/part-1.bin")
    size = path.stat().st_size
    path.write_bytes(path.read_bytes() + b"more")
    with pytest.raises(
        ModelChecksumMismatch,
        match=rf"part-1.bin: .* is {size + 4} bytes, the manifest says {size}",
    ):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings)


def test_corrupted_part_is_read_once_more_before_the_copy_fails(
    ranged: Ranged, model: tuple[Path, dict[str, bytes]], tmp_path: Path, settings: CopySettings
) -> None:
    s3, faults, stage = ranged
    stage(model[0])
    path = served_path(tmp_path, "weights/part-1.bin")
    content = bytearray(path.read_bytes())
    content[0] ^= 1
    path.write_bytes(bytes(content))
    with pytest.raises(ModelChecksumMismatch, match=r"part-1.bin: bytes 0-65535 \(chunk 0\)"):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings)
    assert _ranges(faults, KEY).count(f"bytes=0-{2 * CHUNK - 1}") == 2
    assert partial_files(tmp_path / "dest") == []


def _stage_with_chunk(tmp_path: Path, chunk_size: int, content: bytes) -> None:
    """Serve one file ``big.bin`` under a manifest with ``chunk_size`` chunks."""
    from instance_agent.publish import build_model_manifest

    source = tmp_path / "source-big"
    source.mkdir()
    (source / "big.bin").write_bytes(content)
    manifest, _files = build_model_manifest(source, chunk_size)
    served_path(tmp_path, "big.bin").parent.mkdir(parents=True, exist_ok=True)
    served_path(tmp_path, "big.bin").write_bytes(content)
    served_path(tmp_path, MODEL_MANIFEST).write_bytes(manifest.to_json())


def test_slices_smaller_than_a_chunk_carry_its_checksum_across_slices(
    ranged: Ranged, tmp_path: Path, settings: CopySettings
) -> None:
    s3, _faults, _stage = ranged
    content = bytes(range(256)) * (10 * CHUNK // 256) + b"tail"  # chunks of 4 x 64 KiB
    _stage_with_chunk(tmp_path, 4 * CHUNK, content)
    settings = dataclasses.replace(settings, part_size=8 * CHUNK, slice_size=MIN_SLICE_SIZE)
    copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings)
    assert (tmp_path / "dest" / "big.bin").read_bytes() == content


def test_a_bad_byte_in_the_middle_slice_of_a_chunk_names_that_chunk(
    ranged: Ranged, tmp_path: Path, settings: CopySettings
) -> None:
    s3, _faults, _stage = ranged
    content = bytes(range(256)) * (10 * CHUNK // 256)
    _stage_with_chunk(tmp_path, 4 * CHUNK, content)
    corrupted = bytearray(content)
    corrupted[4 * CHUNK + CHUNK + 7] ^= 0x10  # the second slice of chunk 1
    served_path(tmp_path, "big.bin").write_bytes(bytes(corrupted))
    settings = dataclasses.replace(settings, part_size=8 * CHUNK, slice_size=MIN_SLICE_SIZE)
    with pytest.raises(
        ModelChecksumMismatch, match=rf"big.bin: bytes {4 * CHUNK}-{8 * CHUNK - 1} \(chunk 1\)"
    ):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings)


def test_lean_path_gets_presigned_sigv4_urls_carrying_the_session_token(
    ranged: Ranged, model: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    s3, faults, stage = ranged
    stage(model[0])
    copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SETTINGS)  # transport "auto"
    queries = _queries(faults, KEY)
    assert queries
    assert all("X-Amz-Algorithm=AWS4-HMAC-SHA256" in q for q in queries)
    assert all(f"X-Amz-Security-Token={SESSION_TOKEN}" in q for q in queries)
    assert _queries(faults, PREFIX + MODEL_MANIFEST) == [""]  # the manifest: through boto3


def test_a_client_that_presigns_sigv2_gets_through_the_client(
    ranged: Ranged, model: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    _s3, faults, stage = ranged
    stage(model[0])
    s3 = boto3.client(
        "s3",
        endpoint_url=_s3.meta.endpoint_url,
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )
    copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SETTINGS)
    assert read_tree(tmp_path / "dest") == model[1]
    assert set(_queries(faults, KEY)) == {""}  # signed headers, no presigned URL


def test_a_redirected_presigned_get_moves_the_copy_onto_the_client(
    ranged: Ranged,
    model: tuple[Path, dict[str, bytes]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    s3, faults, stage = ranged
    stage(model[0])
    faults.error_status[KEY] = [301]  # e.g. the bucket is in another region than the client's
    settings = dataclasses.replace(SETTINGS, max_concurrency=1)
    with caplog.at_level(logging.WARNING, logger="instance_agent.model_copy"):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings)
    assert read_tree(tmp_path / "dest") == model[1]
    assert "HTTP 301 PermanentRedirect" in caplog.text
    first, *then = _queries(faults, KEY)
    assert "X-Amz-Signature=" in first
    assert then == ["", ""]  # that part again, and the next one, through boto3


def test_a_proxy_in_the_environment_keeps_the_gets_on_the_client(
    ranged: Ranged,
    model: tuple[Path, dict[str, bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    s3, _faults, stage = ranged
    stage(model[0])
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # botocore itself may still reach the server
    with caplog.at_level(logging.INFO, logger="instance_agent.model_copy"):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SETTINGS)
    assert "through the boto3 client: a proxy is configured" in caplog.text
    assert read_tree(tmp_path / "dest") == model[1]


def test_memory_in_flight_is_streams_times_slice_size_whatever_the_part_size(
    ranged: Ranged, tmp_path: Path, settings: CopySettings
) -> None:
    s3, _faults, stage = ranged
    source = tmp_path / "big"
    source.mkdir()
    for n in range(4):
        (source / f"shard-{n}.bin").write_bytes(bytes([n]) * (32 * CHUNK))  # 8 MiB in all
    stage(source)
    # Parts of 2 MiB (a whole file each), streamed through 64 KiB slices.
    settings = dataclasses.replace(
        settings, part_size=32 * CHUNK, slice_size=MIN_SLICE_SIZE, max_concurrency=2
    )
    # Warm up: botocore loads and caches the S3 service model on its first calls.
    copy_model(s3, BUCKET, PREFIX, tmp_path / "warm-up", settings=settings)
    tracemalloc.start()
    try:
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    buffers = 2 * MIN_SLICE_SIZE
    # Slack for botocore's and http.client's bookkeeping; far below one part (2 MiB).
    print(f"peak traced memory {peak} bytes for slice buffers of {buffers} bytes")
    assert peak < buffers + 4 * CHUNK
    assert read_tree(tmp_path / "dest")["shard-3.bin"] == bytes([3]) * (32 * CHUNK)
