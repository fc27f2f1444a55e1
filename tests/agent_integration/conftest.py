"""The real agent, as its own process, against a moto server running the real weekly run.

What is real here: the moto server on 127.0.0.1 with the project's workarounds
(local_aws/server.py), the state machine rendered from terraform/'s ASL template by the Terraform
binary, the launcher's handler (run in-process by the Lambda workaround) starting and stopping a
moto instance from a launch template, the model published by the agent's own `publish` command,
and `python -m instance_agent run --config <file>` in a process group of its own, reading its
identity from the fake IMDSv2 (local_aws/imds.py) and its disks from the supervisor's fake sysfs
tree and storage shims (local_aws/supervisor.py's `build_fake_machine`, reused as is).

What differs from AWS, and why: short heartbeat and timeout settings so that a run takes seconds;
`shutdown_command` is a script that records its call (the instance is ended by StopInstance).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from moto.s3.models import S3Backend

from launcher import clients
from launcher.app import handler as launcher_handler
from local_aws import process_tree
from local_aws.imds import FakeImds, describe_from_ec2
from local_aws.moto_workarounds import register_lambda_handler, unregister_lambda_handler
from local_aws.process_machine import InstancePaths, build_fake_machine
from local_aws.server import LocalAws, local_aws_server
from local_aws.terraform_render import render_template_file

REPO_ROOT = Path(__file__).resolve().parents[2]
ASL_TEMPLATE = REPO_ROOT / "terraform/modules/workflow/weekly_run.asl.json.tftpl"
PROJECT = "agent-integration"
LAUNCHER = f"{PROJECT}-launcher"
BUCKET = f"{PROJECT}-models"
MODEL_PREFIX = "models/current/"
RUN_RECORD_NAME = "run.json"
INSTANCE_TYPE = "g4dn.xlarge"
# The agent beats every second; the state machine gives it ten, so a busy 2-core machine
# does not turn a slow beat into a heartbeat timeout.
AGENT_HEARTBEAT_SECONDS = 1
ASL_HEARTBEAT_SECONDS = 10
ACTIVITY_TIMEOUT_SECONDS = 60
EXECUTION_TIMEOUT_SECONDS = 180
# How long a test waits for an execution, an instance or the agent before it fails.
WAIT_SECONDS = 90.0

# The model command: what a scorer does with the contract's environment. It writes the SHA-256
# of every file it finds in MODEL_DIR (so the test sees the bytes the copy delivered) and the
# task's parameters and run name (so the test sees TASK_INPUT and RUN_NAME).
SCORER = """\
import hashlib, json, os, pathlib
model = pathlib.Path(os.environ["MODEL_DIR"])
out = pathlib.Path(os.environ["OUTPUT_DIR"])
task = json.loads(pathlib.Path(os.environ["TASK_INPUT"]).read_text())
lines = [
    f"{p.relative_to(model).as_posix()} {hashlib.sha256(p.read_bytes()).hexdigest()}"
    for p in sorted(model.rglob("*")) if p.is_file()
]
(out / "result.txt").write_text("\\n".join(lines) + "\\n")
(out / "details").mkdir()
(out / "details" / "task.json").write_text(
    json.dumps({"run_name": os.environ["RUN_NAME"], "parameters": task["parameters"]})
)
print(f"scored {len(lines)} model file(s)")
"""
SCORER_COMMAND = (sys.executable, "-c", SCORER)

# A model that runs until it is killed, with a child of its own (a model's data loader, say);
# it writes both pids next to TASK_INPUT (the mount point) once both run.
MODEL_PID_FILE = "model.pids"
SLEEPER = f"""\
import os, pathlib, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
pids = pathlib.Path(os.environ["TASK_INPUT"]).parent / "{MODEL_PID_FILE}"
pids.with_suffix(".tmp").write_text(f"{{os.getpid()}} {{child.pid}}")
pids.with_suffix(".tmp").rename(pids)
print("model running", flush=True)
time.sleep(300)
"""
SLEEPER_COMMAND = (sys.executable, "-c", SLEEPER)


# Package scope: the server changes process-wide moto settings while it runs, which the
# in-process mock_aws tests of other packages must not inherit.
@pytest.fixture(scope="package")
def _local_aws_session() -> Iterator[LocalAws]:
    # A one-second long poll: an agent that finds nothing asks again soon.
    with local_aws_server(activity_poll_seconds=1) as aws:
        yield aws


@dataclasses.dataclass(frozen=True)
class WeeklyRun:
    """The deployed workflow: what a test starts and inspects."""

    aws: LocalAws
    state_machine_arn: str
    activity_arn: str
    bucket: str

    def start(self, execution_input: dict[str, Any] | None = None) -> tuple[str, str]:
        """StartExecution; returns (execution ARN, execution name)."""
        name = f"weekly-{uuid.uuid4().hex[:12]}"
        arn: str = self.aws.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn,
            name=name,
            input=json.dumps(execution_input or {}),
        )["executionArn"]
        return arn, name

    def instance_of(self, execution_arn: str) -> str:
        """The id of the instance the launcher started for the execution (waits for it)."""
        ec2 = self.aws.client("ec2")
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            reservations = ec2.describe_instances(
                Filters=[{"Name": "tag:StepFunctionsExecution", "Values": [execution_arn]}]
            )["Reservations"]
            for reservation in reservations:
                for instance in reservation["Instances"]:
                    instance_id: str = instance["InstanceId"]
                    return instance_id
            status = self.describe(execution_arn)["status"]
            if status != "RUNNING":
                raise AssertionError(f"execution ended {status} before any instance started")
            time.sleep(0.1)
        raise AssertionError(f"no instance for {execution_arn} within {WAIT_SECONDS} s")

    def describe(self, execution_arn: str) -> dict[str, Any]:
        return dict(self.aws.client("stepfunctions").describe_execution(executionArn=execution_arn))

    def wait_for_end(self, execution_arn: str) -> dict[str, Any]:
        """describe_execution once the execution is no longer RUNNING."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            description = self.describe(execution_arn)
            if description["status"] != "RUNNING":
                return description
            time.sleep(0.2)
        raise AssertionError(f"execution {execution_arn} still RUNNING after {WAIT_SECONDS} s")

    def instance_state(self, instance_id: str) -> str:
        reservations = self.aws.client("ec2").describe_instances(InstanceIds=[instance_id])
        state: str = reservations["Reservations"][0]["Instances"][0]["State"]["Name"]
        return state

    def objects(self, prefix: str) -> dict[str, bytes]:
        """Every object under ``prefix`` in the model bucket, by key."""
        s3 = self.aws.client("s3")
        listed = s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        return {
            item["Key"]: s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
            for item in listed
        }


