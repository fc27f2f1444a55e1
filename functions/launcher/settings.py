"""The function's configuration, read from the environment at invocation time.

Each action reads only what it needs, so a broken launch-template setting can never stop the
stop/cleanup/sweep actions from terminating instances (tenet 1 in docs/design.md).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from launcher.errors import LauncherConfigurationError

_LAUNCH_TEMPLATE_ID = re.compile(r"^lt-[0-9a-f]{17}$")
_STATE_MACHINE_ARN = re.compile(
    r"arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:[A-Za-z0-9_-]{1,80}"
)
_ACTIVITY_ARN = re.compile(
    r"arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:activity:[A-Za-z0-9_-]{1,80}"
)
_LAUNCH_TEMPLATE_VERSION = re.compile(r"^(\$Latest|\$Default|[1-9][0-9]*)$")
# The smallest lifetime that leaves an instance time to boot; anything lower is a typo.
MIN_INSTANCE_LIFETIME_SECONDS = 300
DEFAULT_METRICS_NAMESPACE = "ScheduledGpuModel"


@dataclass(frozen=True)
class LaunchTemplateRef:
    """The launch template every instance is run from."""

    template_id: str
    version: str


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise LauncherConfigurationError(
            f"Environment variable {name} is not set on the launcher function; Terraform sets "
            "it (terraform/modules/launcher_function): re-apply, or set it for a local run."
        )
    return value


def project_name() -> str:
    """PROJECT_NAME: the value of the Project tag on every instance the launcher owns."""
    return _required("PROJECT_NAME")


def _required_arn(name: str, pattern: re.Pattern[str], what: str, fix: str) -> str:
    value = _required(name)
    if not pattern.fullmatch(value):
        raise LauncherConfigurationError(f"{name}={value[:120]!r} is not {what}; {fix}")
    return value


def state_machine_arn() -> str:
    """STATE_MACHINE_ARN: the only state machine whose executions start may launch for."""
    return _required_arn(
        "STATE_MACHINE_ARN",
        _STATE_MACHINE_ARN,
        "a Step Functions state machine ARN",
        "set it to the workflow's state machine.",
    )


def activity_arn() -> str:
    """ACTIVITY_ARN: the run's activity, whose pending task instance_lost fails."""
    return _required_arn(
        "ACTIVITY_ARN",
        _ACTIVITY_ARN,
        "a Step Functions activity ARN",
        "set it to the workflow module's activity_arn output.",
    )


def launch_template() -> LaunchTemplateRef:
    """LAUNCH_TEMPLATE_ID and LAUNCH_TEMPLATE_VERSION."""
    template_id = _required("LAUNCH_TEMPLATE_ID")
    if not _LAUNCH_TEMPLATE_ID.fullmatch(template_id):
        raise LauncherConfigurationError(
            f"LAUNCH_TEMPLATE_ID={template_id!r} is not a launch template id (lt- followed by "
            "17 hex digits); set it to the id output by the launch_template module."
        )
    version = _required("LAUNCH_TEMPLATE_VERSION")
    if not _LAUNCH_TEMPLATE_VERSION.fullmatch(version):
        raise LauncherConfigurationError(
            f"LAUNCH_TEMPLATE_VERSION={version!r} must be $Latest, $Default or a version "
            "number such as 3."
        )
    return LaunchTemplateRef(template_id=template_id, version=version)


def max_instance_lifetime_seconds() -> int:
    """MAX_INSTANCE_LIFETIME_SECONDS: the sweeper terminates project instances older than this."""
    raw = _required("MAX_INSTANCE_LIFETIME_SECONDS")
    try:
        seconds = int(raw)
    except ValueError:
        seconds = -1
    if seconds < MIN_INSTANCE_LIFETIME_SECONDS:
        raise LauncherConfigurationError(
            f"MAX_INSTANCE_LIFETIME_SECONDS={raw!r} must be a whole number of seconds, at least "
            f"{MIN_INSTANCE_LIFETIME_SECONDS}."
        )
    return seconds


def metrics_namespace() -> str:
    """POWERTOOLS_METRICS_NAMESPACE, with a fallback: a metrics setting must never be the
    reason an instance is left running."""
    return os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "").strip() or DEFAULT_METRICS_NAMESPACE
