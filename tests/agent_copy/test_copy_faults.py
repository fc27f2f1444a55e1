"""copy_model over real HTTP (the ranged server on 127.0.0.1): retries of single parts after
dropped connections and server errors, and the memory bound of the reused buffers.

The client here does not retry by itself, so every retry seen is the copy engine's own.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from instance_agent.errors import ModelChecksumMismatch, ModelCopyFailed, ModelNotFound
from instance_agent.manifest import Manifest
from instance_agent.model_copy import CopySettings, copy_model
from tests.agent_copy.conftest import BUCKET, CHUNK, PREFIX, partial_files, read_tree, served_path
from tests.agent_copy.ranged_server import Faults

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Ranged = tuple["S3Client", Faults, Callable[[Path], Manifest]]
SETTINGS = CopySettings(part_size=2 * CHUNK, max_concurrency=3, retry_base_seconds=0.01)
KEY = PREFIX + "weights/part-1.bin"


def _ranges(faults: Faults, key: str) -> list[str]:
    return [r for method, k, r in faults.requests if k == key and method == "GET"]


def test_copy_over_http_is_byte_identical(
    ranged: Ranged, model: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    s3, _faults, stage = ranged
    stage(model[0])
    copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SETTINGS)
    assert read_tree(tmp_path / "dest") == model[1]


def test_dropped_connection_is_retried_for_that_part_only(
    ranged: Ranged, model: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    s3, faults, stage = ranged
    stage(model[0])
    faults.drop_mid_body[KEY] = 1
    copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SETTINGS)
    assert read_tree(tmp_path / "dest") == model[1]
    ranges = _ranges(faults, KEY)
    # part-1.bin has 2 parts; the one that was dropped is asked for twice, the other once.
    assert len(ranges) == 3
    assert len(set(ranges)) == 2


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_and_throttling_are_retried(
    ranged: Ranged, model: tuple[Path, dict[str, bytes]], tmp_path: Path, status: int
) -> None:
    s3, faults, stage = ranged
    stage(model[0])
    faults.error_status[KEY] = [status, status]
    copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SETTINGS)
    assert read_tree(tmp_path / "dest") == model[1]
    assert len(_ranges(faults, KEY)) == 4


def test_retries_exhausted_fail_the_copy_naming_the_part_and_leave_no_partial_file(
    ranged: Ranged, model: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    s3, faults, stage = ranged
    stage(model[0])
    faults.drop_mid_body[KEY] = 100
    settings = CopySettings(part_size=2 * CHUNK, max_concurrency=3, part_retries=2)
    with pytest.raises(
        ModelCopyFailed, match=r"weights/part-1.bin bytes \d+-\d+ .* failed 3 times"
    ):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings)
    assert partial_files(tmp_path / "dest") == []
    assert not (tmp_path / "dest" / "weights" / "part-1.bin").exists()


def test_missing_object_is_not_retried(
    ranged: Ranged, model: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    s3, faults, stage = ranged
    stage(model[0])
    served_path(tmp_path, "weights/part-1.bin").unlink()
    with pytest.raises(ModelNotFound, match=r"weights/part-1\.bin"):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SETTINGS)
    assert len(_ranges(faults, KEY)) <= 2  # one GET per part at most, no retries


def test_corrupted_part_is_read_once_more_before_the_copy_fails(
    ranged: Ranged, model: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    s3, faults, stage = ranged
    stage(model[0])
    path = served_path(tmp_path, "weights/part-1.bin")
    content = bytearray(path.read_bytes())
    content[0] ^= 1
    path.write_bytes(bytes(content))
    with pytest.raises(ModelChecksumMismatch, match=r"part-1.bin: bytes 0-65535 \(chunk 0\)"):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SETTINGS)
    assert _ranges(faults, KEY).count(f"bytes=0-{2 * CHUNK - 1}") == 2


def test_memory_in_flight_is_bounded_by_streams_times_part_size(
    ranged: Ranged, tmp_path: Path
) -> None:
    s3, _faults, stage = ranged
    source = tmp_path / "big"
    source.mkdir()
    for n in range(4):
        (source / f"shard-{n}.bin").write_bytes(bytes([n]) * (32 * CHUNK))  # 8 MiB in all
    stage(source)
    settings = CopySettings(part_size=2 * CHUNK, max_concurrency=2)
    # Warm up: botocore loads and caches the S3 service model on its first calls.
    copy_model(s3, BUCKET, PREFIX, tmp_path / "warm-up", settings=settings)
    tracemalloc.start()
    try:
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Two 128 KiB buffers; the model is 32 times that. Slack covers botocore's bookkeeping.
    print(f"peak traced memory {peak} bytes for buffers of {2 * 2 * CHUNK} bytes")
    assert peak < 2 * (2 * CHUNK) + 4 * CHUNK
    assert read_tree(tmp_path / "dest")["shard-3.bin"] == bytes([3]) * (32 * CHUNK)