def _deploy(aws: LocalAws) -> WeeklyRun:
    """What Terraform declares for one run, created in the emulator: bucket, network, launch
    template, the launcher function with the real handler, the activity, the state machine."""
    aws.client("s3").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": aws.region}
    )
    ec2 = aws.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(
        VpcId=vpc_id, CidrBlock="10.40.1.0/24", AvailabilityZone=f"{aws.region}a"
    )["Subnet"]["SubnetId"]
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    template_id = ec2.create_launch_template(
        LaunchTemplateName=PROJECT,
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": INSTANCE_TYPE,
            "InstanceInitiatedShutdownBehavior": "terminate",
            "MetadataOptions": {"HttpTokens": "required"},
        },
    )["LaunchTemplate"]["LaunchTemplateId"]

    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role_arn = aws.client("iam").create_role(
        RoleName=PROJECT, AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    # The handler runs in this process; its boto3 clients must reach the emulator.
    connection = {k: v for k, v in aws.child_env({}).items() if k.startswith("AWS_")}
    connection.pop("AWS_REGION", None)  # reserved by Lambda
    launcher_arn = aws.client("lambda").create_function(
        FunctionName=LAUNCHER,
        Runtime="python3.12",
        Role=role_arn,
        Handler="launcher.app.handler",
        Code={"ZipFile": _empty_zip()},
        Timeout=60,
        Environment={
            "Variables": {
                "LAUNCH_TEMPLATE_ID": template_id,
                "LAUNCH_TEMPLATE_VERSION": "$Latest",
                "PROJECT_NAME": PROJECT,
                "MAX_INSTANCE_LIFETIME_SECONDS": "3600",
                "POWERTOOLS_SERVICE_NAME": "launcher",
                "POWERTOOLS_METRICS_NAMESPACE": "AgentIntegrationTest",
                **connection,
            }
        },
    )["FunctionArn"]
    register_lambda_handler(LAUNCHER, launcher_handler)

    sfn = aws.client("stepfunctions")
    activity_arn = sfn.create_activity(name=f"{PROJECT}-run")["activityArn"]
    definition = render_template_file(
        ASL_TEMPLATE,
        {
            "launcher_function_arn": launcher_arn,
            "activity_arn": activity_arn,
            "model_bucket": BUCKET,
            "run_defaults": {
                "instance_types": [INSTANCE_TYPE],
                "subnet_ids": [subnet_id],
                "model_prefix": MODEL_PREFIX,
                "max_runtime_seconds": 60,
                "parameters": {"threshold": 0.5},
            },
            "heartbeat_timeout_seconds": ASL_HEARTBEAT_SECONDS,
            "activity_timeout_seconds": ACTIVITY_TIMEOUT_SECONDS,
            "execution_timeout_seconds": EXECUTION_TIMEOUT_SECONDS,
        },
    )
    state_machine_arn = sfn.create_state_machine(
        name=f"{PROJECT}-weekly-run", definition=definition, roleArn=role_arn
    )["stateMachineArn"]
    return WeeklyRun(aws, state_machine_arn, activity_arn, BUCKET)


def _empty_zip() -> bytes:
    """A deployment package; never run (the handler is registered in-process)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("launcher/__init__.py", "")
    return buffer.getvalue()


# ---- the model ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PublishedModel:
    directory: Path
    files: dict[str, bytes]


def model_files() -> dict[str, bytes]:
    """A small model: a weights file not aligned to any part size, and a nested JSON file."""
    rng = random.Random(20261124)  # noqa: S311 - reproducible test bytes, not a secret
    return {
        "weights.bin": rng.randbytes(3 * 1024 * 1024 + 17),
        "tokenizer/vocab.json": json.dumps({"cat": 0, "dog": 1}).encode(),
    }


def agent_env(aws: LocalAws) -> dict[str, str]:
    """The agent's environment: credentials only. Its endpoint comes from its own config file
    (or the publish command's --endpoint-url), never from AWS_ENDPOINT_URL."""
    env = aws.child_env()
    env.pop("AWS_ENDPOINT_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ---- the agent process --------------------------------------------------------------------


@dataclasses.dataclass
class AgentProcess:
    """One `python -m instance_agent run` on a fake machine, as the instance would run it."""

    instance_id: str
    paths: InstancePaths
    process: subprocess.Popen[bytes]
    imds: FakeImds

    @property
    def shutdown_record(self) -> Path:
        return self.paths.root / "shutdown-calls"

    def shutdown_calls(self) -> list[str]:
        """The argument lines the shutdown command was called with, one per call."""
        if not self.shutdown_record.exists():
            return []
        return self.shutdown_record.read_text(encoding="utf-8").splitlines()

    def log(self) -> str:
        return self.paths.log.read_text(encoding="utf-8", errors="replace")

    @property
    def model_pid_file(self) -> Path:
        return self.paths.mount_point / MODEL_PID_FILE

    def model_pids(self) -> list[int]:
        """The pids SLEEPER_COMMAND wrote (itself and its child); empty before it ran."""
        if not self.model_pid_file.exists():
            return []
        return [int(pid) for pid in self.model_pid_file.read_text(encoding="utf-8").split()]

    def wait_for_model(self) -> list[int]:
        """Wait until SLEEPER_COMMAND runs (both of its processes); returns their pids."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            pids = self.model_pids()
            if len(pids) == 2:  # the sleeper and its child
                return pids
            if self.process.poll() is not None:
                raise AssertionError(f"the agent exited before the model ran:\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"the model did not start within {WAIT_SECONDS} s:\n{self.log()}")

    def wait(self) -> int:
        """The agent's exit code, once it has exited (fails the test past WAIT_SECONDS)."""
        try:
            return self.process.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the agent did not exit within {WAIT_SECONDS} s; its log:\n{self.log()}"
            ) from None

    def kill(self) -> None:
        """Everything the agent started goes too, the model command's own session included."""
        if self.process.poll() is None:
            process_tree.kill_tree(self.process.pid)
        self.process.wait(timeout=10)
        # The model runs in a session of its own: if the agent left it behind, it is still here.
        for pid in self.model_pids():
            if process_tree.is_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.imds.stop()


def write_shutdown_recorder(paths: InstancePaths, record: Path) -> Path:
    """A stand-in for `shutdown`: appends its arguments to ``record``, one line per call."""
    script = paths.root / "bin" / "record-shutdown"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f'#!/bin/sh\necho "$*" >> "{record}"\n', encoding="utf-8")
    script.chmod(0o755)
    return script


def agent_config(
    aws: LocalAws,
    run: WeeklyRun,
    paths: InstancePaths,
    *,
    imds_endpoint: str,
    command: Sequence[str],
    shutdown_command: Sequence[str],
) -> dict[str, Any]:
    """The configuration file, with the keys Terraform sets and the local machine's paths."""
    return {
        "region": aws.region,
        "activity_arn": run.activity_arn,
        "model": {"bucket": run.bucket, "prefix": MODEL_PREFIX},
        "storage": {
            "mount_point": str(paths.mount_point),
            "allow_root_volume_fallback": False,
            "sysfs_root": str(paths.sysfs),
            "mounts_file": str(paths.mounts_file),
        },
        "heartbeat_interval_seconds": AGENT_HEARTBEAT_SECONDS,
        "task_wait_seconds": int(WAIT_SECONDS),
        "run": {"command": list(command), "container_image": None, "kill_grace_seconds": 2},
        "max_runtime_seconds": 60,
        "copy": {"progress_interval_seconds": 0.5},
        "endpoint_url": aws.endpoint_url,
        "imds_endpoint": imds_endpoint,
        "shutdown_command": list(shutdown_command),
    }


def publish_model(aws: LocalAws, bucket: str, directory: Path) -> PublishedModel:
    """Write the model to ``directory`` and publish it with the agent's own `publish` command."""
    files = model_files()
    for relative, data in files.items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_bytes(data)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "instance_agent",
            "publish",
            str(directory),
            "--bucket",
            bucket,
            "--prefix",
            MODEL_PREFIX,
            "--region",
            aws.region,
            "--endpoint-url",
            aws.endpoint_url,
        ],
        env=agent_env(aws),
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"publish failed:\n{done.stdout}\n{done.stderr}"
    return PublishedModel(directory, files)


