"""The agent's configuration: one JSON file, validated with stdlib dataclasses.

No pydantic here: pydantic_core is a binary per Python version, and the agent must run on whatever
python3 the AMI has. Every setting carries a default (or is marked required) and a description in
its field metadata; README.md's settings table is generated from them (``settings_table``).
Unknown keys are refused, and every error names the bad key by its dotted path.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, TypeVar

from instance_agent.errors import ConfigError
from instance_agent.model_copy.settings import (
    DEFAULT_PART_SIZE,
    MAX_CONCURRENCY,
    MIN_CONCURRENCY,
    CopySettings,
    KiB,
    MiB,
    accepted,
    refusal,
)

DEFAULT_CONFIG_PATH = Path("/etc/instance-agent/config.json")

_REQUIRED = "required"


def doc(description: str) -> dict[str, str]:
    """Field metadata: the description README.md's settings table shows."""
    return {"description": description}


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelLocation:
    """Where the model lives in S3."""

    bucket: str = field(metadata=doc("S3 bucket of the model (the model bucket)."))
    prefix: str = field(
        metadata=doc(
            "S3 prefix of the model, ending in `/`; copied at boot while the agent waits for "
            "its task."
        )
    )

    def __post_init__(self) -> None:
        if not self.bucket:
            raise ConfigError("model.bucket: must not be empty; set the model bucket's name")
        if not self.prefix.endswith("/"):
            raise ConfigError(f"model.prefix: {self.prefix!r} must end with '/'")


@dataclasses.dataclass(frozen=True, kw_only=True)
class StorageSettings:
    """The local NVMe instance store the model is copied to."""

    mount_point: str = field(
        default="/mnt/model-store",
        metadata=doc("Where the instance store (or its RAID0 array) is mounted."),
    )
    allow_root_volume_fallback: bool = field(
        default=False,
        metadata=doc(
            "Without instance-store disks, use `fallback_directory` on the root volume (slow on a "
            "volume restored from a snapshot) instead of failing with NoInstanceStore."
        ),
    )
    fallback_directory: str = field(
        default="/var/lib/instance-agent",
        metadata=doc("The root-volume directory used when the fallback is allowed."),
    )
    sysfs_root: str = field(
        default="/sys",
        metadata=doc("Root of sysfs, where `class/nvme/nvmeN/model` names each NVMe controller."),
    )
    mounts_file: str = field(
        default="/proc/self/mounts",
        metadata=doc(
            "The mount table read to skip formatting when the mount point is already mounted."
        ),
    )
    raid_device: str = field(
        default="/dev/md0",
        metadata=doc("The md device created when several instance-store disks are striped."),
    )
    mkfs_options: list[str] = field(
        default_factory=lambda: ["-f"],
        metadata=doc(
            "Extra `mkfs.xfs` arguments (besides `-K`, which skips the slow discard pass)."
        ),
    )
    mount_options: str = field(default="noatime", metadata=doc("Options passed to `mount -o`."))


