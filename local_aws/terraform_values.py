"""What the local deploy takes from Terraform: terraform/'s own plan for the run's settings.

The user data (with the agent configuration in it), the launcher's environment, the state
machine definition, the safety nets' event patterns and input transformers and the schedules
are the values Terraform plans for terraform/ with the local run's settings
(terraform_tools.evaluate, over terraform/tests/mocks, with the local AWS's region and account;
the checks on the timeouts relaxed, see LOCAL_RELAXATIONS). There is no second copy of
them in Python.

Only what AWS assigns differs: the plan gives each such identifier a placeholder (the
activity's ARN, the bucket's name, ... see IDENTIFIERS), which is replaced by the local
deployment's counterpart. A value that holds an identifier of terraform/tests/mocks with no
local counterpart, or a placeholder whose resource the deploy has not created yet, is refused
(`MockIdentifierError`), never deployed.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

import hcl2

from local_aws.launch_template_data import launch_template_data
from local_aws.user_data import agent_config_from_cloud_config, decode_user_data, encoded_files
from terraform_tools import evaluate as tf_evaluate
from terraform_tools import offline as tf_offline

TERRAFORM_DIR = tf_offline.TERRAFORM_DIR
MOCKS_DIR = TERRAFORM_DIR / "tests" / "mocks"

# Root variables the local run has no value for: placeholders the plan needs.
VPC_PLACEHOLDER = "vpc-0123456789abcdef0"
# Any file of terraform/: the plan only hashes it (filemd5) for the agent artifact object.
AGENT_ARTIFACT_PATH_PLACEHOLDER = "versions.tf"

# A local run compresses time: it waits seconds where AWS waits minutes (a heartbeat timeout
# of 8 s, an execution timeout of 2 minutes), and a fault case may break the nesting of the
# timeouts on purpose (an execution timeout shorter than the activity's, to reach TIMED_OUT).
# In the evaluated copy only, these checks of terraform/ are relaxed: the timeouts' lower
# bounds become 1 and the main.tf preconditions on their nesting always hold. Every other
# validation, and every expression, is Terraform's as written (and terraform/tests checks
# these ones).
_LOWER_BOUNDS = (
    ("heartbeat_timeout_seconds", 20),  # the root module and modules/workflow
    ("task_wait_seconds", 60),
    ("activity_timeout_seconds", 60),
    ("execution_timeout_seconds", 300),
    ("max_instance_lifetime_minutes", 5),
    ("max_lifetime_minutes", 5),  # modules/launch_template
)
_NESTING = (
    "var.max_instance_lifetime_minutes * 60 > var.execution_timeout_seconds",
    "var.activity_timeout_seconds < var.execution_timeout_seconds",
    "var.max_runtime_seconds < var.activity_timeout_seconds",
    "var.heartbeat_timeout_seconds < var.activity_timeout_seconds",
    "var.task_wait_seconds < var.execution_timeout_seconds",
)
LOCAL_RELAXATIONS: tuple[tuple[str, str], ...] = tuple(
    (f"var.{name} >= {bound}", f"var.{name} >= 1") for name, bound in _LOWER_BOUNDS
) + tuple((f"condition     = {check}", f"condition     = ({check}) || true") for check in _NESTING)

LAUNCH_TEMPLATE = "module.launch_template.aws_launch_template.this"
INSTANCE_SECURITY_GROUP = "module.launch_template.aws_security_group.this"
INSTANCE_PROFILE = "module.instance_role.aws_iam_instance_profile.this"
LAUNCHER_FUNCTION = "module.launcher_function.aws_lambda_function.this"
STATE_MACHINE = "module.workflow.aws_sfn_state_machine.this"
WEEKLY_SCHEDULE = "module.workflow.aws_scheduler_schedule.this"
SWEEPER_SCHEDULE = "module.safety_nets.aws_scheduler_schedule.sweeper"
EXECUTION_RULE = "module.safety_nets.aws_cloudwatch_event_rule.execution_ended_badly"
EXECUTION_TARGET = "module.safety_nets.aws_cloudwatch_event_target.cleanup"
INSTANCE_LOST_RULE = "module.safety_nets.aws_cloudwatch_event_rule.instance_lost"
INSTANCE_LOST_TARGET = "module.safety_nets.aws_cloudwatch_event_target.instance_lost"

# Each identifier AWS assigns that the local values may hold: (address, attribute) of the plan
# -> a placeholder the evaluation gives it (unlike anything Terraform computes, so replacing it
# can hit nothing else) and the attribute of the local deployment holding its counterpart.
IDENTIFIERS: dict[tuple[str, str], tuple[str, str]] = {
    ("module.workflow.aws_sfn_activity.this", "id"): (
        "arn:aws:states:placeholder:000000000000:activity:placeholder-activity",
        "activity_arn",
    ),
    (STATE_MACHINE, "arn"): (
        "arn:aws:states:placeholder:000000000000:stateMachine:placeholder-state-machine",
        "state_machine_arn",
    ),
    ("module.model_bucket.aws_s3_bucket.this", "id"): ("placeholder-model-bucket", "bucket_name"),
    ("module.model_bucket.aws_s3_bucket.this", "arn"): (
        "arn:aws:s3:::placeholder-model-bucket",
        "bucket_arn",
    ),
    (LAUNCH_TEMPLATE, "id"): ("lt-0placeholder00000", "launch_template_id"),
    (INSTANCE_SECURITY_GROUP, "id"): ("sg-0placeholder00000", "security_group_id"),
    (INSTANCE_PROFILE, "arn"): (
        "arn:aws:iam::000000000000:instance-profile/placeholder-instance-profile",
        "instance_profile_arn",
    ),
    (LAUNCHER_FUNCTION, "arn"): (
        "arn:aws:lambda:placeholder:000000000000:function:placeholder-launcher",
        "launcher_function_arn",
    ),
    ("aws_s3_object.agent_artifact", "version_id"): (
        "placeholder-artifact-version",
        "agent_artifact_version",
    ),
}


def _overrides() -> dict[str, dict[str, str]]:
    overrides: dict[str, dict[str, str]] = {}
    for (address, attribute), (placeholder, _) in IDENTIFIERS.items():
        overrides.setdefault(address, {})[attribute] = placeholder
    return overrides


class MockIdentifierError(RuntimeError):
    """A planned value holds a mock's identifier the local deployment has no counterpart for."""


