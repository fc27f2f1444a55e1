"""``gpurun`` (or ``python -m gpurun``): run, follow, cancel, status, logs, publish-model, doctor.

Exit codes: 0 succeeded / all checks ok; 1 the run FAILED or a check failed; 2 bad usage or
configuration; 3 the run TIMED_OUT; 4 the run was ABORTED; 5 still running when --timeout ended
the follow; 130 interrupted (Ctrl-C; a run goes on).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from gpurun import cancel, doctor, logs, run_checks, runs, status
from gpurun.aws import Clients
from gpurun.errors import (
    EXIT_BY_STATUS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    GpurunError,
)
from gpurun.interrupt import deferred_interrupt
from gpurun.progress import TransferProgress
from gpurun.stack import FIELDS, Stack, local_demo_hint


def _common() -> argparse.ArgumentParser:
    """Options every command takes: where AWS is, and where the stack's names come from."""
    common = argparse.ArgumentParser(add_help=False)
    aws = common.add_argument_group("AWS")
    aws.add_argument(
        "--region", help="AWS region (default: AWS_REGION, the profile, or the stack's output)"
    )
    aws.add_argument("--profile", help="named AWS profile")
    aws.add_argument("--endpoint-url", help="AWS endpoint for every client (a local AWS emulator)")
    stack = common.add_argument_group(
        "stack (default: flags, then GPURUN_* variables, then Terraform outputs)"
    )
    stack.add_argument(
        "--terraform-dir",
        type=Path,
        help="run `terraform output -json` there (default ./terraform)",
    )
    stack.add_argument("--outputs-file", type=Path, help="a saved `terraform output -json`")
    for name, field in FIELDS.items():
        if name != "region":
            stack.add_argument(
                field.flag, dest=name, help=f"(env {field.env}; output {field.output})"
            )
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    return common


def _follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll-seconds", type=float, default=2.0, help="history poll interval (default 2)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="stop following after this many seconds (exit 5; the run goes on)",
    )


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="gpurun", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        parents=[common],
        help="start a run now and follow it until it ends",
        description="Start an execution (every run parameter at its default unless --set) "
        "and print its phases as they happen.",
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a run parameter (JSON value or string), e.g. --set max_runtime_seconds=600, "
        "--set instance_types=g5.xlarge,g4dn.xlarge, --set parameters.week=48",
    )
    run.add_argument("--name", help="execution name (default manual-<UTC time>-<random>)")
    run.add_argument("--no-follow", action="store_true", help="start and return at once")
    _follow_options(run)

    fw = commands.add_parser(
        "follow",
        parents=[common],
        help="re-attach to a run and follow it until it ends",
        description="Print a run's phases so far, then each new one as it happens; exits with "
        "the run's outcome code.",
    )
    fw.add_argument("run", help="execution name or ARN")
    _follow_options(fw)

    cn = commands.add_parser(
        "cancel",
        parents=[common],
        help="stop a run and wait until its instance is terminated",
        description="StopExecution with a cause naming you; the nets terminate the run's "
        "instance, and this waits until EC2 reports it terminated.",
    )
    cn.add_argument("run", nargs="?", help="execution name or ARN (default: the running run)")
    cn.add_argument(
        "--wait-seconds",
        type=float,
        default=300.0,
        help="how long to wait for the instance to be terminated (default 300)",
    )
    cn.add_argument("--poll-seconds", type=float, default=2.0, help="EC2 poll interval (default 2)")

    st = commands.add_parser(
        "status",
        parents=[common],
        help="the last runs: status, duration, cost",
        description="The newest runs with their status, duration, instance and cost estimate "
        "(from runs/<name>/run.json).",
    )
    st.add_argument("--last", type=int, default=10, help="how many runs (default 10)")
    st.add_argument(
        "--phases",
        action="store_true",
        help="also each run's phases from launch to the model's first output line and on "
        "(run.json's timings, in order)",
    )

    lg = commands.add_parser(
        "logs",
        parents=[common],
        help="one run's agent and launcher log lines",
        description="The agent's lines (log streams <instance id>/...) and the launcher's lines "
        "mentioning the run, in time order.",
    )
    lg.add_argument("run", help="execution name or ARN")
    lg.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep printing new lines until the run has ended (and its instance shipped its last)",
    )
    lg.add_argument(
        "--poll-seconds", type=float, default=2.0, help="--follow's poll interval (default 2)"
    )
    lg.add_argument(
        "--linger-seconds",
        type=float,
        default=15.0,
        help="--follow: keep reading this long after the run ended (default 15)",
    )

    pub = commands.add_parser(
        "publish-model",
        parents=[common],
        help="upload a model directory (manifest last)",
        description="Upload every file of a local model directory with its checksums, then "
        "manifest.json; the next run copies it.",
    )
    pub.add_argument("directory", type=Path, help="the local model directory")
    pub.add_argument(
        "--prefix",
        default="models/current/",
        help="S3 prefix under models/, ending in / (default models/current/)",
    )
    pub.add_argument(
        "--no-entry-point",
        action="store_true",
        help="publish a model without run.sh at its top (only when the stack's model_command, "
        "model_shell_command or container image runs it)",
    )

    commands.add_parser(
        "doctor",
        parents=[common],
        help="check a deployed stack",
        description="Bucket, model, activity, launch template, AMI, schedule and its next fire "
        "time, instance type offerings in the subnets' zones.",
    )
    return parser


