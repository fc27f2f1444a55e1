"""Results upload against moto S3: every file first, the manifest last, none on failure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from instance_agent.errors import ResultsUploadFailed
from instance_agent.results import upload_results

BUCKET = "models-bucket"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield client


def record_puts(s3: Any) -> list[str]:
    keys: list[str] = []

    def before(params: dict[str, Any], **kwargs: Any) -> None:
        keys.append(params["Key"])

    s3.meta.events.register("provide-client-params.s3.PutObject", before)
    s3.meta.events.register("provide-client-params.s3.CreateMultipartUpload", before)
    return keys


def make_output(root: Path) -> None:
    (root / "plots").mkdir(parents=True)
    (root / "scores.csv").write_text("a,b\n1,2\n")
    (root / "plots" / "week.png").write_bytes(b"\x89PNG" + bytes(1000))


def test_the_manifest_is_the_last_object_written(s3: Any, tmp_path: Path) -> None:
    make_output(tmp_path)
    puts = record_puts(s3)
    result = upload_results(s3, tmp_path, BUCKET, "runs/run-1/")
    assert puts[-1] == "runs/run-1/_manifest.json"
    assert sorted(puts[:-1]) == ["runs/run-1/plots/week.png", "runs/run-1/scores.csv"]
    assert result.manifest_key == "runs/run-1/_manifest.json"


def test_the_manifest_lists_keys_sizes_and_checksums(s3: Any, tmp_path: Path) -> None:
    make_output(tmp_path)
    upload_results(s3, tmp_path, BUCKET, "runs/run-1/")
    body = s3.get_object(Bucket=BUCKET, Key="runs/run-1/_manifest.json")["Body"].read()
    manifest = json.loads(body)
    by_key = {f["key"]: f for f in manifest["files"]}
    scores = by_key["runs/run-1/scores.csv"]
    assert scores["size"] == 8
    assert scores["sha256"] == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert manifest["total_bytes"] == 8 + 1004


def test_a_failed_upload_writes_no_manifest(s3: Any, tmp_path: Path) -> None:
    make_output(tmp_path)
    original = s3.upload_file

    def failing(filename: str, bucket: str, key: str, *args: Any, **kwargs: Any) -> None:
        if key.endswith("week.png"):
            raise OSError("connection reset")
        original(filename, bucket, key, *args, **kwargs)

    s3.upload_file = failing
    with pytest.raises(ResultsUploadFailed, match=r"plots/week.png .* no results manifest"):
        upload_results(s3, tmp_path, BUCKET, "runs/run-1/")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert "runs/run-1/_manifest.json" not in keys


def test_an_output_file_named_like_the_manifest_is_refused(s3: Any, tmp_path: Path) -> None:
    (tmp_path / "_manifest.json").write_text("{}")
    with pytest.raises(ResultsUploadFailed, match="reserved"):
        upload_results(s3, tmp_path, BUCKET, "runs/run-1/")


def test_an_empty_output_still_gets_a_manifest(s3: Any, tmp_path: Path) -> None:
    result = upload_results(s3, tmp_path, BUCKET, "runs/run-1/")
    assert result.files == 0
    s3.head_object(Bucket=BUCKET, Key="runs/run-1/_manifest.json")
