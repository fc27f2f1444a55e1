"""``gpurun publish-model``: the model's files, then its manifest, under models/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from run_contract.s3_layout import MODEL_MANIFEST
from tests.gpurun.cli_helpers import gpurun
from tests.gpurun.conftest import REGION


@pytest.fixture
def s3(aws: None) -> Any:
    """moto's S3 with the model bucket ("models") created."""
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(
        Bucket="models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return client


def test_publish_model_uploads_the_files_and_the_manifest(s3: Any, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w" * 1000)
    (model / "run.sh").write_text("exec python3 score.py\n")

    result = gpurun("publish-model", str(model), "--region", REGION, "--bucket", "models", "--json")

    assert result.code == 0, result.err
    *progress, published = [json.loads(line) for line in result.out.splitlines()]
    assert published["event"] == "published"
    assert published["files"] == 2
    total = 1000 + len("exec python3 score.py\n")
    assert [(e["stage"], e["bytes"], e["total_bytes"]) for e in progress] == [
        ("checksum", total, total),
        ("upload", total, total),
    ]
    manifest = json.loads(
        s3.get_object(Bucket="models", Key=f"models/current/{MODEL_MANIFEST}")["Body"].read()
    )
    assert [f["path"] for f in manifest["files"]] == ["run.sh", "weights.bin"]


def test_publish_model_refuses_a_model_without_its_entry_point_and_uploads_nothing(
    s3: Any, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "sub" / "run.sh").write_text("not at the top\n")

    result = gpurun("publish-model", str(model), "--region", REGION, "--bucket", "models")

    assert result.code == 2
    assert "has no run.sh at its top" in result.err
    assert "--no-entry-point" in result.err
    assert s3.list_objects_v2(Bucket="models").get("KeyCount") == 0


def test_publish_model_with_no_entry_point_publishes_a_model_a_command_runs(
    s3: Any, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w")

    result = gpurun(
        "publish-model", str(model), "--region", REGION, "--bucket", "models", "--no-entry-point"
    )

    assert result.code == 0, result.err


def test_publish_model_refuses_a_prefix_outside_models(s3: Any, tmp_path: Path) -> None:
    result = gpurun(
        "publish-model", str(tmp_path), "--region", REGION, "--bucket", "b", "--prefix", "runs/x/"
    )

    assert result.code == 2
    assert "must start with models/" in result.err


def test_publish_model_of_a_missing_directory_says_so(s3: Any, tmp_path: Path) -> None:

    result = gpurun(
        "publish-model", str(tmp_path / "nope"), "--region", REGION, "--bucket", "models"
    )

    assert result.code == 2
    assert "does not exist" in result.err


def test_publish_model_shows_bytes_and_rate_in_plain_lines_off_a_terminal(
    s3: Any, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w" * 3_000_000)

    result = gpurun(
        "publish-model", str(model), "--region", REGION, "--bucket", "models", "--no-entry-point"
    )

    assert result.code == 0, result.err
    checksum, upload, published = result.out.splitlines()
    assert checksum.startswith("checksum 3.0 MB of 3.0 MB (100%), ")
    assert upload.startswith("upload   3.0 MB of 3.0 MB (100%), ")
    assert upload.endswith("/s")
    assert published.startswith("published 1 file(s), 3000000 bytes")