# Where the Deep Learning AMIs keep the Python that has PyTorch (their release notes'
# `python_location`), then the older conda layout, then the system's: MODEL_PYTHON is the first
# that exists (docs/deep_learning_ami.md).
DEFAULT_PYTHON_CANDIDATES = ("/opt/pytorch/bin/python", "/opt/conda/bin/python", "python3")
# The model's own entry point at the top of its published prefix, used when no command is set.
MODEL_ENTRY_POINT = "run.sh"


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunSettings:
    """How the model is run (the model contract: instance_agent/README.md, "The model")."""

    command: list[str] = field(
        default_factory=list,
        metadata=doc(
            "The model command as an argument list, run without a shell (`$MODEL_DIR` is not "
            "expanded). With a container image, the container's command. Empty with "
            f"`shell_command` null: the model's own `{MODEL_ENTRY_POINT}` (on the host) or the "
            "image's entry point (in a container)."
        ),
    )
    shell_command: str | None = field(
        default=None,
        metadata=doc(
            "The model command as one string run by `/bin/sh -c`: `$MODEL_DIR`, `$OUTPUT_DIR`, "
            "`$TASK_INPUT`, `$RUN_NAME` and `$MODEL_PYTHON` expand. Exclusive with `command`."
        ),
    )
    python_candidates: list[str] = field(
        default_factory=lambda: list(DEFAULT_PYTHON_CANDIDATES),
        metadata=doc(
            "The model's Python, exported as `MODEL_PYTHON`: the first of these that exists "
            "(a bare name is looked up on PATH). An absolute one's directory also goes first "
            "on the model's PATH, so `python` and `torchrun` are the PyTorch environment's."
        ),
    )
    container_image: str | None = field(
        default=None,
        metadata=doc(
            "A Docker image to run with `docker run --gpus all`, pulled at boot while the model "
            "copies (see `container.*`); null runs the command on the host."
        ),
    )
    docker_args: list[str] = field(
        default_factory=list,
        metadata=doc("Extra `docker run` arguments, before the image (e.g. `--shm-size=8g`)."),
    )
    kill_grace_seconds: float = field(
        default=10.0,
        metadata=doc(
            "When the model is stopped (max_runtime_seconds, the task lost, the agent stopping) "
            "or exits leaving processes behind, they get SIGTERM, then SIGKILL this much later."
        ),
    )
    output_subdir: str = field(
        default="output",
        metadata=doc("Directory under the mount point where the model writes its results."),
    )

    def __post_init__(self) -> None:
        if self.command and self.shell_command is not None:
            raise ConfigError(
                "run.command and run.shell_command: set one of them (an argument list, or one "
                "string for /bin/sh -c), not both"
            )
        if self.shell_command is not None and not self.shell_command.strip():
            raise ConfigError(
                "run.shell_command: must not be blank; set a command or null to use the "
                f"model's {MODEL_ENTRY_POINT}"
            )
        if not self.python_candidates or not all(self.python_candidates):
            raise ConfigError(
                "run.python_candidates: give at least one non-empty path or name, e.g. "
                f"{json.dumps(list(DEFAULT_PYTHON_CANDIDATES))}"
            )
        if self.kill_grace_seconds < 0:
            raise ConfigError("run.kill_grace_seconds: must be >= 0")


# Where docker and containerd keep image layers; bind-mounted from the instance store.
DEFAULT_CONTAINER_DATA_ROOTS = ("/var/lib/docker", "/var/lib/containerd")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ContainerSettings:
    """The container image (``run.container_image``): where its layers land, and its pull."""

    data_roots: list[str] = field(
        default_factory=lambda: list(DEFAULT_CONTAINER_DATA_ROOTS),
        metadata=doc(
            "Directories of docker and containerd bind-mounted from the instance store before "
            "the pull (the daemons are stopped and started around it), so image layers land on "
            "NVMe, not on a root volume restored from a snapshot. Empty: leave them alone."
        ),
    )
    ecr_login: bool = field(
        default=True,
        metadata=doc(
            "For an image in ECR, `docker login` with a token from the instance role "
            "(ecr:GetAuthorizationToken) before the pull."
        ),
    )
    pull_timeout_seconds: int = field(
        default=1800,
        metadata=doc(
            "Limit of the image pull (started at boot, while the model copies); past it the "
            "run fails with ImagePullFailed. Not part of max_runtime_seconds."
        ),
    )

    def __post_init__(self) -> None:
        if self.pull_timeout_seconds < 1:
            raise ConfigError("container.pull_timeout_seconds: must be >= 1")
        for index, root in enumerate(self.data_roots):
            if not root.startswith("/") or root.rstrip("/") in ("", "/var", "/var/lib"):
                raise ConfigError(
                    f"container.data_roots[{index}]: {root!r} must be an absolute directory "
                    "of the container runtime, e.g. /var/lib/docker"
                )


@dataclasses.dataclass(frozen=True, kw_only=True)
class WarmSettings:
    """Files read at boot, while the model copies, to fetch their blocks from the snapshot."""

    paths: list[str] = field(
        default_factory=list,
        metadata=doc(
            "Files or directories (read recursively) on the root volume to read once at boot, "
            "in parallel with the model copy, e.g. `/opt/pytorch`: a volume restored from a "
            "snapshot fetches each block from S3 on its first read. Its time is the `warm` phase."
        ),
    )
    max_concurrency: int = field(default=8, metadata=doc("Files read at the same time (1-64)."))
    max_wait_seconds: int = field(
        default=120,
        metadata=doc(
            "Once the model is copied, how long the run may wait for the warm read to finish "
            "before the model starts anyway (the read goes on beside it): the `warm_wait` phase."
        ),
    )

    def __post_init__(self) -> None:
        if not 1 <= self.max_concurrency <= 64:
            raise ConfigError("warm.max_concurrency: must be from 1 to 64")
        if self.max_wait_seconds < 0:
            raise ConfigError("warm.max_wait_seconds: must be >= 0")
        for index, path in enumerate(self.paths):
            if not path.startswith("/"):
                raise ConfigError(f"warm.paths[{index}]: {path!r} must be an absolute path")