def _stack(args: argparse.Namespace) -> Stack:
    flags = {name: getattr(args, name, None) for name in FIELDS}
    return Stack(flags, outputs_file=args.outputs_file, terraform_dir=args.terraform_dir)


def _clients(args: argparse.Namespace, stack: Stack) -> Clients:
    return Clients(region=stack.get("region"), profile=args.profile, endpoint_url=args.endpoint_url)


def _print_json(value: Any, out: TextIO) -> None:
    print(json.dumps(value, indent=1, default=str), file=out)


def _connection_flags(args: argparse.Namespace) -> list[str]:
    """The AWS and stack options this command was given, to repeat in the commands it prints."""
    flags: list[str] = []
    given: list[tuple[str, object]] = [
        ("--profile", args.profile),
        ("--endpoint-url", args.endpoint_url),
        ("--terraform-dir", args.terraform_dir),
        ("--outputs-file", args.outputs_file),
    ]
    given += [(field.flag, getattr(args, name, None)) for name, field in FIELDS.items()]
    for flag, value in given:
        if value is not None:
            flags += [flag, str(value)]
    return flags


def next_commands(args: argparse.Namespace, name: str) -> list[str]:
    """The commands that follow, cancel and read the logs of run ``name``, ready to paste."""
    flags = _connection_flags(args)
    return [
        shlex.join(["gpurun", command, name, *flags]) for command in ("follow", "cancel", "logs")
    ]


def _follow(
    args: argparse.Namespace,
    clients: Clients,
    stack: Stack,
    execution_arn: str,
    name: str,
    *,
    out: TextIO,
) -> int:
    """Follow one execution to its end (or --timeout); its outcome as an exit code. With --json,
    one JSON object a line as each phase happens, the outcome (``"event": "end"``) last. When
    the agent's log group is known, its milestones (the copy's progress) come in between."""
    sfn = clients.client("stepfunctions")
    agent_group = stack.get("agent_log_group")
    milestones = None
    if agent_group:
        milestones = logs.milestone_progress(
            sfn,
            clients.client("logs"),
            stack.require("state_machine_arn"),
            execution_arn,
            agent_group,
        )

    def show(p: runs.Progress) -> None:
        if args.json:
            print(json.dumps({"event": "phase", **p.as_dict()}), file=out, flush=True)
        else:
            print(f"{p.timestamp:%H:%M:%S} {p.phase:<14} {p.message}", file=out, flush=True)

    with deferred_interrupt() as sleep:
        final = runs.follow(
            sfn,
            execution_arn,
            show,
            poll_seconds=args.poll_seconds,
            timeout_seconds=args.timeout,
            sleep=sleep,
            more_progress=milestones,
        )
    state = str(final["status"])
    if args.json:
        end = {
            "event": "end",
            "execution_arn": execution_arn,
            "name": name,
            "status": state,
            "error": final.get("error"),
            "cause": final.get("cause"),
        }
        print(json.dumps(end), file=out)
    else:
        print(
            f"{name}: {state}"
            + (f" ({final.get('error')}: {final.get('cause')})" if final.get("error") else ""),
            file=out,
        )
    return EXIT_BY_STATUS.get(state, EXIT_FAILED)


