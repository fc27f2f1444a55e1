"""The command line's options: parsed, and every bad value refused naming its option."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.clients import AGENT, ALL_CLIENTS, ClientOptions
from bench.sizes import parse_size

RECOMMENDED_RUNS = 5


class UsageError(ValueError):
    """A bad command-line value; the message names the option."""


@dataclass(frozen=True)
class Options:
    """The validated command line."""

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
    return tuned(parse_size(part, "--boto3-tuned"), _positive_int(concurrency, "--boto3-tuned"))


def tuned(part_size: int, concurrency: int) -> dict[str, int]:
    """boto3-tuned's TransferConfig: ``part_size`` parts, ``concurrency`` threads."""
    return {
        "multipart_threshold": part_size,
        "multipart_chunksize": part_size,
        "max_concurrency": concurrency,
    }
