"""The local instance supervisor: one agent process per emulated instance, and its lifecycle."""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from instance_agent.storage import INSTANCE_STORE_MODEL
from local_aws import process_tree
from local_aws.process_machine import (
    InstanceOptions,
    KillPoint,
    ProcessBackend,
)
from local_aws.server import LocalAws
from local_aws.supervisor import InstanceSupervisor
from local_aws.user_data import UserDataError, agent_config_from_user_data

PROJECT = "scheduled-gpu-model"
STAND_IN = [sys.executable, str(Path(__file__).with_name("stand_in_agent.py"))]
TERRAFORM_CONFIG: dict[str, Any] = {
    "region": "eu-west-1",
    "activity_arn": "arn:aws:states:eu-west-1:123456789012:activity:demo-run-model",
    "model": {"bucket": "models", "prefix": "models/current/"},
    "storage": {"mount_point": "/mnt/model-store", "allow_root_volume_fallback": False},
    "heartbeat_interval_seconds": 60,
    "task_wait_seconds": 1800,
    "run": {"command": ["python3", "/opt/model/score.py"], "container_image": None},
    "max_runtime_seconds": 3600,
}

# A backstop, not a timing: each wait ends at its event (a loaded 2-core machine took over 10 s).
EVENT_WAIT_SECONDS = 120


def cloud_config(config: dict[str, Any]) -> str:
    """User data shaped like terraform/modules/launch_template/user_data.yaml.tftpl's."""
    encoded = base64.b64encode(json.dumps(config).encode()).decode()
    document = (
        "#cloud-config\n"
        "write_files:\n"
        "  - path: /etc/instance-agent/other.json\n"
        "    content: '{}'\n"
        "  - path: /etc/instance-agent/config.json\n"
        "    encoding: b64\n"
        f"    content: {encoded}\n"
    )
    return base64.b64encode(document.encode()).decode()


def run_instance(aws: LocalAws, user_data: str, *, project: str = PROJECT) -> str:
    ec2 = aws.client("ec2")
    template_id = ec2.create_launch_template(
        LaunchTemplateName=f"lt-{time.monotonic_ns()}",
        LaunchTemplateData={"UserData": user_data, "InstanceType": "g4dn.xlarge"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    reservation = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": "$Latest"},
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Project", "Value": project}]}
        ],
    )
    instance_id: str = reservation["Instances"][0]["InstanceId"]
    return instance_id


def state_of(aws: LocalAws, instance_id: str) -> str:
    reservations = aws.client("ec2").describe_instances(InstanceIds=[instance_id])
    state: str = reservations["Reservations"][0]["Instances"][0]["State"]["Name"]
    return state


@pytest.fixture
def make_supervisor(local_aws: LocalAws, tmp_path: Path) -> Iterator[Any]:
    started: list[InstanceSupervisor] = []

    def make(**options: Any) -> InstanceSupervisor:
        supervisor = InstanceSupervisor(
            local_aws,
            project=PROJECT,
            work_dir=tmp_path / "instances",
            backend=ProcessBackend(InstanceOptions(**options), agent_command=STAND_IN),
        )
        started.append(supervisor.start())
        return supervisor

    yield make
    for supervisor in started:
        supervisor.stop()


def stand_in_report(supervisor: InstanceSupervisor, instance_id: str) -> dict[str, Any]:
    path = supervisor.work_dir / instance_id / "etc" / "instance-agent" / "stand-in.json"
    supervisor.wait_for(path.exists, EVENT_WAIT_SECONDS, "the stand-in agent's report")
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def test_config_is_taken_from_the_user_data_write_files_entry() -> None:
    assert agent_config_from_user_data(cloud_config(TERRAFORM_CONFIG)) == TERRAFORM_CONFIG


def test_user_data_without_the_agent_config_is_refused_naming_the_path() -> None:
    user_data = base64.b64encode(b"#cloud-config\nwrite_files: []\n").decode()
    with pytest.raises(UserDataError, match=r"/etc/instance-agent/config\.json"):
        agent_config_from_user_data(user_data)


def test_user_data_that_is_not_cloud_config_is_refused() -> None:
    with pytest.raises(UserDataError, match="cloud-config"):
        agent_config_from_user_data(base64.b64encode(b"#!/bin/bash\necho hi\n").decode())


def test_a_new_project_instance_gets_an_agent_process(
    local_aws: LocalAws, make_supervisor: Any
) -> None:
    supervisor = make_supervisor()
    instance_id = run_instance(local_aws, cloud_config(TERRAFORM_CONFIG))
    report = stand_in_report(supervisor, instance_id)
    assert process_tree.is_alive(report["pid"])
    # This user data carries no CloudWatch agent configuration: nothing ships its logs.
    assert [e.name for e in supervisor.events_of(instance_id)] == [
        "launched",
        "no_log_shipping",
        "agent_started",
    ]