class Interrupted(Exception):
    """Ctrl-C while following a run: the run goes on; the message says how to reach it."""

    def __init__(self, name: str, commands: list[str]) -> None:
        self.name = name
        self.commands = commands
        follow, cancel_ = commands[0], commands[1]
        super().__init__(
            f"stopped following; {name} goes on running. Follow it: {follow}  Cancel it: {cancel_}"
        )


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    stack = _stack(args)
    overrides = runs.parse_overrides(args.overrides)
    machine = stack.require("state_machine_arn")
    clients = _clients(args, stack)
    sfn = clients.client("stepfunctions")
    run_checks.check_run_input(overrides, run_checks.run_defaults(sfn, machine))
    running = run_checks.running_executions(sfn, machine)
    if running:
        names = ", ".join(str(e["name"]) for e in running)
        first = str(running[0]["name"])
        raise GpurunError(
            f"a run is in progress ({names}), one run at a time, so none was started; follow it "
            f"with `{next_commands(args, first)[0]}` or cancel it with "
            f"`{next_commands(args, first)[1]}`"
        )
    execution_arn, name = runs.start_execution(sfn, machine, overrides, args.name)
    commands = next_commands(args, name)
    if args.json:
        started = {
            "event": "started",
            "execution_arn": execution_arn,
            "name": name,
            "status": "RUNNING",
            "next_commands": commands,
        }
        print(json.dumps(started), file=out, flush=True)
    else:
        print(f"started {name}\n  {execution_arn}", file=out)
        print(f"  follow: {commands[0]}", file=out)
        print(f"  cancel: {commands[1]}", file=out)
        print(f"  logs:   {commands[2]}", file=out, flush=True)
    if args.no_follow:
        return EXIT_OK
    try:
        return _follow(args, clients, stack, execution_arn, name, out=out)
    except KeyboardInterrupt:
        raise Interrupted(name, commands) from None


def cmd_follow(args: argparse.Namespace, out: TextIO) -> int:
    stack = _stack(args)
    clients = _clients(args, stack)
    sfn = clients.client("stepfunctions")
    described = runs.describe_run(sfn, stack.require("state_machine_arn"), args.run)
    name, execution_arn = str(described["name"]), str(described["executionArn"])
    try:
        return _follow(args, clients, stack, execution_arn, name, out=out)
    except KeyboardInterrupt:
        raise Interrupted(name, next_commands(args, name)) from None