class LocalDeployment(Protocol):
    """What localizing reads from local_aws.deployment.Deployment."""

    @property
    def subnet_ids(self) -> list[str]: ...

    @property
    def launch_template_version(self) -> str: ...


def subnet_placeholder(index: int) -> str:
    if not 0 <= index < 16:
        raise ValueError(f"subnet placeholder index {index}: 0 to 15")
    return f"subnet-0123456789abcdef{index:x}"


def root_variables(settings: Any) -> dict[str, Any]:
    """terraform/'s root variables for a `local_aws.deployment.LocalSettings`: its fields, and
    placeholders (one subnet per availability zone) for what only a real account has."""
    return {
        "name": settings.name,
        "region": settings.region,
        "instance_types": list(settings.instance_types),
        "model_prefix": settings.model_prefix,
        "run_parameters": dict(settings.run_parameters),
        "model_command": list(settings.model_command),
        "model_shell_command": settings.model_shell_command,
        "warm_paths": list(settings.warm_paths),
        "container_image": settings.container_image,
        "max_runtime_seconds": settings.max_runtime_seconds,
        "allow_root_volume_fallback": settings.allow_root_volume_fallback,
        "heartbeat_timeout_seconds": settings.heartbeat_timeout_seconds,
        "task_wait_seconds": settings.task_wait_seconds,
        "activity_timeout_seconds": settings.activity_timeout_seconds,
        "execution_timeout_seconds": settings.execution_timeout_seconds,
        "max_instance_lifetime_minutes": settings.max_instance_lifetime_minutes,
        "root_volume_size_gib": settings.root_volume_size_gib,
        "schedule_expression": settings.schedule_expression,
        "schedule_timezone": settings.schedule_timezone,
        "sweeper_schedule_expression": settings.sweeper_schedule_expression,
        "ami": settings.ami,
        "vpc_id": VPC_PLACEHOLDER,
        "subnet_ids": [subnet_placeholder(i) for i in range(len(settings.availability_zones))],
        "agent_artifact_path": AGENT_ARTIFACT_PATH_PLACEHOLDER,
    }


