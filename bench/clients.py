"""What each measured client runs: its command line, where its copy lands, how it is checked.

Every client is a child process (``bench.client_main`` for the Python ones), so its wall time,
CPU time and peak memory include its own start-up, as they do for s5cmd and the AWS CLI.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

AGENT = "agent"
COPY_CLIENTS = ("agent", "s5cmd", "boto3-default", "boto3-tuned", "awscli", "awscrt")
CEILINGS = ("ceiling-read", "ceiling-write")
ALL_CLIENTS = COPY_CLIENTS + CEILINGS

DESCRIPTIONS = {
    "agent": "instance_agent.model_copy.copy_model, integrity check on",
    "s5cmd": "s5cmd cp, defaults",
    "boto3-default": "boto3 download_file, default TransferConfig",
    "boto3-tuned": "boto3 download_file, best TransferConfig of the grid",
    "awscli": "aws s3 cp (awscli v1), defaults",
    "awscrt": "awscrt S3Client used directly",
    "ceiling-read": "parallel ranged GETs into /dev/null (curl)",
    "ceiling-write": "dd bs=16M of the same size, page cache, no fsync",
}


class Check(Enum):
    """How a run's output is checked: full bytes, size only, or bytes received (to /dev/null)."""

    BYTES = "crc64nvme"
    SIZE = "size"
    RECEIVED = "received"


@dataclass(frozen=True)
class Endpoint:
    """The served object as a client sees it."""

    url: str
    bucket: str
    prefix: str
    key: str
    size: int

    @property
    def s3_url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Tools:
    """The executables the clients run."""

    python: str = sys.executable
    s5cmd: str = "s5cmd"
    curl: str = "curl"
    dd: str = "dd"


@dataclass(frozen=True)
class ClientOptions:
    """Settings the user may change per client (the rest are each client's defaults)."""

    agent_settings: dict[str, Any] = field(default_factory=dict)
    boto3_tuned: dict[str, int] | None = None
    awscrt_part_size: int = 8 * 1024 * 1024
    awscrt_throughput_gbps: float = 10.0
    ceiling_streams: int = 2
    profile: str | None = None  # the agent's run writes cProfile statistics to this path


@dataclass(frozen=True)
class ClientRun:
    """One client's command; ``scratch`` is removed before every run, ``output`` is checked."""

    name: str
    argv: tuple[str, ...]
    scratch: Path
    output: Path
    check: Check
    settings: dict[str, Any]

    @property
    def is_ceiling(self) -> bool:
        return self.name in CEILINGS

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.name]


def byte_ranges(size: int, streams: int) -> list[tuple[int, int]]:
    """``streams`` contiguous inclusive ranges covering ``[0, size)`` (HTTP Range form)."""
    if size < 1 or streams < 1:
        raise ValueError(f"byte_ranges needs size >= 1 and streams >= 1, got {size}, {streams}")
    streams = min(streams, size)
    step = -(-size // streams)
    return [(start, min(start + step, size) - 1) for start in range(0, size, step)]


def curl_ranges_argv(curl: str, url: str, size: int, streams: int) -> list[str]:
    """One curl process fetching ``streams`` ranges in parallel, each into /dev/null.

    ``--next`` starts a new transfer; ``--write-out`` prints each transfer's byte count so the
    run can prove it received the whole object.
    """
    argv = [curl, "--parallel", "--parallel-max", str(streams)]
    for index, (first, last) in enumerate(byte_ranges(size, streams)):
        if index:
            argv.append("--next")
        argv += [
            "--silent",
            "--show-error",
            "--fail",
            "--range",
            f"{first}-{last}",
            "--output",
            "/dev/null",
            "--write-out",
            "%{size_download}\\n",
            url,
        ]
    return argv


def _python_client(tools: Tools, spec: dict[str, Any]) -> tuple[str, ...]:
    return (tools.python, "-m", "bench.client_main", json.dumps(spec, sort_keys=True))


def build_client(  # noqa: PLR0911 - one return per client
    name: str, *, endpoint: Endpoint, dest_root: Path, tools: Tools, options: ClientOptions
) -> ClientRun:
    """The command for ``name`` copying ``endpoint``'s object under ``dest_root/name``."""
    scratch = dest_root / name
    file_name = endpoint.key.rsplit("/", 1)[-1]
    output = scratch / file_name
    common = {"endpoint_url": endpoint.url, "bucket": endpoint.bucket}
    if name == "agent":
        agent_options = {"settings": options.agent_settings}
        if options.profile:
            common["profile"] = options.profile
        spec = {
            **common,
            "client": "agent",
            "prefix": endpoint.prefix,
            "destination": str(scratch),
            "options": agent_options,
        }
        return ClientRun(
            name, _python_client(tools, spec), scratch, output, Check.BYTES, agent_options
        )
    if name in ("boto3-default", "boto3-tuned"):
        transfer_config = options.boto3_tuned if name == "boto3-tuned" else None
        if name == "boto3-tuned" and not transfer_config:
            raise ValueError("boto3-tuned needs a TransferConfig (from the grid or --boto3-tuned)")
        boto3_options = {"transfer_config": transfer_config}
        spec = {
            **common,
            "client": "boto3",
            "key": endpoint.key,
            "destination": str(output),
            "options": boto3_options,
        }
        return ClientRun(
            name, _python_client(tools, spec), scratch, output, Check.BYTES, boto3_options
        )
    if name == "awscrt":
        crt_options = {
            "part_size": options.awscrt_part_size,
            "throughput_target_gbps": options.awscrt_throughput_gbps,
        }
        spec = {
            **common,
            "client": "awscrt",
            "key": endpoint.key,
            "destination": str(output),
            "options": crt_options,
        }
        return ClientRun(
            name, _python_client(tools, spec), scratch, output, Check.BYTES, crt_options
        )
    if name == "s5cmd":
        argv: tuple[str, ...] = (
            tools.s5cmd,
            "--endpoint-url",
            endpoint.url,
            "cp",
            endpoint.s3_url,
            str(output),
        )
        return ClientRun(name, argv, scratch, output, Check.BYTES, {})
    if name == "awscli":
        argv = (
            tools.python,
            "-m",
            "awscli",
            "s3",
            "cp",
            endpoint.s3_url,
            str(output),
            "--endpoint-url",
            endpoint.url,
            "--only-show-errors",
            "--no-progress",
        )
        return ClientRun(name, argv, scratch, output, Check.BYTES, {})
    if name == "ceiling-read":
        url = f"{endpoint.url}/{endpoint.bucket}/{endpoint.key}"
        argv = tuple(curl_ranges_argv(tools.curl, url, endpoint.size, options.ceiling_streams))
        return ClientRun(
            name, argv, scratch, output, Check.RECEIVED, {"streams": options.ceiling_streams}
        )
    if name == "ceiling-write":
        # No conv=fdatasync: no client syncs its file, so the ceiling writes to page cache too.
        argv = (
            tools.dd,
            "if=/dev/zero",
            f"of={output}",
            "bs=16M",
            f"count={endpoint.size}",
            "iflag=count_bytes",
            "status=none",
        )
        return ClientRun(name, argv, scratch, output, Check.SIZE, {"bs": "16M"})
    raise ValueError(f"unknown client {name!r}; the clients are {', '.join(ALL_CLIENTS)}")


def received_bytes(stdout: str) -> int:
    """The bytes curl reports for all its transfers (one ``--write-out`` number per line)."""
    return sum(int(line) for line in stdout.split() if line.strip())
