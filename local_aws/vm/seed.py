"""The NoCloud seed of one VM: the launch template's user data, plus the image's own layer.

The user data is Terraform's rendering, unchanged but for the agent configuration that
``write_files`` writes: only what the local AWS needs differs (its endpoint as the guest sees
it, 10.0.2.2), exactly as the process backend adapts it. It travels as one part of a MIME
multipart document; the other part is the harness's boothook, which plays what an AMI and EC2
provide and QEMU cannot (see ``harness_boothook``). Network config: DHCP on the first NIC, a
static link-local address on the second, where QEMU forwards 169.254.169.254 to the fake IMDS.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import shlex
import subprocess
from collections.abc import Mapping
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs pinned; safe_load only

from instance_agent.storage import INSTANCE_STORE_MODEL
from local_aws.process_machine import EBS_MODEL, deep_merge
from local_aws.user_data import AGENT_CONFIG_PATH, UserDataError, agent_config_from_cloud_config

# QEMU's user-mode network: the host's 127.0.0.1 is 10.0.2.2 from the guest.
HOST_FROM_GUEST = "10.0.2.2"
# The second NIC's network (QEMU's user net on 169.254.0.0/16 takes .2 and .3 for itself).
METADATA_NET = "169.254.0.0/16"
GUEST_METADATA_ADDRESS = "169.254.0.10/16"
PRIMARY_MAC = "52:54:00:12:34:01"
METADATA_MAC = "52:54:00:12:34:02"
# Serial numbers the boothook maps to EC2's model strings (EBS serials are volume ids).
INSTANCE_STORE_SERIAL_PREFIX = "AWS"
EBS_SERIAL_PREFIX = "vol"
DLAMI_MOUNT_POINT = "/opt/dlami/nvme"
DEMO_SCORER = Path(__file__).resolve().parent.parent / "demo_model" / "score.py"
# The demo scorer baked into the image layer, as a model's code can be baked into an AMI; the
# guest runs it with this command (the launch template's default, the model's run.sh, would
# need the published demo model to carry one).
MODEL_ON_IMAGE = "/opt/model/score.py"
VM_MODEL_COMMAND = ("python3", MODEL_ON_IMAGE)


@dataclasses.dataclass(frozen=True)
class SeedOptions:
    """What the image layer does beyond a plain AMI (the cases' knobs)."""

    dlami_mount: bool = False
    """Format and mount the instance store at /opt/dlami/nvme before cloud-init's modules run,
    as the Deep Learning AMIs do."""
    config_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Deep-merged into the agent configuration last (e.g. a failing model command)."""


def adapt_user_data(user_data: str, *, endpoint_url: str, overrides: Mapping[str, Any]) -> str:
    """The cloud-config with only the agent configuration's local differences applied."""
    config = agent_config_from_cloud_config(user_data)
    adapted = deep_merge(deep_merge(config, {"endpoint_url": endpoint_url}), overrides)
    document = yaml.safe_load(user_data)
    for entry in document["write_files"]:
        if entry.get("path") == AGENT_CONFIG_PATH:
            old = str(entry["content"])
            break
    else:  # agent_config_from_cloud_config has found it: unreachable
        raise UserDataError(f"UserData: write_files has no entry for {AGENT_CONFIG_PATH}")
    if user_data.count(old) != 1:
        raise UserDataError(f"UserData: cannot locate {AGENT_CONFIG_PATH}'s content to adapt it")
    new = base64.b64encode(json.dumps(adapted, separators=(",", ":")).encode()).decode()
    return user_data.replace(old, new)


def harness_boothook(*, endpoint_url: str, options: SeedOptions) -> str:
    """The image and EC2 layer, run by cloud-init's boothook handler before any module.

    - NVMe model strings: QEMU hard-codes "QEMU NVMe Ctrl" (no property sets it), so each
      controller's ``model`` in sysfs is overlaid (bind mount) with what EC2 reports for its
      serial; the agent's discovery by model string then runs unchanged on a real kernel.
    - The AMI's AWS CLI is Debian's awscli 2.9, older than ``AWS_ENDPOINT_URL``: a wrapper
      first on PATH adds ``--endpoint-url`` for the local AWS.
    - The model on the image (the demo scorer where the default model command looks).
    - Optionally the Deep Learning AMIs' own mount of the instance store.
    """
    scorer = base64.b64encode(DEMO_SCORER.read_bytes()).decode()
    lines = [
        "#cloud-boothook",
        "#!/bin/sh",
        "# The VM harness's image layer (local_aws/vm/seed.py), not the product's user data.",
        "set -eu",
        'say() { echo "vm-image: $*" > /dev/console; }',
        "mkdir -p /run/vm-nvme",
        'store=""',
        "for controller in /sys/class/nvme/nvme*; do",
        '  [ -e "$controller/serial" ] || continue',
        '  serial=$(cat "$controller/serial" | tr -d " ")',
        '  case "$serial" in',
        f'    {INSTANCE_STORE_SERIAL_PREFIX}*) model="{INSTANCE_STORE_MODEL}" ;;',
        f'    {EBS_SERIAL_PREFIX}*) model="{EBS_MODEL}" ;;',
        "    *) continue ;;",
        "  esac",
        '  name=$(basename "$controller")',
        f'  [ "$model" = "{INSTANCE_STORE_MODEL}" ] && [ -z "$store" ] && store="/dev/${{name}}n1"',
        '  printf \'%-40s\\n\' "$model" > "/run/vm-nvme/$name.model"',
        '  mount --bind "/run/vm-nvme/$name.model" "$controller/model"',
        '  say "$name (serial $serial) reads model: $(cat "$controller/model")"',
        "done",
        "cat > /usr/local/bin/aws <<'WRAPPER'",
        "#!/bin/sh",
        f'exec /usr/bin/aws --endpoint-url "{endpoint_url}" "$@"',
        "WRAPPER",
        "chmod 0755 /usr/local/bin/aws",
        f"mkdir -p {shlex.quote(str(Path(MODEL_ON_IMAGE).parent))}",
        f"echo {scorer} | base64 -d > {MODEL_ON_IMAGE}",
    ]
    if options.dlami_mount:
        lines += [
            '[ -n "$store" ] || { say "no instance-store disk for the DLAMI mount"; exit 1; }',
            f"mkdir -p {DLAMI_MOUNT_POINT}",
            'mkfs.xfs -f -K "$store" >/dev/null',
            f'mount "$store" {DLAMI_MOUNT_POINT}',
            f'say "mounted $store at {DLAMI_MOUNT_POINT} (as a Deep Learning AMI does)"',
        ]
    lines.append('say "image layer ready"')
    return "\n".join(lines) + "\n"


def network_config() -> str:
    """DHCP on the first NIC; the metadata NIC gets a static link-local address."""
    config = {
        "version": 1,
        "config": [
            {
                "type": "physical",
                "name": "eth0",
                "mac_address": PRIMARY_MAC,
                "subnets": [{"type": "dhcp"}],
            },
            {
                "type": "physical",
                "name": "eth1",
                "mac_address": METADATA_MAC,
                "subnets": [{"type": "static", "address": GUEST_METADATA_ADDRESS}],
            },
        ],
    }
    text: str = yaml.safe_dump(config, sort_keys=False)
    return text


def multipart_user_data(boothook: str, cloud_config: str) -> str:
    message = MIMEMultipart()
    message.attach(MIMEText(boothook, "cloud-boothook"))
    message.attach(MIMEText(cloud_config, "cloud-config"))
    return message.as_string()


def write_seed(
    directory: Path,
    *,
    instance_id: str,
    user_data: str,
    endpoint_url: str,
    options: SeedOptions,
) -> Path:
    """Write the seed's files under ``directory`` and build ``seed.img`` (cloud-localds)."""
    directory.mkdir(parents=True, exist_ok=True)
    cloud_config = adapt_user_data(
        user_data, endpoint_url=endpoint_url, overrides=options.config_overrides
    )
    boothook = harness_boothook(endpoint_url=endpoint_url, options=options)
    files = {
        "user-data": multipart_user_data(boothook, cloud_config),
        "meta-data": yaml.safe_dump({"instance-id": instance_id, "local-hostname": "ip-10-0-2-15"}),
        "network-config": network_config(),
        "cloud-config.yaml": cloud_config,
    }
    for name, content in files.items():
        (directory / name).write_text(content, encoding="utf-8")
    seed = directory / "seed.img"
    done = subprocess.run(
        [
            "cloud-localds",
            "--network-config",
            str(directory / "network-config"),
            str(seed),
            str(directory / "user-data"),
            str(directory / "meta-data"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"cloud-localds failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}"
        )
    return seed