# Each copy.* key: the engine's setting it gives (instance_agent.model_copy.settings, where the
# defaults and bounds are defined) and its unit, as a multiple of the engine's and by name.
COPY_KEYS: dict[str, tuple[str, int, str | None]] = {
    "part_size_mb": ("part_size", MiB, "MiB"),
    "max_concurrency": ("max_concurrency", 1, None),
    "slice_size_kib": ("slice_size", KiB, "KiB"),
    "transport": ("transport", 1, None),
    "part_retries": ("part_retries", 1, None),
    "retry_base_seconds": ("retry_base_seconds", 1, None),
    "retry_max_seconds": ("retry_max_seconds", 1, None),
    "progress_interval_seconds": ("progress_interval_seconds", 1, None),
}
_ENGINE_DEFAULTS = CopySettings()


def _copy_default(key: str) -> Any:
    """The engine's default of ``copy.<key>``, in the key's unit."""
    name, scale, _unit = COPY_KEYS[key]
    value = getattr(_ENGINE_DEFAULTS, name)
    return value if value is None or scale == 1 else value // scale


def _copy_accepts(key: str) -> str:
    name, scale, unit = COPY_KEYS[key]
    return accepted(name, scale=scale, unit=unit)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CopySettingsConfig:
    """Tuning of the model copy: the engine's CopySettings, with sizes in MiB and KiB."""

    part_size_mb: int | None = field(
        default=_copy_default("part_size_mb"),
        metadata=doc(
            f"Size of each ranged GET, {_copy_accepts('part_size_mb')}; null chooses from the"
            f" model size ({DEFAULT_PART_SIZE // MiB} MiB at most)."
        ),
    )
    max_concurrency: int | None = field(
        default=_copy_default("max_concurrency"),
        metadata=doc(
            f"Parallel ranged GETs ({_copy_accepts('max_concurrency')}), each streamed through"
            f" one slice-sized buffer; null: 1 per vCPU (at least {MIN_CONCURRENCY}) below 4"
            f" vCPUs, else 2 per vCPU up to {MAX_CONCURRENCY}."
        ),
    )
    slice_size_kib: int = field(
        default=_copy_default("slice_size_kib"),
        metadata=doc(
            "Each GET is received, checksummed and written in slices of this many KiB"
            f" ({_copy_accepts('slice_size_kib')}); memory in flight is max_concurrency x slice."
        ),
    )
    transport: str = field(
        default=_copy_default("transport"),
        metadata=doc(
            "How the ranged GETs travel: `http` (own connections to presigned SigV4 URLs),"
            " `boto3` (through the S3 client), or `auto` (`http` unless the client has a proxy,"
            " SigV2 or request hooks)."
        ),
    )
    part_retries: int = field(
        default=_copy_default("part_retries"),
        metadata=doc(
            "Retries of one part (dropped connection, 5xx, throttling):"
            f" {_copy_accepts('part_retries')}."
        ),
    )
    retry_base_seconds: float = field(
        default=_copy_default("retry_base_seconds"),
        metadata=doc(
            "First retry delay of a part (jittered, doubling):"
            f" {_copy_accepts('retry_base_seconds')}."
        ),
    )
    retry_max_seconds: float = field(
        default=_copy_default("retry_max_seconds"),
        metadata=doc(f"Longest retry delay of a part: {_copy_accepts('retry_max_seconds')}."),
    )
    progress_interval_seconds: float = field(
        default=_copy_default("progress_interval_seconds"),
        metadata=doc(
            "How often a copy progress line (bytes, MB/s, ETA) is logged:"
            f" {_copy_accepts('progress_interval_seconds')}."
        ),
    )

    def __post_init__(self) -> None:
        for key, (name, scale, unit) in COPY_KEYS.items():
            message = refusal(
                name, getattr(self, key), key=f"copy.{key}", scale=scale, unit=unit, none="null"
            )
            if message:
                raise ConfigError(message)

    def engine_settings(self) -> CopySettings:
        """The same settings in the engine's units (bytes): units converted, nothing else."""
        values = {}
        for key, (name, scale, _unit) in COPY_KEYS.items():
            value = getattr(self, key)
            values[name] = value if value is None or scale == 1 else value * scale
        return CopySettings(**values)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricsSettings:
    """The run's embedded-metric-format line (instance_agent/run_metrics.py)."""

    namespace: str = field(
        default="ScheduledGpuModel",
        metadata=doc("CloudWatch namespace of the run metrics; Terraform sets the project name."),
    )
    file: str = field(
        default="/var/log/instance-agent-metrics.log",
        metadata=doc(
            "File the EMF line is appended to; the CloudWatch agent ships it to the log group."
        ),
    )
    uptime_file: str = field(
        default="/proc/uptime",
        metadata=doc("Seconds since boot (first field), for boot-to-agent and instance lifetime."),
    )
    cloud_init_status_file: str = field(
        default="/run/cloud-init/status.json",
        metadata=doc(
            "cloud-init's stage start times, for the boot phases before the agent "
            "(`boot_to_cloud_init`, `cloud_init`, `bootstrap`); absent: those phases are too."
        ),
    )

    def __post_init__(self) -> None:
        if not self.namespace or len(self.namespace) > 255:
            raise ConfigError("metrics.namespace: must be 1-255 characters, e.g. the project name")
        if not self.file:
            raise ConfigError("metrics.file: must not be empty; give a writable file path")


