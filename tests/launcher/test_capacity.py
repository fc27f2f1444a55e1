"""start's capacity fallback over the ordered instance types x subnets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from launcher.errors import InsufficientCapacityEverywhere, LauncherTransientError
from tests.launcher.conftest import PROJECT, Invoke, Network, RunInstancesFailures

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


def _live_project_instances(ec2: EC2Client) -> list[str]:
    reservations = ec2.describe_instances(
        Filters=[
            {"Name": "tag:Project", "Values": [PROJECT]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )["Reservations"]
    return [i["InstanceId"] for r in reservations for i in r["Instances"]]


def test_insufficient_capacity_moves_to_the_next_subnet(
    invoke: Invoke,
    start_event: dict[str, Any],
    network: Network,
    run_instances_failures: RunInstancesFailures,
) -> None:
    run_instances_failures.fail(
        "g4dn.xlarge", network.subnet_ids[0], "InsufficientInstanceCapacity"
    )
    result = invoke(start_event)
    assert (result["instance_type"], result["subnet_id"]) == ("g4dn.xlarge", network.subnet_ids[1])
    assert result["availability_zone"] == network.zones[1]


def test_every_subnet_is_tried_before_the_next_instance_type(
    invoke: Invoke,
    start_event: dict[str, Any],
    network: Network,
    run_instances_failures: RunInstancesFailures,
) -> None:
    first, second = network.subnet_ids[:2]
    run_instances_failures.fail("g4dn.xlarge", first, "InsufficientInstanceCapacity")
    run_instances_failures.fail("g4dn.xlarge", second, "Unsupported")
    result = invoke(start_event)
    assert run_instances_failures.attempts == [
        ("g4dn.xlarge", first),
        ("g4dn.xlarge", second),
        ("g5.xlarge", first),
    ]
    assert (result["instance_type"], result["subnet_id"]) == ("g5.xlarge", first)


@pytest.mark.parametrize(
    "code",
    [
        "InsufficientInstanceCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "InsufficientCapacity",
        "Unsupported",
        "InsufficientFreeAddressesInSubnet",
        "VcpuLimitExceeded",
    ],
)
def test_each_capacity_error_code_falls_back(
    code: str,
    invoke: Invoke,
    start_event: dict[str, Any],
    network: Network,
    run_instances_failures: RunInstancesFailures,
) -> None:
    run_instances_failures.fail("g4dn.xlarge", network.subnet_ids[0], code)
    assert invoke(start_event)["subnet_id"] == network.subnet_ids[1]


def test_no_capacity_anywhere_names_every_pair_tried_and_its_error(
    invoke: Invoke,
    start_event: dict[str, Any],
    network: Network,
    ec2: EC2Client,
    run_instances_failures: RunInstancesFailures,
) -> None:
    first, second = network.subnet_ids[:2]
    codes = {
        ("g4dn.xlarge", first): "InsufficientInstanceCapacity",
        ("g4dn.xlarge", second): "InsufficientInstanceCapacity",
        ("g5.xlarge", first): "Unsupported",
        ("g5.xlarge", second): "VcpuLimitExceeded",
    }
    for (instance_type, subnet_id), code in codes.items():
        run_instances_failures.fail(instance_type, subnet_id, code)
    with pytest.raises(InsufficientCapacityEverywhere) as refused:
        invoke(start_event)
    message = str(refused.value)
    for (instance_type, subnet_id), code in codes.items():
        assert f"{instance_type} in {subnet_id}: {code}" in message
    assert [(a.instance_type, a.subnet_id, a.error_code) for a in refused.value.attempts] == [
        (t, s, c) for (t, s), c in codes.items()
    ]
    assert _live_project_instances(ec2) == []


def test_an_error_other_than_capacity_stops_the_fallback(
    invoke: Invoke,
    start_event: dict[str, Any],
    network: Network,
    run_instances_failures: RunInstancesFailures,
) -> None:
    run_instances_failures.fail("g4dn.xlarge", network.subnet_ids[0], "InvalidParameterValue")
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        invoke(start_event)
    assert len(run_instances_failures.attempts) == 1


@pytest.mark.parametrize("code", ["RequestLimitExceeded", "InternalError", "ServiceUnavailable"])
def test_throttling_or_server_error_is_a_transient_error(
    code: str,
    invoke: Invoke,
    start_event: dict[str, Any],
    network: Network,
    run_instances_failures: RunInstancesFailures,
) -> None:
    run_instances_failures.fail("g4dn.xlarge", network.subnet_ids[0], code)
    with pytest.raises(LauncherTransientError, match=code):
        invoke(start_event)
    assert len(run_instances_failures.attempts) == 1


def test_each_pair_gets_its_own_client_token(
    invoke: Invoke,
    start_event: dict[str, Any],
    network: Network,
    run_instances_failures: RunInstancesFailures,
    aws_calls: Any,
) -> None:
    run_instances_failures.fail(
        "g4dn.xlarge", network.subnet_ids[0], "InsufficientInstanceCapacity"
    )
    invoke(start_event)
    tokens = [p["ClientToken"] for p in aws_calls.params("RunInstances")]
    assert len(tokens) == 2
    assert len(set(tokens)) == 2


def test_fallbacks_are_published_as_a_metric(
    invoke: Invoke,
    start_event: dict[str, Any],
    network: Network,
    run_instances_failures: RunInstancesFailures,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_instances_failures.fail(
        "g4dn.xlarge", network.subnet_ids[0], "InsufficientInstanceCapacity"
    )
    invoke(start_event)
    emf = [line for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert len(emf) == 1
    assert '"CapacityFallbacks":[1.0]' in emf[0]
    assert '"InstancesLaunched":[1.0]' in emf[0]