def mock_data(region: str, account_id: str) -> dict[str, Any]:
    """The local AWS's region and account, for the data sources ARNs are built from."""
    return {
        "aws_region": {"region": region},
        "aws_caller_identity": {"account_id": account_id},
    }


@cache
def mock_identifiers(mocks: Path = MOCKS_DIR) -> frozenset[str]:
    """The identifiers the shared mocks give resources (their string defaults), except those
    the evaluation overrides with placeholders (IDENTIFIERS): these never reach the plan."""
    overridden = {(address.split(".")[-2], attribute) for address, attribute in IDENTIFIERS}
    found: set[str] = set()
    for path in sorted(mocks.glob("*.tfmock.hcl")):
        with path.open(encoding="utf-8") as handle:
            document = hcl2.load(handle)
        for block in document.get("mock_resource", []):
            for kind, body in block.items():
                for attribute, value in (body.get("defaults") or {}).items():
                    if isinstance(value, str) and (kind.strip('"'), attribute) not in overridden:
                        found.add(value.strip('"'))
    return frozenset(found)


T = TypeVar("T")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


def _replace(value: T, replacements: Mapping[str, str]) -> T:
    if isinstance(value, str):
        for token in sorted(replacements, key=len, reverse=True):  # an ARN before its name
            value = value.replace(token, replacements[token])  # type: ignore[assignment]
        return value
    if isinstance(value, Mapping):
        return {k: _replace(v, replacements) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [_replace(v, replacements) for v in value]  # type: ignore[return-value]
    return value


@dataclass(frozen=True)
class TerraformValues:
    """terraform/'s plan for one set of settings, read with the local deployment's ids."""

    evaluation: tf_evaluate.Evaluation
    subnet_count: int

    def localize(self, value: T, deployment: LocalDeployment, *, what: str) -> T:
        """`value` (taken from this plan) with each placeholder identifier replaced by its
        local counterpart; refused when one has none (yet), or when it holds a mock's."""
        replacements: dict[str, str] = {}
        pending: dict[str, str] = {}
        for (address, attribute), (token, field) in IDENTIFIERS.items():
            planned = self.evaluation.resource(address).get(attribute)
            if planned != token:
                raise MockIdentifierError(
                    f"the plan's {address}.{attribute} is {planned!r}, not the placeholder "
                    f"{token!r} the evaluation gave it"
                )
            local = getattr(deployment, field)
            (replacements if local else pending)[token] = local or field
        subnets = list(deployment.subnet_ids)
        for index in range(self.subnet_count):
            token = subnet_placeholder(index)
            if index < len(subnets):
                replacements[token] = subnets[index]
            else:
                pending[token] = "subnet_ids"
        texts = _strings(value)
        for token, field in pending.items():
            if any(token in text for text in texts):
                raise MockIdentifierError(
                    f"{what}: Terraform's value holds {token!r}, whose local counterpart "
                    f"({field}) the deploy has not created yet: deploy it first"
                )
        for token in sorted(mock_identifiers()):
            if any(token in text for text in texts):
                raise MockIdentifierError(
                    f"{what}: Terraform's value holds the mock identifier {token!r} "
                    "(terraform/tests/mocks), which no local resource stands for: map it in "
                    "local_aws/terraform_values.py IDENTIFIERS"
                )
        return _replace(value, replacements)

    # -- the planned values (placeholder identifiers still in them) ---------------------------

    def user_data(self) -> str:
        """The launch template's user data: the cloud-config text Terraform rendered."""
        return decode_user_data(self.evaluation.resource(LAUNCH_TEMPLATE)["user_data"])

    def agent_config(self) -> dict[str, Any]:
        """The agent configuration the user data writes (read as cloud-init would)."""
        return agent_config_from_cloud_config(self.user_data())

    def launch_template_data(self) -> dict[str, Any]:
        """The launch template's settings as CreateLaunchTemplate's LaunchTemplateData."""
        return launch_template_data(self.evaluation.resource(LAUNCH_TEMPLATE))

    def launcher_environment(self) -> dict[str, str]:
        function = self.evaluation.resource(LAUNCHER_FUNCTION)
        variables: dict[str, str] = dict(function["environment"][0]["variables"])
        return variables

    def state_machine_definition(self) -> str:
        definition: str = self.evaluation.resource(STATE_MACHINE)["definition"]
        return definition

    def event_pattern(self, rule: str) -> str:
        pattern: str = self.evaluation.resource(rule)["event_pattern"]
        return pattern

    def input_transformer(self, target: str) -> dict[str, Any]:
        """A rule target's input transformer, in the PutTargets API's shape."""
        (block,) = self.evaluation.resource(target)["input_transformer"]
        return {
            "InputPathsMap": dict(block["input_paths"]),
            "InputTemplate": block["input_template"],
        }

    def schedule(self, address: str) -> dict[str, Any]:
        """A schedule's expression, time zone, state and target input."""
        planned = self.evaluation.resource(address)
        (target,) = planned["target"]
        return {
            "expression": planned["schedule_expression"],
            "timezone": planned.get("schedule_expression_timezone"),
            "state": planned.get("state") or "ENABLED",
            "input": target.get("input"),
        }

    # -- the same, localized --------------------------------------------------------------------

    def local_user_data(self, deployment: LocalDeployment) -> str:
        """The launch template's UserData attribute (base64) for the local deployment."""
        text = self.user_data()
        # The agent configuration travels base64-encoded inside it (write_files, b64).
        for blob in encoded_files(text):
            content = base64.b64decode(blob).decode("utf-8")
            local = self.localize(content, deployment, what="user data (a write_files entry)")
            text = text.replace(blob, base64.b64encode(local.encode("utf-8")).decode("ascii"))
        text = self.localize(text, deployment, what="user data")
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    def local_launch_template_data(self, deployment: LocalDeployment) -> dict[str, Any]:
        """LaunchTemplateData for the local deployment (its security group and instance
        profile must exist): every setting as planned, the user data localized too."""
        data = self.launch_template_data()
        data["UserData"] = self.local_user_data(deployment)
        return self.localize(data, deployment, what="launch template")

    def local_launcher_environment(self, deployment: LocalDeployment) -> dict[str, str]:
        planned = self.launcher_environment()
        latest = self.evaluation.resource(LAUNCH_TEMPLATE).get("latest_version")
        if planned.get("LAUNCH_TEMPLATE_VERSION") != str(latest):
            raise MockIdentifierError(
                f"launcher environment: LAUNCH_TEMPLATE_VERSION is "
                f"{planned.get('LAUNCH_TEMPLATE_VERSION')!r}, not the launch template's "
                f"latest_version ({latest!r}): update local_aws/terraform_values.py"
            )
        local = self.localize(planned, deployment, what="launcher environment")
        local["LAUNCH_TEMPLATE_VERSION"] = deployment.launch_template_version
        return local

    def local_state_machine_definition(self, deployment: LocalDeployment) -> str:
        return self.localize(
            self.state_machine_definition(), deployment, what="state machine definition"
        )

    def local_event_pattern(self, rule: str, deployment: LocalDeployment) -> str:
        return self.localize(self.event_pattern(rule), deployment, what=f"{rule} event_pattern")


def plan(
    settings: Any, *, account_id: str, root: Path = TERRAFORM_DIR, cache_dir: Path | None = None
) -> TerraformValues:
    """terraform/'s plan for `settings` (a LocalSettings) in the local AWS's account; cached
    on disk after the first time (a plan costs a few seconds of Terraform)."""
    (values,) = plan_many([settings], account_id=account_id, root=root, cache_dir=cache_dir)
    return values


def plan_many(
    settings: Sequence[Any],
    *,
    account_id: str,
    root: Path = TERRAFORM_DIR,
    cache_dir: Path | None = None,
) -> list[TerraformValues]:
    """`plan` for several LocalSettings of one region, planned by one Terraform run."""
    regions = {each.region for each in settings}
    if len(regions) > 1:
        raise ValueError(f"plan_many: one region at a time, got {sorted(regions)}")
    evaluations = tf_evaluate.evaluate_many(
        [root_variables(each) for each in settings],
        root,
        cache_dir or tf_evaluate.EVALUATIONS,
        mock_data=mock_data(regions.pop(), account_id) if settings else {},
        rewrites=LOCAL_RELAXATIONS,
        overrides=_overrides(),
    )
    return [
        TerraformValues(evaluation, subnet_count=len(each.availability_zones))
        for evaluation, each in zip(evaluations, settings, strict=True)
    ]
