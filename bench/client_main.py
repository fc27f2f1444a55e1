"""The child process that runs one Python client once: ``python -m bench.client_main SPEC``.

SPEC is a JSON object: ``client`` (agent, boto3 or awscrt), ``endpoint_url``, ``bucket``,
``key`` or ``prefix``, ``destination`` and the client's ``options``. The child prints one JSON
line: ``inner_s`` (the copy call alone, after imports and client set-up) and ``report``.
Each client runs in its own process so that its CPU time and peak memory are its own.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from typing import Any


def _boto3_client(endpoint_url: str, max_pool_connections: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - fake: nginx ignores signatures
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=max_pool_connections),
    )


def agent_client(endpoint_url: str, max_concurrency: int | None) -> Any:
    """The S3 client the agent builds for itself (``instance_agent.services.make_s3_client``),
    path-style for nginx; credentials from the environment, as the agent's come from its role."""
    from instance_agent.services import make_s3_client

    return make_s3_client("us-east-1", endpoint_url, max_concurrency, addressing_style="path")


def run_agent(spec: dict[str, Any]) -> tuple[float, Any]:
    from pathlib import Path

    from instance_agent.model_copy import CopySettings, copy_model

    settings = CopySettings(**spec["options"]["settings"])
    client = agent_client(spec["endpoint_url"], settings.max_concurrency)
    started = time.perf_counter()
    report = copy_model(
        client, spec["bucket"], spec["prefix"], Path(spec["destination"]), settings=settings
    )
    return time.perf_counter() - started, report


def run_boto3(spec: dict[str, Any]) -> tuple[float, Any]:
    from boto3.s3.transfer import TransferConfig

    options = spec["options"]
    config = TransferConfig(**options["transfer_config"]) if options["transfer_config"] else None
    # botocore's pool (10 by default) must not cap the transfer's own concurrency.
    pool = max(10, (options["transfer_config"] or {}).get("max_concurrency", 10))
    client = _boto3_client(spec["endpoint_url"], pool)
    started = time.perf_counter()
    client.download_file(spec["bucket"], spec["key"], spec["destination"], Config=config)
    return time.perf_counter() - started, None


def run_awscrt(spec: dict[str, Any]) -> tuple[float, Any]:
    from awscrt.auth import AwsCredentialsProvider
    from awscrt.http import HttpHeaders, HttpRequest
    from awscrt.io import ClientBootstrap, DefaultHostResolver, EventLoopGroup
    from awscrt.s3 import S3Client, S3RequestTlsMode, S3RequestType

    options = spec["options"]
    endpoint = spec["endpoint_url"].removeprefix("http://")
    event_loops = EventLoopGroup()
    bootstrap = ClientBootstrap(event_loops, DefaultHostResolver(event_loops))
    client = S3Client(
        bootstrap=bootstrap,
        region="us-east-1",
        tls_mode=S3RequestTlsMode.DISABLED,
        credential_provider=AwsCredentialsProvider.new_static("bench", "bench"),
        part_size=options["part_size"],
        throughput_target_gbps=options["throughput_target_gbps"],
    )
    # The CRT connects to the Host header's host:port; the path is path-style.
    request = HttpRequest(
        "GET", f"/{spec['bucket']}/{spec['key']}", HttpHeaders([("Host", endpoint)])
    )
    started = time.perf_counter()
    s3_request = client.make_request(
        type=S3RequestType.GET_OBJECT, request=request, recv_filepath=spec["destination"]
    )
    s3_request.finished_future.result()
    return time.perf_counter() - started, None


RUNNERS = {"agent": run_agent, "boto3": run_boto3, "awscrt": run_awscrt}
Runner = Callable[[dict[str, Any]], tuple[float, Any]]


def run_profiled(runner: Runner, spec: dict[str, Any], path: str) -> tuple[float, Any]:
    """Run under cProfile in every thread (3.11's cProfile sees only the thread that enables
    it), and dump the merged statistics to ``path`` for ``pstats``."""
    import cProfile
    import pstats
    import threading

    profiles: list[cProfile.Profile] = []
    original_run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()
        try:
            original_run(self)
        finally:
            profile.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    main_profile = cProfile.Profile()
    main_profile.enable()
    try:
        result = runner(spec)
    finally:
        main_profile.disable()
        threading.Thread.run = original_run  # type: ignore[method-assign]
    stats = pstats.Stats(main_profile)
    for profile in profiles:
        stats.add(profile)
    stats.dump_stats(path)
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.client_main SPEC_JSON", file=sys.stderr)
        return 2
    spec = json.loads(argv[0])
    runner = RUNNERS.get(spec.get("client"))
    if runner is None:
        print(f"client: {spec.get('client')!r} is not one of {sorted(RUNNERS)}", file=sys.stderr)
        return 2
    profile = spec.get("profile")
    inner, report = run_profiled(runner, spec, profile) if profile else runner(spec)
    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        report = dataclasses.asdict(report)
    print(json.dumps({"inner_s": inner, "report": report}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