def boot_agent(
    aws: LocalAws, run: WeeklyRun, instance_id: str, work_dir: Path, command: Sequence[str]
) -> AgentProcess:
    """Boot the agent for an instance: fake disks, fake IMDS, its config file, the process."""
    paths = InstancePaths(work_dir / instance_id)
    paths.root.mkdir(parents=True)
    build_fake_machine(paths, instance_store=True)
    recorder = write_shutdown_recorder(paths, paths.root / "shutdown-calls")
    imds = FakeImds(
        describe_from_ec2(aws.client("ec2"), instance_id),
        region=aws.region,
        account_id=aws.account_id,
    ).start()
    config = agent_config(
        aws,
        run,
        paths,
        imds_endpoint=imds.endpoint,
        command=command,
        shutdown_command=[str(recorder), "-h", "now"],
    )
    paths.config.parent.mkdir(parents=True)
    paths.config.write_text(json.dumps(config, indent=2), encoding="utf-8")
    env = agent_env(aws)
    # The storage shims (mkfs.xfs, mount, mdadm) come first, as the real tools would.
    env["PATH"] = os.pathsep.join([str(paths.shim_bin), env.get("PATH", "")])
    try:
        with paths.log.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "instance_agent", "run", "--config", str(paths.config)],
                cwd=paths.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed whole by kill()
            )
    except BaseException:
        imds.stop()
        raise
    return AgentProcess(instance_id, paths, process, imds)


