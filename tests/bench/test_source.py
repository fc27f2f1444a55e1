"""The served object and the byte check that every copy must pass before it is timed."""

import os
from pathlib import Path

import pytest
from awscrt import checksums

from bench.source import (
    CopyMismatchError,
    file_crc64nvme,
    prepare_source,
    verify_copy,
    write_agent_manifest,
    write_random_file,
)


@pytest.fixture
def original(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "original.bin"
    crc = write_random_file(path, 3 * 1024 * 1024 + 17)
    return path, crc


def test_random_file_has_the_size_and_the_checksum_it_reports(original: tuple[Path, str]) -> None:
    path, crc = original
    data = path.read_bytes()
    assert len(data) == 3 * 1024 * 1024 + 17
    assert crc == f"{checksums.crc64nvme(data):016x}" == file_crc64nvme(path)


def test_an_exact_copy_passes(original: tuple[Path, str], tmp_path: Path) -> None:
    path, crc = original
    copy = tmp_path / "copy.bin"
    copy.write_bytes(path.read_bytes())
    verify_copy("s5cmd", copy, size=path.stat().st_size, crc64nvme=crc)


def test_a_copy_with_one_wrong_byte_is_rejected(original: tuple[Path, str], tmp_path: Path) -> None:
    path, crc = original
    data = bytearray(path.read_bytes())
    data[1_000_000] ^= 0x01
    copy = tmp_path / "copy.bin"
    copy.write_bytes(data)
    with pytest.raises(CopyMismatchError, match=r"^s5cmd: .* wrote wrong bytes"):
        verify_copy("s5cmd", copy, size=len(data), crc64nvme=crc)


def test_a_short_copy_is_rejected(original: tuple[Path, str], tmp_path: Path) -> None:
    path, crc = original
    copy = tmp_path / "copy.bin"
    copy.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(CopyMismatchError, match="did not download the whole object"):
        verify_copy("awscli", copy, size=path.stat().st_size, crc64nvme=crc)


def test_a_missing_copy_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(CopyMismatchError, match=r"^agent: produced no file"):
        verify_copy("agent", tmp_path / "absent.bin", size=1, crc64nvme=None)


def test_size_only_check_accepts_other_bytes_of_the_right_size(tmp_path: Path) -> None:
    copy = tmp_path / "zeros.bin"
    copy.write_bytes(bytes(10))
    verify_copy("ceiling-write", copy, size=10, crc64nvme=None)


def test_source_is_served_under_bucket_and_key(tmp_path: Path) -> None:
    source = prepare_source(tmp_path, size=4096, bucket="b", prefix="models/x/", name="m.bin")
    assert source.key == "models/x/m.bin"
    assert source.path == tmp_path / "b" / "models" / "x" / "m.bin"
    assert source.path.stat().st_size == 4096
    assert source.crc64nvme == file_crc64nvme(source.path)


def test_source_is_reused_when_size_and_checksum_match(tmp_path: Path) -> None:
    first = prepare_source(tmp_path, size=4096, bucket="b", prefix="p/", name="m.bin")
    inode = os.stat(first.path).st_ino
    second = prepare_source(tmp_path, size=4096, bucket="b", prefix="p/", name="m.bin")
    assert second == first
    assert os.stat(second.path).st_ino == inode


def test_source_is_rewritten_when_its_bytes_changed(tmp_path: Path) -> None:
    first = prepare_source(tmp_path, size=4096, bucket="b", prefix="p/", name="m.bin")
    first.path.write_bytes(bytes(4096))
    second = prepare_source(tmp_path, size=4096, bucket="b", prefix="p/", name="m.bin")
    assert second.crc64nvme == file_crc64nvme(second.path)
    assert second.path.read_bytes() != bytes(4096)


def test_source_is_rewritten_for_another_size(tmp_path: Path) -> None:
    prepare_source(tmp_path, size=4096, bucket="b", prefix="p/", name="m.bin")
    second = prepare_source(tmp_path, size=8192, bucket="b", prefix="p/", name="m.bin")
    assert second.path.stat().st_size == 8192


def test_agent_manifest_is_the_one_publish_writes_for_the_object(tmp_path: Path) -> None:
    from instance_agent.manifest import parse_manifest
    from instance_agent.publish import build_model_manifest

    source = prepare_source(tmp_path, size=100_000, bucket="b", prefix="models/x/", name="m.bin")
    path = write_agent_manifest(source)
    assert path == tmp_path / "b" / "models" / "x" / "manifest.json"
    manifest = parse_manifest(path.read_bytes(), str(path))
    assert [(f.path, f.size) for f in manifest.files] == [("m.bin", 100_000)]
    path.unlink()
    assert manifest == build_model_manifest(source.path.parent)[0]


def test_agent_manifest_refuses_a_prefix_with_other_files(tmp_path: Path) -> None:
    source = prepare_source(tmp_path, size=4096, bucket="b", prefix="p/", name="m.bin")
    (source.path.parent / "stray.txt").write_text("left over")
    with pytest.raises(CopyMismatchError, match=r"must hold only m\.bin"):
        write_agent_manifest(source)
