"""Running the measurements: the served object, nginx, the boto3 grid, the byte checks, the
timed rounds and the optional profile; every client a child process under one guard."""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shutil
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.clients import (
    AGENT,
    Check,
    ClientRun,
    Endpoint,
    Tools,
    build_client,
    received_bytes,
)
from bench.install import InstallError, ensure_tools
from bench.nginx import NginxServer
from bench.options import Options, tuned
from bench.processes import Measurement, ProcessGuard
from bench.profiling import render_profile, top_functions
from bench.results import Run
from bench.schedule import round_robin
from bench.sizes import format_size
from bench.source import (
    CopyMismatchError,
    SourceObject,
    prepare_source,
    verify_copy,
    warm_page_cache,
    write_agent_manifest,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUCKET = "bench"
PREFIX = "models/bench/"
OBJECT_NAME = "model.bin"


def client_environment(work_dir: Path) -> dict[str, str]:
    """The children's environment: fake credentials, no user AWS config, the project importable."""
    config = work_dir / "aws-config"
    config.write_text("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(work_dir / "no-credentials-file"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
        }
    )
    return env


class Bench:
    """One benchmark run: the served object, the guard of its children, and the runs so far."""

    def __init__(
        self, options: Options, guard: ProcessGuard, env: dict[str, str], source: SourceObject
    ) -> None:
        self.options = options
        self.guard = guard
        self.env = env
        self.source = source
        self.log_dir = options.work_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._counter = 0

    def prepare(self, client: ClientRun) -> None:
        """Same start for every run: no destination, no dirty pages, the source in cache.

        Every client's earlier copy is removed, not just this client's: seven 2 GiB copies left
        in the page cache would make whoever runs next reclaim memory while it writes.
        """
        # Every client's scratch directory lives under one destination root (build_client).
        shutil.rmtree(client.scratch.parent, ignore_errors=True)
        client.scratch.mkdir(parents=True)
        os.sync()
        warm_page_cache(self.source.path)

    def run(self, client: ClientRun, *, full_check: bool) -> tuple[Measurement, float | None]:
        self.prepare(client)
        self._counter += 1
        measurement = self.guard.run_measured(
            client.argv,
            env=self.env,
            timeout=self.options.timeout,
            log_dir=self.log_dir,
            label=f"{self._counter:03d}-{client.name}",
        )
        self.check(client, measurement, full=full_check)
        inner = _inner_seconds(measurement.stdout)
        return measurement, inner

    def check(self, client: ClientRun, measurement: Measurement, *, full: bool) -> None:
        if client.check is Check.RECEIVED:
            received = received_bytes(measurement.stdout)
            if received != self.source.size:
                raise CopyMismatchError(
                    f"{client.name}: received {received} bytes, the object has {self.source.size}"
                )
            return
        want_crc = full and client.check is Check.BYTES
        verify_copy(
            client.name,
            client.output,
            size=self.source.size,
            crc64nvme=self.source.crc64nvme if want_crc else None,
        )