# ---- one whole run ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FinishedRun:
    """Everything a test looks at once a weekly run has ended and its agent has exited."""

    execution: dict[str, Any]
    execution_name: str
    instance_id: str
    instance_state: str
    results: dict[str, bytes]
    s3_writes: list[str]
    agent_exit_code: int
    agent_log: str
    shutdown_calls: list[str]
    model: PublishedModel
    model_dir: Path
    model_pids_alive: list[int]
    """Processes of the model command (see SLEEPER_COMMAND) still alive once the agent exited."""
    seconds: float
    agent_exit_after_end: float
    """Seconds from the moment the test saw the execution end to the agent's exit."""

    @property
    def results_prefix(self) -> str:
        return f"runs/{self.execution_name}/"

    @property
    def model_results(self) -> dict[str, bytes]:
        """The results prefix without the run record (issue 6's run.json, written by the agent
        on success and on failure): what the model wrote, and the results manifest."""
        record = self.results_prefix + RUN_RECORD_NAME
        return {key: data for key, data in self.results.items() if key != record}

    @property
    def cause(self) -> str:
        return str(self.execution.get("cause", ""))


Tamper = Callable[[WeeklyRun], None]
During = Callable[[WeeklyRun, str, AgentProcess], None]


def run_weekly_execution(
    aws: LocalAws,
    work_dir: Path,
    command: Sequence[str],
    *,
    tamper: Tamper | None = None,
    during: During | None = None,
    execution_input: dict[str, Any] | None = None,
) -> FinishedRun:
    """Deploy, publish the model, start an execution, boot the agent on the instance the
    launcher started, and wait for the execution to end and the agent to exit.

    ``tamper`` runs after the publish, before the execution starts (e.g. to corrupt the model);
    ``during`` runs once the agent has started (with the run, the execution ARN and the agent).
    Everything started here is stopped and the emulator is emptied before this returns.
    """
    started = time.monotonic()
    writes: list[str] = []
    original_put_object = S3Backend.put_object

    def recording_put_object(self: S3Backend, bucket: str, key: str, *a: Any, **kw: Any) -> Any:
        stored = original_put_object(self, bucket, key, *a, **kw)
        writes.append(key)
        return stored

    agent: AgentProcess | None = None
    with pytest.MonkeyPatch.context() as patch:
        # The launcher caches its clients in module attributes: build them for this emulator.
        patch.setattr(clients, "ec2_client", None)
        patch.setattr(clients, "sfn_client", None)
        # Every S3 write, in the order it completed: shows the results manifest came last.
        patch.setattr(S3Backend, "put_object", recording_put_object)
        try:
            run = _deploy(aws)
            model = publish_model(aws, run.bucket, work_dir / "model")
            if tamper is not None:
                tamper(run)
            execution_arn, execution_name = run.start(execution_input)
            instance_id = run.instance_of(execution_arn)
            agent = boot_agent(aws, run, instance_id, work_dir, command)
            if during is not None:
                during(run, execution_arn, agent)
            execution = run.wait_for_end(execution_arn)
            ended = time.monotonic()
            exit_code = agent.wait()
            agent_exit_after_end = time.monotonic() - ended
            return FinishedRun(
                execution=execution,
                execution_name=execution_name,
                instance_id=instance_id,
                instance_state=run.instance_state(instance_id),
                results=run.objects(f"runs/{execution_name}/"),
                s3_writes=list(writes),
                agent_exit_code=exit_code,
                agent_log=agent.log(),
                shutdown_calls=agent.shutdown_calls(),
                model=model,
                model_dir=agent.paths.mount_point / "model",
                model_pids_alive=[pid for pid in agent.model_pids() if process_tree.is_alive(pid)],
                seconds=time.monotonic() - started,
                agent_exit_after_end=agent_exit_after_end,
            )
        finally:
            if agent is not None:
                agent.kill()
            unregister_lambda_handler(LAUNCHER)
            aws.reset()