def cmd_cancel(args: argparse.Namespace, out: TextIO) -> int:
    stack = _stack(args)
    clients = _clients(args, stack)
    sfn = clients.client("stepfunctions")
    machine = stack.require("state_machine_arn")
    if args.run is None:
        running = run_checks.running_executions(sfn, machine)
        if not running:
            raise GpurunError("no run is in progress; `gpurun status` lists the recent runs")
        if len(running) > 1:
            names = ", ".join(str(e["name"]) for e in running)
            raise GpurunError(f"{len(running)} runs are in progress ({names}); name the one")
        described = dict(running[0])
    else:
        described = runs.describe_run(sfn, machine, args.run)
    name, execution_arn = str(described["name"]), str(described["executionArn"])
    if described["status"] != "RUNNING":
        raise GpurunError(
            f"{name} already ended ({described['status']}); nothing to cancel. "
            f"`{shlex.join(['gpurun', 'logs', name, *_connection_flags(args)])}` shows its logs"
        )
    who = cancel.operator(clients.client("sts"))
    cause = cancel.stop_execution(sfn, execution_arn, who)
    if not args.json:
        print(f"stopped {name} (cancelled by {who}); waiting for its instance", file=out)

    def changed(instances: dict[str, str]) -> None:
        if not args.json and instances:
            shown = ", ".join(f"{i} {s}" for i, s in sorted(instances.items()))
            print(f"  {shown}", file=out, flush=True)

    outcome = cancel.wait_for_termination(
        clients.client("ec2"),
        execution_arn,
        timeout_seconds=args.wait_seconds,
        poll_seconds=args.poll_seconds,
        on_change=changed,
    )
    if args.json:
        _print_json(
            {
                "execution_arn": execution_arn,
                "name": name,
                "status": "ABORTED",
                "cancelled_by": who,
                "cause": cause,
                "instances": outcome.instances,
                "all_terminated": outcome.all_terminated,
            },
            out,
        )
    elif not outcome.instances:
        print(f"{name}: ABORTED; it had no instance", file=out)
    elif outcome.all_terminated:
        print(f"{name}: ABORTED; instance {', '.join(outcome.instances)} terminated", file=out)
    else:
        left = ", ".join(f"{i} ({s})" for i, s in outcome.left.items())
        print(
            f"{name}: ABORTED, but after {args.wait_seconds:g} s instance {left} is not "
            f"terminated; check the nets, or terminate it: aws ec2 terminate-instances "
            f"--instance-ids {' '.join(outcome.left)}",
            file=out,
        )
    return EXIT_OK if outcome.all_terminated else EXIT_FAILED


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    if args.last < 1:
        raise GpurunError("--last must be >= 1")
    stack = _stack(args)
    clients = _clients(args, stack)
    rows = status.run_rows(
        clients.client("stepfunctions"),
        clients.client("s3"),
        stack.require("state_machine_arn"),
        stack.require("model_bucket"),
        region=clients.region,
        limit=args.last,
    )
    if args.json:
        _print_json(rows, out)
    else:
        print(status.format_rows(rows) if rows else "no runs yet", file=out)
        if rows and args.phases:
            print("\n" + status.format_phases(rows), file=out)
    return EXIT_OK


def cmd_logs(args: argparse.Namespace, out: TextIO) -> int:
    stack = _stack(args)
    clients = _clients(args, stack)
    ref = logs.resolve_run(
        clients.client("stepfunctions"), stack.require("state_machine_arn"), args.run
    )
    agent_group, launcher_group = stack.get("agent_log_group"), stack.get("launcher_log_group")
    if not agent_group and not launcher_group:
        raise GpurunError(
            "no log group known: pass --agent-log-group / --launcher-log-group or --terraform-dir"
        )
    logs_client = clients.client("logs")
    for group, flag in (
        (agent_group, "--agent-log-group"),
        (launcher_group, "--launcher-log-group"),
    ):
        if group:
            logs.require_group(logs_client, group, flag, clients.region)
    if args.follow:
        return _follow_logs(
            args,
            out,
            sfn=clients.client("stepfunctions"),
            logs_client=logs_client,
            state_machine_arn=stack.require("state_machine_arn"),
            groups=(agent_group, launcher_group),
        )
    lines = logs.run_lines(logs_client, agent_group, launcher_group, ref, datetime.now(UTC))
    if args.json:
        _print_json(
            {
                "execution_arn": ref.execution_arn,
                "instance_id": ref.instance_id,
                "lines": [line.as_dict() for line in lines],
            },
            out,
        )
        return EXIT_OK
    if ref.instance_id is None:
        print(f"{ref.name} never got an instance: launcher lines only", file=out)
    for line in lines:
        _print_line(line, args, out)
    if not lines:
        # The groups exist: on AWS the CloudWatch agent ships within seconds to a minute.
        print(f"no log lines for {ref.name} yet: the agent's lines can take a minute", file=out)
    return EXIT_OK


