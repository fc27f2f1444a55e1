"""copy_model against moto's in-process S3: a published model arrives byte-identical, or fails
with the error that names what is wrong, and leaves no half-written file behind."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from instance_agent.errors import ModelChecksumMismatch, ModelCopyFailed, ModelNotFound
from instance_agent.model_copy import (
    CopyCancelled,
    CopyProgress,
    CopySettings,
    copy_model,
    plan_copy,
)
from instance_agent.publish import publish_model
from run_contract.s3_layout import MODEL_MANIFEST
from tests.instance_agent.model_copy.conftest import BUCKET, CHUNK, PREFIX, partial_files, read_tree

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Two chunks per part and three streams: every file of the test model spans the edge cases.
SMALL = CopySettings(part_size=2 * CHUNK, max_concurrency=3, retry_base_seconds=0.001)


@pytest.fixture
def published(s3: S3Client, model: tuple[Path, dict[str, bytes]]) -> dict[str, bytes]:
    publish_model(s3, model[0], BUCKET, PREFIX, chunk_size=CHUNK)
    return model[1]


def test_published_model_is_copied_byte_identical(
    s3: S3Client, published: dict[str, bytes], tmp_path: Path
) -> None:
    copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SMALL)
    assert read_tree(tmp_path / "dest") == published


def test_copy_with_chosen_settings_is_byte_identical(
    s3: S3Client, published: dict[str, bytes], tmp_path: Path
) -> None:
    copy_model(s3, BUCKET, PREFIX, tmp_path / "dest")
    assert read_tree(tmp_path / "dest") == published


def test_report_counts_files_and_bytes_and_carries_the_model_version(
    s3: S3Client, model: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    manifest = publish_model(s3, model[0], BUCKET, PREFIX, chunk_size=CHUNK)
    report = copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SMALL)
    assert report.files == len(model[1])
    assert report.bytes == sum(len(c) for c in model[1].values())
    assert report.model_version == manifest.model_version
    assert report.seconds > 0
    assert report.mb_per_s > 0


def test_existing_files_at_the_destination_are_replaced(
    s3: S3Client, published: dict[str, bytes], tmp_path: Path
) -> None:
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "config.json").write_bytes(b"stale and longer than the new one")
    copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SMALL)
    assert read_tree(tmp_path / "dest") == published


def test_corrupted_object_fails_naming_the_file_and_byte_range(
    s3: S3Client, published: dict[str, bytes], tmp_path: Path
) -> None:
    content = bytearray(published["weights/part-1.bin"])
    content[2 * CHUNK + 10] ^= 0xFF  # third chunk
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "weights/part-1.bin", Body=bytes(content))
    with pytest.raises(ModelChecksumMismatch) as raised:
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SMALL)
    message = str(raised.value)
    assert "weights/part-1.bin" in message
    assert f"bytes {2 * CHUNK}-{3 * CHUNK - 1} (chunk 2)" in message
    assert not (tmp_path / "dest" / "weights" / "part-1.bin").exists()
    assert partial_files(tmp_path / "dest") == []


def test_object_with_another_size_fails_naming_both_sizes(
    s3: S3Client, published: dict[str, bytes], tmp_path: Path
) -> None:
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "config.json", Body=b'{"layers": 2} ')
    with pytest.raises(ModelChecksumMismatch, match=r"config.json: .* is 14 bytes, .* says 13"):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SMALL)


def test_missing_object_fails_with_model_not_found_naming_the_key(
    s3: S3Client, published: dict[str, bytes], tmp_path: Path
) -> None:
    s3.delete_object(Bucket=BUCKET, Key=PREFIX + "weights/part-0.bin")
    with pytest.raises(ModelNotFound, match=f"s3://{BUCKET}/{PREFIX}weights/part-0.bin"):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SMALL)
    assert partial_files(tmp_path / "dest") == []


def test_missing_empty_object_fails_with_model_not_found(
    s3: S3Client, published: dict[str, bytes], tmp_path: Path
) -> None:
    s3.delete_object(Bucket=BUCKET, Key=PREFIX + "empty.txt")
    with pytest.raises(ModelNotFound, match=r"empty\.txt"):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SMALL)


def test_missing_manifest_fails_with_model_not_found_naming_it(
    s3: S3Client, tmp_path: Path
) -> None:
    with pytest.raises(ModelNotFound, match=f"s3://{BUCKET}/{PREFIX}{MODEL_MANIFEST} does not"):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest")


def test_manifest_with_an_escaping_path_fails_before_anything_is_written(
    s3: S3Client, published: dict[str, bytes], tmp_path: Path
) -> None:
    stored = s3.get_object(Bucket=BUCKET, Key=PREFIX + MODEL_MANIFEST)["Body"].read()
    s3.put_object(
        Bucket=BUCKET,
        Key=PREFIX + MODEL_MANIFEST,
        Body=stored.replace(b'"config.json"', b'"../config.json"'),
    )
    with pytest.raises(ModelCopyFailed, match=r"invalid model manifest: .*'\.\./config\.json'"):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest" / "model", settings=SMALL)
    assert not (tmp_path / "dest").exists()


def test_prefix_without_trailing_slash_is_refused(s3: S3Client, tmp_path: Path) -> None:
    with pytest.raises(ModelCopyFailed, match="must end with '/'"):
        copy_model(s3, BUCKET, "models/current", tmp_path / "dest")


def test_cancel_stops_between_parts_and_removes_partial_files(
    s3: S3Client, published: dict[str, bytes], tmp_path: Path
) -> None:
    cancel = threading.Event()
    gets = 0

    def count(**_: Any) -> None:
        nonlocal gets
        gets += 1
        if gets == 2:
            cancel.set()

    s3.meta.events.register("before-call.s3.GetObject", count)
    settings = CopySettings(part_size=CHUNK, max_concurrency=1)
    with pytest.raises(CopyCancelled, match="cancelled"):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings, cancel=cancel)
    assert gets == 2  # the manifest, then one part: no part started after the cancel
    assert partial_files(tmp_path / "dest") == []


def test_cancel_during_a_part_stops_it_at_the_next_slice(
    s3: S3Client, published: dict[str, bytes], tmp_path: Path
) -> None:
    cancel = threading.Event()
    gets = 0

    def cancel_when_the_first_part_starts(**_: Any) -> None:
        nonlocal gets
        gets += 1
        if gets == 2:  # the manifest, then the first part
            cancel.set()

    s3.meta.events.register("before-call.s3.GetObject", cancel_when_the_first_part_starts)
    settings = CopySettings(part_size=4 * CHUNK, slice_size=CHUNK, max_concurrency=1)
    with pytest.raises(CopyCancelled, match="cancelled after 0 of"):
        copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings, cancel=cancel)
    assert partial_files(tmp_path / "dest") == []


def test_cancel_is_a_model_copy_failure_for_the_agent() -> None:
    assert issubclass(CopyCancelled, ModelCopyFailed)


def test_progress_ends_with_every_byte_done(
    s3: S3Client, published: dict[str, bytes], tmp_path: Path
) -> None:
    reports: list[CopyProgress] = []
    copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=SMALL, progress=reports.append)
    total = sum(len(c) for c in published.values())
    assert reports[-1].bytes_done == reports[-1].bytes_total == total
    assert reports[-1].eta_seconds == 0
    assert all(a.bytes_done <= b.bytes_done for a, b in itertools.pairwise(reports))


def test_progress_is_reported_at_most_once_per_interval(
    s3: S3Client, published: dict[str, bytes], tmp_path: Path
) -> None:
    reports: list[CopyProgress] = []
    settings = CopySettings(part_size=CHUNK, max_concurrency=1, progress_interval_seconds=0.05)
    slow_down = threading.Event()

    def slow(**_: Any) -> None:
        slow_down.wait(0.02)  # about 20 parts x 20 ms: 0.4 s of copying

    s3.meta.events.register("before-call.s3.GetObject", slow)
    copy_model(s3, BUCKET, PREFIX, tmp_path / "dest", settings=settings, progress=reports.append)
    gaps = [b.seconds - a.seconds for a, b in itertools.pairwise(reports[:-1])]
    assert len(reports) >= 3
    assert min(gaps) >= 0.05


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("part_size", 0),
        ("part_size", 2**40),
        ("max_concurrency", 0),
        ("max_concurrency", 1000),
        ("slice_size", 1024),
        ("slice_size", 2**30),
        ("transport", "curl"),
        ("part_retries", -1),
        ("retry_base_seconds", -1.0),
        ("progress_interval_seconds", "1s"),
    ],
)
def test_bad_setting_is_refused_naming_it(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"{field} is"):
        CopySettings(**{field: value})


def test_plan_on_96_cpus_uses_64_streams_of_64_mib_parts_with_one_mib_slice_buffers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("instance_agent.model_copy.plan.os.cpu_count", lambda: 96)
    plan = plan_copy(100 * 2**30, 10 * 2**30, 8 * 2**20, CopySettings())
    assert (plan.max_concurrency, plan.part_size, plan.slice_size) == (64, 64 * 2**20, 2**20)
    assert plan.buffer_bytes == 64 * 2**20


def test_plan_never_uses_a_slice_bigger_than_the_part() -> None:
    plan = plan_copy(10 * CHUNK, 10 * CHUNK, CHUNK, CopySettings(max_concurrency=4))
    assert plan.slice_size == plan.part_size == 3 * CHUNK


def test_plan_on_two_cpus_uses_two_streams_of_64_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("instance_agent.model_copy.plan.os.cpu_count", lambda: 2)
    plan = plan_copy(2 * 2**30, 2 * 2**30, 8 * 2**20, CopySettings())
    assert (plan.max_concurrency, plan.part_size) == (2, 64 * 2**20)


def test_plan_from_four_cpus_uses_two_streams_per_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("instance_agent.model_copy.plan.os.cpu_count", lambda: 4)
    plan = plan_copy(2 * 2**30, 2 * 2**30, 8 * 2**20, CopySettings())
    assert plan.max_concurrency == 8


def test_plan_with_given_streams_and_part_size_uses_them() -> None:
    plan = plan_copy(2**30, 2**30, 8 * 2**20, CopySettings(part_size=32 * 2**20, max_concurrency=3))
    assert (plan.max_concurrency, plan.part_size) == (3, 32 * 2**20)


def test_plan_rounds_part_size_up_to_whole_chunks() -> None:
    plan = plan_copy(2**30, 2**30, 8 * 2**20, CopySettings(part_size=20 * 2**20))
    assert plan.part_size == 24 * 2**20


def test_plan_for_a_small_model_spreads_it_over_the_streams_in_whole_chunks() -> None:
    plan = plan_copy(10 * CHUNK, 10 * CHUNK, CHUNK, CopySettings(max_concurrency=4))
    assert plan.part_size == 3 * CHUNK
    assert plan.max_concurrency == 4


def test_plan_never_uses_more_streams_than_parts() -> None:
    plan = plan_copy(100, 100, CHUNK, CopySettings(max_concurrency=8))
    assert (plan.max_concurrency, plan.part_size) == (1, CHUNK)
