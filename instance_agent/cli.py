"""Command line: ``run`` (the agent, started by systemd) and ``publish`` (the platform team).

Only the standard library is imported here; boto3 comes in with the phases that need it.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from instance_agent.config import DEFAULT_CONFIG_PATH, load_config
from instance_agent.errors import AgentFailure, ConfigError
from instance_agent.shutdown import Shutdown

log = logging.getLogger("instance_agent")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="instance_agent", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the agent: copy, take the task, run, report")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
    check = commands.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
    publish = commands.add_parser(
        "publish", help="upload a local model directory with its manifest (written last)"
    )
    publish.add_argument("source", type=Path, help="the local model directory")
    publish.add_argument("--bucket", required=True)
    publish.add_argument("--prefix", required=True, help="e.g. models/2026-11-24/ (ends in /)")
    publish.add_argument("--region", default=None)
    publish.add_argument("--endpoint-url", default=None, help="a local AWS emulator")
    publish.add_argument(
        "--no-entry-point",
        action="store_true",
        help="publish without run.sh (the stack's model command or image runs the model)",
    )
    return parser


def _run(config_path: Path) -> int:
    from instance_agent.logs import setup_logging

    setup_logging()
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        # Without a valid configuration there is no shutdown_command either: the default one and
        # the deadline armed by the user data still end the instance.
        log.error("configuration error: %s", exc)  # noqa: TRY400 - the message names the key
        Shutdown(["shutdown", "-h", "now"])("invalid configuration")
        return 2
    tail = setup_logging(config.log_tail_lines)
    # Which Python and which copy of the agent: the first question when a boot goes wrong.
    log.info(
        "instance agent on python %s (%s) from %s",
        platform.python_version(),
        sys.executable,
        Path(__file__).parent,
    )
    from instance_agent.agent import Agent, install_sigterm
    from instance_agent.services import default_services

    shutdown = Shutdown(config.shutdown_command)
    try:
        services = default_services(config, shutdown)
    except BaseException as exc:
        log.exception("cannot start the agent")
        shutdown(f"start-up failed: {exc}")
        return 1
    agent = Agent(config, services, tail)
    install_sigterm(agent)
    return agent.run()


def _publish(args: argparse.Namespace) -> int:
    from instance_agent.logs import setup_logging

    setup_logging()
    import boto3

    from instance_agent.publish import publish_model

    s3 = boto3.client("s3", region_name=args.region, endpoint_url=args.endpoint_url)
    try:
        manifest = publish_model(
            s3,
            args.source,
            args.bucket,
            args.prefix,
            require_entry_point=not args.no_entry_point,
        )
    except (AgentFailure, ValueError, OSError) as exc:
        log.error("publish failed: %s", exc)  # noqa: TRY400 - the message says what to do
        return 1
    log.info(
        "published %d file(s), %d bytes, version %s to s3://%s/%s",
        len(manifest.files),
        manifest.total_bytes,
        manifest.model_version,
        args.bucket,
        args.prefix,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args.config)
    if args.command == "check-config":
        try:
            load_config(args.config)
        except ConfigError as exc:
            print(f"invalid: {exc}", file=sys.stderr)
            return 2
        print(f"{args.config}: valid")
        return 0
    return _publish(args)