@dataclasses.dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """The whole configuration file."""

    region: str = field(metadata=doc("AWS region of the activity and the buckets."))
    activity_arn: str = field(metadata=doc("ARN of the Step Functions activity the agent polls."))
    model: ModelLocation = field(metadata=doc("The model prefetched at boot (`bucket`, `prefix`)."))
    storage: StorageSettings = field(
        default_factory=StorageSettings, metadata=doc("Instance-store settings (see `storage.*`).")
    )
    run: RunSettings = field(metadata=doc("Model command settings (see `run.*`)."))
    copy: CopySettingsConfig = field(
        default_factory=CopySettingsConfig, metadata=doc("Model copy tuning (see `copy.*`).")
    )
    container: ContainerSettings = field(
        default_factory=ContainerSettings,
        metadata=doc("Container runtime and image pull settings (see `container.*`)."),
    )
    warm: WarmSettings = field(
        default_factory=WarmSettings,
        metadata=doc("Root-volume paths read at boot to warm them (see `warm.*`)."),
    )
    heartbeat_interval_seconds: int = field(
        default=60, metadata=doc("Interval of SendTaskHeartbeat while the task is held.")
    )
    task_wait_seconds: int = field(
        default=1800,
        metadata=doc("How long to wait for the activity task before giving up and shutting down."),
    )
    max_runtime_seconds: int = field(
        default=3600,
        metadata=doc(
            "Default model runtime limit; the task's own `max_runtime_seconds` overrides it."
        ),
    )
    endpoint_url: str | None = field(
        default=None,
        metadata=doc("AWS endpoint for every client (a local emulator); null uses the real AWS."),
    )
    imds_endpoint: str = field(
        default="http://169.254.169.254",
        metadata=doc("Instance metadata service (IMDSv2) base URL."),
    )
    imds_timeout_seconds: float = field(default=2.0, metadata=doc("Timeout of each IMDS request."))
    worker_name_prefix: str = field(
        default="instance-agent",
        metadata=doc("GetActivityTask worker name prefix; the instance id is appended."),
    )
    shutdown_command: list[str] = field(
        default_factory=lambda: ["shutdown", "-h", "now"],
        metadata=doc(
            "Run on every exit path; with shutdown behaviour `terminate` it ends the instance."
        ),
    )
    log_tail_lines: int = field(
        default=200,
        metadata=doc(
            "Log lines kept for SendTaskFailure's cause (cut to the API's 32,768 characters)."
        ),
    )
    metrics: MetricsSettings = field(
        default_factory=MetricsSettings, metadata=doc("Run metrics settings (see `metrics.*`).")
    )
    root_volume_gib: int = field(
        default=0,
        metadata=doc("Size of the root volume in GiB, for the cost estimate in run.json."),
    )

    def __post_init__(self) -> None:
        if not self.region:
            raise ConfigError("region: must not be empty; set the AWS region, e.g. 'eu-west-1'")
        if not self.activity_arn.startswith("arn:") or ":activity:" not in self.activity_arn:
            raise ConfigError(
                f"activity_arn: {self.activity_arn!r} is not an activity ARN "
                "(arn:aws:states:<region>:<account>:activity:<name>)"
            )
        for name in ("heartbeat_interval_seconds", "max_runtime_seconds", "log_tail_lines"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1")
        if self.root_volume_gib < 0:
            raise ConfigError("root_volume_gib: must be >= 0")
        if self.task_wait_seconds < 0:
            raise ConfigError("task_wait_seconds: must be >= 0")
        if self.imds_timeout_seconds <= 0:
            raise ConfigError("imds_timeout_seconds: must be > 0")
        if not self.shutdown_command:
            raise ConfigError(
                "shutdown_command: must not be empty; the agent must be able to end the instance"
            )


_T = TypeVar("_T")


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "object"
    if typing.get_origin(tp) is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(tp))
    return {str: "string", int: "integer", float: "number", bool: "boolean"}[tp]


