"""``make demo``: one complete weekly run against an emulated AWS on 127.0.0.1.

Trains the embedded model (once; cached under .demo/), starts the local AWS, deploys what
Terraform declares, publishes the model with the agent's ``publish`` command, starts one
execution and prints a line per phase as it completes, then a summary: the execution's status,
the instance's final state, where the results are, the metrics, and the timeline as text and as
a PNG chart (next to the results in the bucket, and in .demo/<execution name>/).

Exit code 0 only when the execution SUCCEEDED and its instance is terminated. Everything the
demo starts (the emulator, the agents, the model processes) is stopped on exit and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from gpurun.stack import LOCAL_DEMO_ENV_FILE
from local_aws.deployment import FUNCTIONS_DIR, REPO_ROOT, LocalSettings
from local_aws.faults import corrupt_object
from local_aws.local_run import LocalRun, LocalRunError, RunOutcome, cached_model
from local_aws.process_machine import DEMO_MODEL_COMMAND, InstanceOptions, KillPoint
from local_aws.server import LocalAws, local_aws_server
from local_aws.stack_files import write_stack_files
from local_aws.timeline import Phase, compute_phases, phases_of, timeline_text, write_chart
from run_contract.limits import (
    EXECUTION_TIMEOUT_SECONDS,
    HEARTBEAT_INTERVAL_FLOOR_SECONDS,
    HEARTBEAT_TIMEOUT_SECONDS_MIN,
    MAX_RUNTIME_SECONDS,
)

DEMO_DIR = REPO_ROOT / ".demo"
# The file --corrupt-model damages: the model's weights, listed in the published manifest.
CORRUPTED_FILE = "weights.npz"
# How long the instance may take to be terminated once the execution has ended.
TERMINATION_WAIT_SECONDS = 30.0
# --vm: the execution's timeout at least (a TCG boot takes minutes), and how long a guest gets
# to power off after its termination.
VM_EXECUTION_TIMEOUT_SECONDS = 1800
VM_POWER_OFF_WAIT_SECONDS = 180.0
KILL_POINTS = {"before-poll": KillPoint.BEFORE_POLL, "after-task": KillPoint.AFTER_TASK_TAKEN}


class DemoError(Exception):
    """The demo cannot run as asked; the message names the option and what to do."""


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be more than 0 seconds")
    return value


def _seconds_between(low: int, high: int, terraform_variable: str) -> Callable[[str], int]:
    """An option whose bounds are those of Terraform's ``terraform_variable`` (run_contract)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{value} is outside {low}..{high}, the bounds Terraform's "
                f"{terraform_variable} accepts"
            )
        return value

    return parse


def _command(text: str) -> list[str]:
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"cannot split {text!r} into words: {exc}") from None
    if not words:
        raise argparse.ArgumentTypeError("the model command is empty")
    return words


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local_aws.demo",
        description="One complete weekly run against an emulated AWS on 127.0.0.1.",
        epilog=(
            'Examples (through make: make demo ARGS="..."):\n'
            "  --model-command 'sh -c \"exit 3\"'          the run fails: ModelCommandFailed\n"
            "  --model-command 'sleep 60' --max-runtime 5  ModelRunTimedOut\n"
            "  --kill-agent after-task                     States.HeartbeatTimeout\n"
            "  --kill-agent before-poll                    InstanceLost, when the instance halts\n"
            "  --abort-after 3                             ABORTED, then the rule's cleanup"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model-command",
        type=_command,
        default=None,
        help="the model command the agent runs, split like a shell would (default: the "
        "embedded scorer, python -m local_aws.demo_model.score)",
    )
    parser.add_argument(
        "--max-runtime",
        type=_seconds_between(*MAX_RUNTIME_SECONDS, "max_runtime_seconds"),
        default=60,
        metavar="SECONDS",
        help="max_runtime_seconds: the agent kills the model past this (default 60)",
    )
    parser.add_argument(
        "--heartbeat-timeout",
        type=_seconds_between(
            HEARTBEAT_TIMEOUT_SECONDS_MIN, EXECUTION_TIMEOUT_SECONDS[1], "heartbeat_timeout_seconds"
        ),
        default=HEARTBEAT_TIMEOUT_SECONDS_MIN,
        metavar="SECONDS",
        help="the RunModel state's HeartbeatSeconds; the agent beats every quarter of it, "
        f"at most every {HEARTBEAT_INTERVAL_FLOOR_SECONDS} s, as Terraform configures it "
        f"(default and minimum {HEARTBEAT_TIMEOUT_SECONDS_MIN})",
    )
    parser.add_argument(
        "--execution-timeout",
        type=_seconds_between(*EXECUTION_TIMEOUT_SECONDS, "execution_timeout_seconds"),
        default=EXECUTION_TIMEOUT_SECONDS[0],
        metavar="SECONDS",
        help="the state machine's TimeoutSeconds, the last net behind a run nobody ends "
        f"(default and minimum {EXECUTION_TIMEOUT_SECONDS[0]})",
    )
    parser.add_argument(
        "--no-instance-store",
        action="store_true",
        help="the local instance has no NVMe instance-store disk: NoInstanceStore",
    )
    parser.add_argument(
        "--kill-agent",
        choices=sorted(KILL_POINTS),
        default=None,
        help="kill the agent before it polls for its task, or right after it took it",
    )
    parser.add_argument(
        "--corrupt-model",
        action="store_true",
        help=f"flip one byte of the published {CORRUPTED_FILE}: ModelChecksumMismatch",
    )
    parser.add_argument(
        "--model-padding-mib",
        type=_non_negative_int,
        default=8,
        metavar="MIB",
        help="random MiB added to the model so the copy has something to move (default 8)",
    )
    parser.add_argument(
        "--abort-after",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="StopExecution this long after the start: ABORTED, then the rule's cleanup",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="after the summary, keep the emulator up (its endpoint is printed) until Ctrl-C",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="echo the agent's log (with --vm: the guest's serial console), prefixed with the "
        "instance",
    )
    parser.add_argument(
        "--vm",
        action="store_true",
        help="boot the instance as a real Debian guest under QEMU (local_aws/vm; a few minutes "
        "under TCG): cloud-init, the user data's bootstrap and the agent's unit run for real",
    )
    return parser