def _inner_seconds(stdout: str) -> float | None:
    """``inner_s`` from bench.client_main's JSON line (Python clients only)."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            value = json.loads(line).get("inner_s")
            return float(value) if value is not None else None
    return None


def _agent_report(stdout: str) -> Any:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line).get("report")
    return None


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def search_boto3_grid(
    bench: Bench,
    build: Any,
    part_sizes: Sequence[int],
    concurrency: Sequence[int],
    runs: int,
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """``runs`` rounds over the grid (round-robin); the point with the lowest median wins."""
    points = [(part_size, threads) for part_size in part_sizes for threads in concurrency]
    walls: dict[tuple[int, int], list[float]] = {point: [] for point in points}
    cpus: dict[tuple[int, int], list[float]] = {point: [] for point in points}
    for _round, index in round_robin([str(i) for i in range(len(points))], runs):
        part_size, threads = point = points[int(index)]
        measurement, _inner = bench.run(build("boto3-tuned", tuned(*point)), full_check=False)
        walls[point].append(measurement.wall_s)
        cpus[point].append(measurement.cpu_s)
        _say(
            f"  grid {format_size(part_size)} x {threads}: {measurement.wall_s:.3f} s "
            f"(CPU {measurement.cpu_s:.2f} s)"
        )
    grid = [
        {
            **tuned(*point),
            "wall_s": round(statistics.median(walls[point]), 4),
            "cpu_s": round(statistics.median(cpus[point]), 4),
            "runs": len(walls[point]),
        }
        for point in points
    ]
    best = min(grid, key=lambda point: point["wall_s"])
    return tuned(int(best["multipart_chunksize"]), int(best["max_concurrency"])), grid


@dataclass
class Measured:
    """Everything a benchmark run measured, before it is summarized."""

    clients: dict[str, ClientRun]
    runs: list[Run]
    grid: list[dict[str, Any]]
    verification: dict[str, Any]
    agent_report: Any
    agent_profile: list[dict[str, Any]] | None = None


def prepare(options: Options) -> tuple[dict[str, str], SourceObject]:
    """Tools installed, the object written (and the agent's manifest), the object in cache."""
    install_log: list[str] = []
    tools = ensure_tools(allow_install=options.allow_install, log=install_log)
    for line in install_log:
        _say(f"installed: {line}")
    options.work_dir.mkdir(parents=True, exist_ok=True)
    serve_root = options.work_dir / "serve"
    _say(f"object: {format_size(options.size)} under {serve_root}")
    source = prepare_source(
        serve_root, size=options.size, bucket=BUCKET, prefix=PREFIX, name=OBJECT_NAME
    )
    if AGENT in options.clients:
        if importlib.util.find_spec("instance_agent.model_copy") is None:
            raise InstallError(
                "agent: instance_agent/model_copy.py is not in this checkout; leave 'agent' out "
                "of --clients (and pass --baseline '' or another client) until it is"
            )
        _say(f"manifest: {write_agent_manifest(source)}")
    warm_page_cache(source.path)
    return tools, source


def measure(options: Options, tools: dict[str, str], source: SourceObject) -> Measured:
    """Start nginx, search the boto3 grid, verify every client once, then the timed rounds."""
    work = options.work_dir
    client_tools = Tools(
        python=sys.executable, s5cmd=tools["s5cmd"], curl=tools["curl"], dd=tools["dd"]
    )
    user = pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None
    measured = Measured(clients={}, runs=[], grid=[], verification={}, agent_report=None)
    with ProcessGuard() as guard:
        server = NginxServer(
            guard, binary=tools["nginx"], root=source.serve_root, run_dir=work / "nginx", user=user
        )
        server.start()
        _say(f"nginx: pid {server.pid} on {server.endpoint_url}")
        endpoint = Endpoint(server.endpoint_url, BUCKET, PREFIX, source.key, source.size)
        bench = Bench(options, guard, client_environment(work), source)
        client_options = options.client_options

        def build(name: str, tuned: dict[str, int] | None = None) -> ClientRun:
            chosen = replace(client_options, boto3_tuned=tuned or client_options.boto3_tuned)
            return build_client(
                name, endpoint=endpoint, dest_root=work / "dest", tools=client_tools, options=chosen
            )

        def build_profiled(path: Path) -> ClientRun:
            return build_client(
                AGENT,
                endpoint=endpoint,
                dest_root=work / "dest",
                tools=client_tools,
                options=replace(client_options, profile=str(path)),
            )

        if "boto3-tuned" in options.clients and client_options.boto3_tuned is None:
            _say(f"boto3 TransferConfig grid ({options.grid_runs} run(s) per point):")
            tuned, measured.grid = search_boto3_grid(
                bench, build, options.grid_part_sizes, options.grid_concurrency, options.grid_runs
            )
            client_options = replace(client_options, boto3_tuned=tuned)
        measured.clients.update({name: build(name) for name in options.clients})
        for name, client in measured.clients.items():
            measurement, _inner = bench.run(client, full_check=True)
            measured.verification[name] = {
                "wall_s": measurement.wall_s,
                "check": client.check.value,
            }
            if name == AGENT:
                measured.agent_report = _agent_report(measurement.stdout)
            _say(f"verified {name}: {measurement.wall_s:.3f} s, {client.check.value} ok")
        for round_index, name in round_robin(options.clients, options.runs):
            measurement, inner = bench.run(measured.clients[name], full_check=False)
            measured.runs.append(
                Run(
                    round_index,
                    name,
                    measurement.wall_s,
                    measurement.user_s,
                    measurement.sys_s,
                    measurement.max_rss_kib,
                    inner,
                )
            )
            _say(f"round {round_index + 1}/{options.runs} {name}: {measurement.wall_s:.3f} s")
        if options.profile and AGENT in measured.clients:
            measured.agent_profile = _profile_agent(bench, build_profiled, work / "agent.prof")
        server.stop()
        for client in measured.clients.values():
            shutil.rmtree(client.scratch, ignore_errors=True)
    return measured


def _profile_agent(bench: Bench, build: Any, path: Path) -> list[dict[str, Any]]:
    """One more (untimed) agent run under cProfile; its top functions by time spent inside."""
    path.unlink(missing_ok=True)
    measurement, inner = bench.run(build(path), full_check=True)
    rows = top_functions(path)
    _say(f"agent under cProfile: {measurement.wall_s:.3f} s ({inner or 0:.3f} s in the copy)")
    _say(render_profile(rows))
    return rows