def test_instances_of_other_projects_are_left_alone(
    local_aws: LocalAws, make_supervisor: Any
) -> None:
    supervisor = make_supervisor()
    other = run_instance(local_aws, cloud_config(TERRAFORM_CONFIG), project="someone-else")
    mine = run_instance(local_aws, cloud_config(TERRAFORM_CONFIG))
    supervisor.wait_for_event(mine, "agent_started", EVENT_WAIT_SECONDS)
    assert other not in supervisor.instances


def test_agent_config_is_terraforms_with_only_local_differences(
    local_aws: LocalAws, make_supervisor: Any
) -> None:
    supervisor = make_supervisor(config_overrides={"heartbeat_interval_seconds": 2})
    instance_id = run_instance(local_aws, cloud_config(TERRAFORM_CONFIG))
    config = stand_in_report(supervisor, instance_id)["config"]
    root = supervisor.work_dir / instance_id
    assert config["endpoint_url"] == local_aws.endpoint_url
    assert config["imds_endpoint"].startswith("http://127.0.0.1:")
    assert config["storage"]["mount_point"] == str(root / "mnt" / "model-store")
    assert "shutdown_command" not in config  # the agent's own default, a shim on its PATH
    assert config["heartbeat_interval_seconds"] == 2
    for key in ("activity_arn", "model", "task_wait_seconds", "run", "max_runtime_seconds"):
        assert config[key] == TERRAFORM_CONFIG[key]


def test_model_command_knob_replaces_only_the_command(
    local_aws: LocalAws, make_supervisor: Any
) -> None:
    supervisor = make_supervisor(model_command=["python3", "-c", "pass"])
    instance_id = run_instance(local_aws, cloud_config(TERRAFORM_CONFIG))
    run = stand_in_report(supervisor, instance_id)["config"]["run"]
    assert run == {"command": ["python3", "-c", "pass"], "container_image": None}


def test_agent_reaches_the_emulator_and_the_storage_shims_first_on_path(
    local_aws: LocalAws, make_supervisor: Any
) -> None:
    supervisor = make_supervisor(env_overrides={"STAND_IN_EXTRA": "yes"})
    instance_id = run_instance(local_aws, cloud_config(TERRAFORM_CONFIG))
    report = stand_in_report(supervisor, instance_id)
    assert report["endpoint"] == local_aws.endpoint_url
    assert report["path"].split(":")[0] == str(supervisor.work_dir / instance_id / "bin")
    assert report["extra"] == "yes"


def test_fake_sysfs_names_an_instance_store_disk(local_aws: LocalAws, make_supervisor: Any) -> None:
    supervisor = make_supervisor()
    instance_id = run_instance(local_aws, cloud_config(TERRAFORM_CONFIG))
    stand_in_report(supervisor, instance_id)
    model = supervisor.work_dir / instance_id / "sys" / "class" / "nvme" / "nvme1" / "model"
    assert model.read_text().strip() == INSTANCE_STORE_MODEL


def test_without_instance_store_the_fake_sysfs_names_only_ebs(
    local_aws: LocalAws, make_supervisor: Any
) -> None:
    supervisor = make_supervisor(instance_store=False)
    instance_id = run_instance(local_aws, cloud_config(TERRAFORM_CONFIG))
    stand_in_report(supervisor, instance_id)
    models = sorted(
        p.read_text().strip()
        for p in (supervisor.work_dir / instance_id / "sys").glob("class/nvme/*/model")
    )
    assert models == ["Amazon Elastic Block Store"]


def test_terminating_the_instance_kills_the_agent_and_its_model(
    local_aws: LocalAws, make_supervisor: Any
) -> None:
    supervisor = make_supervisor()
    instance_id = run_instance(local_aws, cloud_config(TERRAFORM_CONFIG))
    report = stand_in_report(supervisor, instance_id)
    local_aws.client("ec2").terminate_instances(InstanceIds=[instance_id])
    supervisor.wait_for_event(instance_id, "process_exited", EVENT_WAIT_SECONDS)
    assert not process_tree.is_alive(report["pid"])
    assert not process_tree.is_alive(report["child_pid"])
    names = [e.name for e in supervisor.events_of(instance_id)]
    assert names[-3:] == ["terminated", "agent_killed", "process_exited"]