# -- output -------------------------------------------------------------------------------------


class Console:
    """Progress lines on the terminal; the launcher's log stays in its log group (launcher.log)."""

    def __init__(self, stream: IO[str], started: float) -> None:
        self.stream = stream
        self.started = started

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def phase(self, phase: Phase) -> None:
        seconds = phase.seconds
        took = f"{seconds:6.2f} s" if seconds is not None else "     - "
        self.line(f"[{phase.name:<6}] {took}  {phase.detail}")


class PhaseProgress:
    """Prints each phase once, when it completes, in the order they complete."""

    def __init__(self, console: Console, run: LocalRun, execution_arn: str) -> None:
        self.console = console
        self.run = run
        self.execution_arn = execution_arn
        self.printed: set[str] = {"deploy"}
        self.notes: set[str] = set()

    def phases(self) -> list[Phase]:
        history = self.run.history(self.execution_arn)
        states = self.run.instance_states(self.execution_arn)
        events = [e for i in states for e in self.run.instances.events_of(i)]
        final = ", ".join(sorted(set(states.values()))) if states else None
        self._notes(history, states)
        return compute_phases(
            deploy_window=(self.run.deploy_started_at, self.run.deploy_ended_at),
            history=history,
            instance_events=events,
            instance_state=final if final == "terminated" else None,
        )

    def _notes(self, history: Sequence[Any], states: dict[str, str]) -> None:
        for instance_id in states:
            if instance_id not in self.notes:
                self.notes.add(instance_id)
                self.console.line(f"         instance {instance_id} launched")
        for event in history:
            if (
                event.type in ("ActivityFailed", "ActivityTimedOut")
                and event.type not in self.notes
            ):
                self.notes.add(event.type)
                self.console.line(
                    f"         the run failed: {event.details.get('error')} "
                    "(the workflow still stops the instance)"
                )

    def tick(self) -> None:
        for phase in sorted(
            (p for p in self.phases() if p.done and p.name not in self.printed),
            key=lambda p: p.end or 0.0,
        ):
            self.printed.add(phase.name)
            self.console.phase(phase)

    def finish(self, phases: Sequence[Phase]) -> None:
        """Print what completed since the last tick, then the phases never reached."""
        for phase in phases:
            if phase.done and phase.name not in self.printed:
                self.printed.add(phase.name)
                self.console.phase(phase)
        for phase in phases:
            if phase.name not in self.printed:
                self.console.line(f"[{phase.name:<6}]      -   not reached")


# -- the run --------------------------------------------------------------------------------


def execution_name(now: datetime | None = None) -> str:
    moment = now or datetime.now(UTC)
    return "demo-" + moment.strftime("%Y%m%d-%H%M%S")


