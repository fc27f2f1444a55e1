"""The VM backend's parts that need no guest: the seed, the QEMU command, the console's
milestones and the timeline (the real boots are in test_real_boot.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from local_aws.supervisor import InstanceEvent
from local_aws.user_data import agent_config_from_cloud_config
from local_aws.vm.console import ConsoleLine, first_milestones
from local_aws.vm.image import GuestImage, image_key
from local_aws.vm.qemu import RELAY_SCRIPT, VmOptions, guest_endpoint, qemu_command
from local_aws.vm.seed import (
    SeedOptions,
    adapt_user_data,
    harness_boothook,
    multipart_user_data,
    network_config,
)
from local_aws.vm.timeline import vm_timeline

CONFIG = {"region": "eu-west-1", "model": {"bucket": "b", "prefix": "models/current/"}}
USER_DATA = (
    "#cloud-config\n"
    "bootcmd:\n  - [sh, -c, 'echo deadline']\n"
    "write_files:\n"
    "  - path: /etc/instance-agent/config.json\n"
    "    encoding: b64\n"
    f"    content: {base64.b64encode(json.dumps(CONFIG).encode()).decode()}\n"
    "runcmd:\n  - [sh, -c, bootstrap]\n"
)


def test_the_user_data_changes_only_in_the_agent_configuration() -> None:
    adapted = adapt_user_data(
        USER_DATA, endpoint_url="http://10.0.2.2:5000", overrides={"run": {"command": ["x"]}}
    )
    config = agent_config_from_cloud_config(adapted)
    assert config == {**CONFIG, "endpoint_url": "http://10.0.2.2:5000", "run": {"command": ["x"]}}
    before, after = yaml.safe_load(USER_DATA), yaml.safe_load(adapted)
    assert after["bootcmd"] == before["bootcmd"]
    assert after["runcmd"] == before["runcmd"]


def test_only_the_hosts_loopback_is_reachable_from_the_guest() -> None:
    assert guest_endpoint("http://127.0.0.1:43210") == "http://10.0.2.2:43210"
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        guest_endpoint("http://192.168.1.5:43210")


def test_the_boothook_gives_store_and_ebs_disks_ec2s_model_strings() -> None:
    hook = harness_boothook(endpoint_url="http://10.0.2.2:1", options=SeedOptions())
    assert hook.startswith("#cloud-boothook\n")
    assert 'AWS*) model="Amazon EC2 NVMe Instance Storage"' in hook
    assert 'vol*) model="Amazon Elastic Block Store"' in hook
    assert 'mount --bind "/run/vm-nvme/$name.model" "$controller/model"' in hook
    assert '--endpoint-url "http://10.0.2.2:1"' in hook
    assert "/opt/dlami/nvme" not in hook


def test_the_dlami_layer_mounts_the_store_before_cloud_init_modules_run() -> None:
    hook = harness_boothook(endpoint_url="http://10.0.2.2:1", options=SeedOptions(dlami_mount=True))
    assert 'mount "$store" /opt/dlami/nvme' in hook


def test_the_metadata_nic_gets_a_static_link_local_address() -> None:
    interfaces = yaml.safe_load(network_config())["config"]
    assert interfaces[0]["subnets"] == [{"type": "dhcp"}]
    assert interfaces[1]["subnets"] == [{"type": "static", "address": "169.254.0.10/16"}]


def test_the_user_data_is_a_multipart_of_the_boothook_and_the_cloud_config() -> None:
    text = multipart_user_data("#cloud-boothook\n", USER_DATA)
    assert 'Content-Type: text/cloud-boothook; charset="us-ascii"' in text
    assert 'Content-Type: text/cloud-config; charset="us-ascii"' in text


def test_the_qemu_command_boots_tcg_direct_with_nvme_disks_and_the_metadata_forward(
    tmp_path: Path,
) -> None:
    image = GuestImage(tmp_path, "key")
    command = qemu_command(
        image=image,
        overlay=tmp_path / "root.qcow2",
        seed=tmp_path / "seed.img",
        disks=[(tmp_path / "a.qcow2", "vol1"), (tmp_path / "b.qcow2", "AWS0")],
        imds_port=4242,
        qmp_socket=tmp_path / "qmp.sock",
        options=VmOptions(),
    )
    line = " ".join(command)
    assert "-accel tcg -cpu max -smp 2 -m 2048" in line
    assert "-no-reboot" in line
    assert f"-kernel {image.kernel}" in line
    assert "-device nvme,drive=nvme1,serial=AWS0" in line
    assert "net=169.254.0.0/16,guestfwd=tcp:169.254.169.254:80-cmd:" in line
    netdev = next(arg for arg in command if "guestfwd=" in arg)
    assert netdev.endswith(f"{RELAY_SCRIPT} 4242")


def test_the_image_key_changes_with_the_apt_sources() -> None:
    assert image_key("deb a") != image_key("deb b")
    assert image_key("deb a") == image_key("deb a")


def test_a_milestone_is_the_first_matching_console_line() -> None:
    lines = [
        ConsoleLine(1.0, "[    0.000000] Linux version 6.1.0-40-cloud-amd64"),
        ConsoleLine(
            9.5, "cloud-init[1]: instance-agent: hard deadline armed: power-off in 3 minutes"
        ),
        ConsoleLine(190.0, "instance-agent: hard deadline of 3 minutes reached: powering off"),
        ConsoleLine(199.0, "[  199.000000] reboot: Power down"),
        ConsoleLine(200.0, "[  200.000000] reboot: Power down"),
    ]
    found = first_milestones(lines)
    assert found["kernel"].at == 1.0
    assert found["deadline_armed"].at == 9.5
    assert found["deadline_fired"].at == 190.0
    assert found["power_down"].at == 199.0


def test_the_timeline_puts_console_milestones_on_the_executions_clock() -> None:
    events = [
        InstanceEvent("i-1", "launched", 1000.0),
        InstanceEvent("i-1", "vm_started", 1002.0),
        InstanceEvent("i-1", "vm_powered_off", 1300.0),
    ]
    milestones = {"deadline_armed": ConsoleLine(100.0, "armed")}
    timeline = vm_timeline(
        execution_started_at=999.0, instance_events=events, milestones=milestones
    )
    assert [(e.event, e.at) for e in timeline] == [
        ("launched", 1.0),
        ("vm_started", 3.0),
        ("deadline_armed", 103.0),
        ("vm_powered_off", 301.0),
    ]