def test_the_agents_shutdown_request_terminates_the_instance(
    local_aws: LocalAws, make_supervisor: Any
) -> None:
    supervisor = make_supervisor(env_overrides={"STAND_IN_MODE": "shutdown"})
    instance_id = run_instance(local_aws, cloud_config(TERRAFORM_CONFIG))
    report = stand_in_report(supervisor, instance_id)
    supervisor.wait_for_event(instance_id, "process_exited", EVENT_WAIT_SECONDS)
    assert state_of(local_aws, instance_id) == "terminated"
    assert not process_tree.is_alive(report["child_pid"])
    names = [e.name for e in supervisor.events_of(instance_id)]
    assert names.index("shutdown_requested") < names.index("terminated")


def test_user_data_without_agent_config_terminates_the_instance(
    local_aws: LocalAws, make_supervisor: Any
) -> None:
    supervisor = make_supervisor()
    instance_id = run_instance(
        local_aws, base64.b64encode(b"#cloud-config\nwrite_files: []\n").decode()
    )
    event = supervisor.wait_for_event(instance_id, "boot_failed", EVENT_WAIT_SECONDS)
    assert "/etc/instance-agent/config.json" in event.detail
    supervisor.wait_for(lambda: state_of(local_aws, instance_id) == "terminated", 5, "terminate")


def test_kill_knob_before_poll_kills_the_agent_at_once(
    local_aws: LocalAws, make_supervisor: Any
) -> None:
    supervisor = make_supervisor(kill_agent=KillPoint.BEFORE_POLL)
    instance_id = run_instance(local_aws, cloud_config(TERRAFORM_CONFIG))
    event = supervisor.wait_for_event(instance_id, "process_exited", EVENT_WAIT_SECONDS)
    assert event.detail == "exit code -9"
    report = supervisor.work_dir / instance_id / "etc" / "instance-agent" / "stand-in.json"
    assert not report.exists()
    assert state_of(local_aws, instance_id) == "running"


def test_stop_leaves_no_process_behind(local_aws: LocalAws, make_supervisor: Any) -> None:
    supervisor = make_supervisor()
    instance_id = run_instance(local_aws, cloud_config(TERRAFORM_CONFIG))
    report = stand_in_report(supervisor, instance_id)
    supervisor.stop()
    assert not process_tree.is_alive(report["pid"])
    assert not process_tree.is_alive(report["child_pid"])
    assert supervisor.instances[instance_id].imds is None


def test_run_metrics_and_uptime_belong_to_the_instance_not_the_host(
    local_aws: LocalAws, make_supervisor: Any
) -> None:
    supervisor = make_supervisor()
    instance_id = run_instance(local_aws, cloud_config(TERRAFORM_CONFIG))
    config = stand_in_report(supervisor, instance_id)["config"]
    root = supervisor.work_dir / instance_id
    assert config["metrics"]["file"] == str(root / "var" / "log" / "instance-agent-metrics.log")
    uptime_file = root / "proc-uptime"
    assert config["metrics"]["uptime_file"] == str(uptime_file)
    # Seconds since this instance launched (not the host's boot): small and growing.
    uptime = float(uptime_file.read_text().split()[0])
    assert 0 <= uptime < 60


def test_the_imds_serves_the_launch_templates_instance_profile_credentials(
    local_aws: LocalAws, tmp_path: Path
) -> None:
    # moto does not copy the template's IamInstanceProfile onto the instance; AWS does, and a
    # real boot's AWS CLI and SDKs take their credentials from IMDS.
    import http.client
    import urllib.parse

    from local_aws.imds import TOKEN_HEADER, TTL_HEADER
    from local_aws.machines import IdleBackend

    profile = local_aws.client("iam").create_instance_profile(InstanceProfileName="gpu-instance")
    ec2 = local_aws.client("ec2")
    template_id = ec2.create_launch_template(
        LaunchTemplateName="lt-with-profile",
        LaunchTemplateData={
            "UserData": cloud_config(TERRAFORM_CONFIG),
            "IamInstanceProfile": {"Arn": profile["InstanceProfile"]["Arn"]},
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    instance_id = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": "$Latest"},
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Project", "Value": PROJECT}]}
        ],
    )["Instances"][0]["InstanceId"]
    with InstanceSupervisor(
        local_aws, project=PROJECT, work_dir=tmp_path, backend=IdleBackend()
    ) as supervisor:
        supervisor.wait_for_event(instance_id, "booted_idle", timeout=30)
        imds = supervisor.instances[instance_id].imds
        assert imds is not None
        netloc = urllib.parse.urlsplit(imds.endpoint).netloc

        def request(method: str, path: str, headers: dict[str, str]) -> str:
            connection = http.client.HTTPConnection(netloc, timeout=5)
            connection.request(method, path, headers=headers)
            body = connection.getresponse().read().decode()
            connection.close()
            return body

        token = request("PUT", "/latest/api/token", {TTL_HEADER: "60"})
        role = request("GET", "/latest/meta-data/iam/security-credentials/", {TOKEN_HEADER: token})
    assert role == "gpu-instance"