def settings_from(args: argparse.Namespace) -> LocalSettings:
    """The local deployment's settings; refuses timeouts that contradict each other."""
    if args.heartbeat_timeout >= args.execution_timeout:
        raise SystemExit(
            f"--heartbeat-timeout {args.heartbeat_timeout} must be below --execution-timeout "
            f"{args.execution_timeout}: a heartbeat miss could never fail the run first"
        )
    return LocalSettings(
        max_runtime_seconds=args.max_runtime,
        heartbeat_timeout_seconds=args.heartbeat_timeout,
        # The task may run its max runtime plus the copy and the upload.
        activity_timeout_seconds=args.max_runtime + 60,
        execution_timeout_seconds=args.execution_timeout,
        # The launcher's minimum (5 minutes), or longer than the whole execution: the sweeper is
        # the net behind everything else, never the one that ends a healthy run.
        max_instance_lifetime_minutes=max(5, -(-args.execution_timeout // 60) + 1),
        # --vm: the scorer the guest's image layer holds (a host path means nothing there).
        model_command=vm_model_command() if args.vm else (),
    )


def vm_model_command() -> tuple[str, ...]:
    from local_aws.vm.seed import VM_MODEL_COMMAND  # lazy: --vm only

    return VM_MODEL_COMMAND


def options_from(args: argparse.Namespace) -> InstanceOptions:
    return InstanceOptions(
        instance_store=not args.no_instance_store,
        model_command=args.model_command or DEMO_MODEL_COMMAND,
        kill_agent=KILL_POINTS[args.kill_agent] if args.kill_agent else None,
        echo_output=args.verbose,
    )


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so every ``with`` block stops what it started."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _abort_later(run: LocalRun, execution_arn: str, seconds: float, console: Console) -> None:
    def abort() -> None:
        if run.status(execution_arn) == "RUNNING":
            console.line(f"         --abort-after {seconds:g}: StopExecution")
            run.aws.client("stepfunctions").stop_execution(
                executionArn=execution_arn, error="DemoAbort", cause="--abort-after"
            )

    timer = threading.Timer(seconds, abort)
    timer.daemon = True
    timer.start()


def _metrics_text(local_dir: Path) -> str:
    metrics = local_dir / "metrics.json"
    if not metrics.is_file():
        return "(no metrics.json in the results)"
    return json.dumps(json.loads(metrics.read_text(encoding="utf-8")))


def vm_backend(args: argparse.Namespace) -> Any:
    """The VM backend for --vm (imported only then: it may build the guest image)."""
    from local_aws.vm.qemu import VmBackend, VmOptions
    from local_aws.vm.seed import SeedOptions

    if args.kill_agent:
        raise DemoError(
            "--kill-agent is a knob of the process backend; it cannot be used with --vm"
        )
    overrides = {"run": {"command": list(args.model_command)}} if args.model_command else {}
    return VmBackend(
        VmOptions(
            instance_store_disks=0 if args.no_instance_store else 2,
            echo_console=args.verbose,
            seed=SeedOptions(config_overrides=overrides),
        )
    )


def publish_vm_agent(aws: LocalAws, bucket: str, local_dir: Path, console: Console) -> None:
    """--vm: the guest's bootstrap downloads the agent artifact (make build's) from S3."""
    from local_aws.vm.artifact import build_agent_artifact, publish_artifact

    uri = publish_artifact(aws, build_agent_artifact(local_dir / "instance-agent.tar.gz"), bucket)
    console.line(f"         --vm: the agent artifact (make build's) published to {uri}")


def wait_for_guests(backend: Any) -> None:
    """--vm: EC2 terminated the instance and its guest is powering off; let it finish."""
    for machine in getattr(backend, "machines", []):
        machine.wait_for_exit(VM_POWER_OFF_WAIT_SECONDS)


def run_demo(args: argparse.Namespace, console: Console) -> int:
    name = execution_name()
    local_dir = DEMO_DIR / name
    local_dir.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    model_dir = cached_model(DEMO_DIR, args.model_padding_mib)
    console.line(f"[model ] {time.monotonic() - started:6.2f} s  {model_dir}")

    with (
        local_aws_server(activity_poll_seconds=5) as aws,
        LocalRun(
            aws,
            settings=settings_from(args),
            work_dir=local_dir,
            model_dir=model_dir,
            instance_options=None if args.vm else options_from(args),
            backend=vm_backend(args) if args.vm else None,
        ) as run,
    ):
        deployed = run.deployed
        if args.vm:
            publish_vm_agent(aws, deployed.bucket_name, local_dir, console)
        console.phase(
            Phase(
                "deploy",
                run.deploy_started_at,
                run.deploy_ended_at,
                f"local AWS at {aws.endpoint_url}, with the values Terraform plans for "
                f"terraform/; model published to "
                f"s3://{deployed.bucket_name}/{run.settings.model_prefix}",
            )
        )
        if args.corrupt_model:
            key = run.settings.model_prefix + CORRUPTED_FILE
            corrupt_object(aws, deployed.bucket_name, key)
            console.line(
                f"         --corrupt-model: flipped one byte of s3://{deployed.bucket_name}/{key}"
            )
        arn = run.start_execution(name)
        console.line(f"         execution {name} started")
        progress = PhaseProgress(console, run, arn)
        if args.abort_after is not None:
            _abort_later(run, arn, args.abort_after, console)
        run.wait_for_end(arn, args.execution_timeout + 30, on_tick=progress.tick)
        run.wait_for_instances_terminated(arn, TERMINATION_WAIT_SECONDS)
        if args.vm:
            wait_for_guests(run.backend)
        outcome = run.outcome(arn)
        phases = phases_of(outcome, (run.deploy_started_at, run.deploy_ended_at))
        progress.finish(phases)

        run.download_results(outcome.results_prefix, local_dir / "results")
        # The launcher's log and metrics lines, from its log group as Lambda shipped them.
        run.download_function_log(deployed.launcher_function_name, local_dir / "launcher.log")
        chart = write_chart(
            phases,
            run.deploy_started_at,
            f"{name}: {outcome.status}",
            local_dir / "timeline.png",
        )
        chart_key = outcome.results_prefix + "timeline.png"
        aws.client("s3").upload_file(str(chart), deployed.bucket_name, chart_key)

        terminated = outcome.all_instances_terminated
        _summary_head(console, name, outcome)
        bucket_url = f"s3://{deployed.bucket_name}/{outcome.results_prefix}"
        manifest = "with its manifest" if outcome.manifest_present else "no results manifest"
        console.line(f"  results    {bucket_url} ({manifest})")
        console.line(f"  local copy {_relative(local_dir / 'results')}/")
        console.line(f"  metrics    {_metrics_text(local_dir / 'results')}")
        console.line(f"  chart      {_relative(chart)} and s3://{deployed.bucket_name}/{chart_key}")
        console.line(
            f"  logs       {_relative(local_dir)}/instances/<id>/"
            f"{'console.log (serial)' if args.vm else 'agent.log'}, launcher.log"
        )
        console.line("  timeline   (seconds since the deploy began)")
        console.line(timeline_text(phases, run.deploy_started_at))
        console.line(f"  wall time  {time.monotonic() - started:.1f} s")

        if args.keep_running:
            _keep_running(aws, run, name, console)
    return 0 if outcome.succeeded and terminated else 1


def _summary_head(console: Console, name: str, outcome: RunOutcome) -> None:
    """The summary's first lines: the execution, its error, its instances."""
    console.line()
    console.line("Summary")
    console.line(f"  execution  {name}: {outcome.status}")
    if outcome.error:
        cause = _cause_text(outcome.cause)
        console.line(f"  error      {outcome.error}" + (f": {cause}" if cause else ""))
    for instance_id, state in sorted(outcome.instance_states.items()):
        console.line(f"  instance   {instance_id}: {state}")
    if not outcome.instance_states:
        console.line("  instance   none was launched")


def _cause_text(cause: str | None, limit: int = 300) -> str:
    """The cause's first line; a Lambda error payload (JSON) gives its errorMessage."""
    text = (cause or "").strip()
    with contextlib.suppress(ValueError):
        payload = json.loads(text)
        if isinstance(payload, dict) and isinstance(payload.get("errorMessage"), str):
            text = payload["errorMessage"]
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _keep_running(aws: LocalAws, run: LocalRun, name: str, console: Console) -> None:
    """Serve the stack until Ctrl-C, with the files that point ``gpurun`` at it."""
    files = write_stack_files(REPO_ROOT / LOCAL_DEMO_ENV_FILE.parent, aws, run.deployed)
    try:
        console.line()
        console.line(f"The local AWS stays up at {aws.endpoint_url} until Ctrl-C.")
        console.line(f"  outputs    {_relative(files.outputs)} (as `terraform output -json`)")
        console.line(f"  env file   {_relative(files.env)} (endpoint, region, fake credentials)")
        console.line("In another terminal, from this directory:")
        for command in (
            f"source {_relative(files.env)}",
            "gpurun status",
            f"gpurun logs {name}",
            "gpurun run --set parameters.threshold=0.7",
            "gpurun cancel",
        ):
            console.line(f"  {command}")
        while True:
            time.sleep(1)
    finally:
        files.remove()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.vm:
        # A TCG boot takes minutes: the execution must outlast it.
        args.execution_timeout = max(args.execution_timeout, VM_EXECUTION_TIMEOUT_SECONDS)
    # moto logs every failing state at ERROR; the summary reports the run's error once.
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    # The launcher package sits at the root of the function's zip, which Lambda puts on the
    # path; here functions/ is that root (pytest gets it from pyproject's pythonpath).
    if str(FUNCTIONS_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTIONS_DIR))
    console = Console(sys.stdout, time.monotonic())
    try:
        with _sigterm_as_interrupt():
            return run_demo(args, console)
    except KeyboardInterrupt:
        console.line("\ninterrupted: the emulator, the agents and their models are stopped")
        return 130
    except (LocalRunError, DemoError) as exc:
        console.line(f"demo failed: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