def _convert(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` against ``tp``; nested dataclasses are built recursively."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is type(None) and value is None:
                return None
        (inner,) = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return _convert(inner, value, key)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected an object, got {type(value).__name__}")
        return _build(typing.cast(type[Any], tp), value, f"{key}.")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__}")
        (item_type,) = typing.get_args(tp)
        return [_convert(item_type, item, f"{key}[{i}]") for i, item in enumerate(value)]
    # bool is an int in Python; a JSON `true` is never a valid count of seconds.
    ok = isinstance(value, tp) and not (tp is not bool and isinstance(value, bool))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise ConfigError(
            f"{key}: expected {_type_name(tp)}, got {json.dumps(value)} ({type(value).__name__})"
        )
    return value


def _build(cls: type[_T], data: Mapping[str, Any], prefix: str = "") -> _T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(typing.cast(Any, cls))}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        names = ", ".join(prefix + name for name in unknown)
        raise ConfigError(f"{names}: unknown key; known keys are {', '.join(sorted(fields))}")
    kwargs: dict[str, Any] = {}
    for name, spec in fields.items():
        key = prefix + name
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], key)
        elif _is_required(spec):
            raise ConfigError(f"{key}: required key is missing; {spec.metadata['description']}")
    return cls(**kwargs)


def parse_config(data: Any) -> AgentConfig:
    """Validate a decoded JSON document; raises ConfigError naming the bad key."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"(top level): expected a JSON object, got {type(data).__name__}")
    return _build(AgentConfig, data)


def load_config(path: Path) -> AgentConfig:
    """Read and validate the configuration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    return parse_config(data)


def _walk(cls: type[Any], prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        tp = hints[spec.name]
        key = prefix + spec.name
        if dataclasses.is_dataclass(tp):
            yield (
                key,
                "object",
                _REQUIRED if _is_required(spec) else "`{}` (all defaults)",
                spec.metadata["description"],
            )
            yield from _walk(typing.cast(type[Any], tp), key + ".")
            continue
        yield key, _type_name(tp), _default_text(spec), spec.metadata["description"]


def _is_required(spec: dataclasses.Field[Any]) -> bool:
    return spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING


def _default_text(spec: dataclasses.Field[Any]) -> str:
    if _is_required(spec):
        return _REQUIRED
    if spec.default is dataclasses.MISSING:
        value = typing.cast(Callable[[], Any], spec.default_factory)()
    else:
        value = spec.default
    return f"`{json.dumps(value)}`"


def settings_table() -> str:
    """The Markdown table of every setting, as README.md shows it."""
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for key, type_name, default, description in _walk(AgentConfig):
        lines.append(f"| `{key}` | {type_name} | {default} | {description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_table(), end="")