def _print_line(line: logs.LogLine, args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        print(json.dumps(line.as_dict()), file=out, flush=True)
        return
    at = datetime.fromtimestamp(line.timestamp_ms / 1000, UTC)
    print(f"{at:%Y-%m-%d %H:%M:%S} [{line.source}] {line.message}", file=out, flush=True)


def _follow_logs(
    args: argparse.Namespace,
    out: TextIO,
    *,
    sfn: Any,
    logs_client: Any,
    state_machine_arn: str,
    groups: tuple[str | None, str | None],
) -> int:
    """``logs --follow``: every line as it arrives (with --json, one JSON object a line)."""
    try:
        with deferred_interrupt() as sleep:
            ref = logs.follow_lines(
                sfn,
                logs_client,
                state_machine_arn,
                args.run,
                groups=groups,
                on_line=lambda line: _print_line(line, args, out),
                poll_seconds=args.poll_seconds,
                linger_seconds=args.linger_seconds,
                sleep=sleep,
            )
    except KeyboardInterrupt:
        raise Interrupted(args.run, next_commands(args, args.run)) from None
    if not args.json:
        print(f"{ref.name} has ended", file=out)
    return EXIT_OK


def cmd_publish(args: argparse.Namespace, out: TextIO) -> int:
    from instance_agent.publish import PublishError, publish_model

    stack = _stack(args)
    if not args.prefix.startswith("models/") or not args.prefix.endswith("/"):
        raise GpurunError(
            f"--prefix {args.prefix!r} must start with models/ and end with / "
            "(e.g. models/current/)"
        )
    bucket = stack.require("model_bucket")
    s3 = _clients(args, stack).client("s3")
    try:
        manifest = publish_model(
            s3,
            args.directory,
            bucket,
            args.prefix,
            progress=TransferProgress(out, json_lines=args.json),
            require_entry_point=not args.no_entry_point,
        )
    except PublishError as exc:
        raise GpurunError(str(exc)) from exc
    result = {
        "bucket": bucket,
        "prefix": args.prefix,
        "files": len(manifest.files),
        "bytes": manifest.total_bytes,
        "model_version": manifest.model_version,
    }
    if args.json:
        # The last of the JSON lines (the progress events came before it).
        print(json.dumps({"event": "published", **result}), file=out)
    else:
        print(
            f"published {result['files']} file(s), {result['bytes']} bytes, "
            f"version {result['model_version']} "
            f"to s3://{bucket}/{args.prefix}",
            file=out,
        )
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace, out: TextIO) -> int:
    stack = _stack(args)
    checks = doctor.run_checks(_clients(args, stack), stack)
    if args.json:
        _print_json([c.as_dict() for c in checks], out)
    else:
        for check in checks:
            print(check.render(), file=out)
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILED


COMMANDS = {
    "run": cmd_run,
    "follow": cmd_follow,
    "cancel": cmd_cancel,
    "status": cmd_status,
    "logs": cmd_logs,
    "publish-model": cmd_publish,
    "doctor": cmd_doctor,
}


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args, out)
    except Interrupted as exc:
        print(f"gpurun {args.command}: {exc}", file=err)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"gpurun {args.command}: interrupted", file=err)
        return EXIT_INTERRUPTED
    except GpurunError as exc:
        print(f"gpurun {args.command}: {exc}", file=err)
    except NoCredentialsError:
        print(
            f"gpurun {args.command}: no AWS credentials; pass --profile or set AWS_PROFILE",
            file=err,
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(
            f"gpurun {args.command}: AWS refused {exc.operation_name}: "
            f"{error.get('Code')}: {error.get('Message')}",
            file=err,
        )
    except BotoCoreError as exc:
        print(
            f"gpurun {args.command}: {exc}; check --region/--endpoint-url and the network"
            + local_demo_hint(),
            file=err,
        )
    return EXIT_USAGE
