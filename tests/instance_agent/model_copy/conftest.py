"""Fixtures for the model copy tests: moto in-process S3, and the ranged server for faults."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from instance_agent.manifest import MIN_CHUNK_SIZE, Manifest
from instance_agent.publish import build_model_manifest
from run_contract.s3_layout import MODEL_MANIFEST
from tests.instance_agent.model_copy.ranged_server import Faults, serve

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "model-bucket"
PREFIX = "models/current/"
SESSION_TOKEN = "session-token"
CHUNK = MIN_CHUNK_SIZE  # 64 KiB: many chunks and parts from small files, so tests stay fast


@pytest.fixture
def s3() -> Iterator[S3Client]:
    """A moto in-process S3 with the model bucket."""
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield client


def write_model(root: Path) -> dict[str, bytes]:
    """A model covering the edge cases; returns {relative path: content}."""
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    files = {
        "config.json": b'{"layers": 2}',
        "empty.txt": b"",
        "weights/part-0.bin": rng.randbytes(5 * CHUNK),  # exactly several chunks
        "weights/part-1.bin": rng.randbytes(3 * CHUNK + 12345),  # not a multiple of anything
        "weights/nested/tiny.bin": rng.randbytes(100),  # smaller than one chunk
        "tokenizer/vocab.txt": rng.randbytes(CHUNK - 1),
    }
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


@pytest.fixture
def model(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    source = tmp_path / "source"
    return source, write_model(source)


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def ranged(tmp_path: Path) -> Iterator[tuple[S3Client, Faults, Callable[[Path], Manifest]]]:
    """The ranged server with a client that does NOT retry on its own (so ours is tested).

    The client is built like the agent's (SigV4 presigning, see ``client_config``) and has a
    session token, so the copy's lean HTTP path is used unless a test asks for ``boto3``.

    Yields (client, faults, stage): ``stage(source_dir)`` places a model and its manifest where
    the server serves ``s3://BUCKET/PREFIX`` and returns the manifest.
    """
    served = tmp_path / "served"
    (served / BUCKET).mkdir(parents=True)

    def stage(source: Path) -> Manifest:
        manifest, files = build_model_manifest(source, CHUNK)
        for relative, path in files:
            target = served / BUCKET / PREFIX / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        (served / BUCKET / PREFIX / MODEL_MANIFEST).write_bytes(manifest.to_json())
        return manifest

    with serve(served) as (url, faults):
        client = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="eu-west-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            aws_session_token=SESSION_TOKEN,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"total_max_attempts": 1},
                max_pool_connections=16,
                read_timeout=5,
            ),
        )
        yield client, faults, stage


def served_path(tmp_path: Path, relative: str) -> Path:
    return tmp_path / "served" / BUCKET / PREFIX / relative


def partial_files(root: Path) -> list[Path]:
    return list(root.rglob("*.partial")) if root.exists() else []
