"""The fake IMDSv2: token protocol, and answers taken from the emulator's DescribeInstances."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from local_aws.imds import TOKEN_HEADER, TTL_HEADER, FakeImds, describe_from_ec2
from local_aws.server import LocalAws


def _run_instance(aws: LocalAws, *, metadata_tags: str = "disabled") -> str:
    ec2 = aws.client("ec2")
    reservation = ec2.run_instances(
        ImageId="ami-12c6146b",  # moto does not validate AMIs; listing them costs a second
        InstanceType="g4dn.xlarge",
        MinCount=1,
        MaxCount=1,
        Placement={"AvailabilityZone": "eu-west-1b"},
        MetadataOptions={"HttpTokens": "required", "InstanceMetadataTags": metadata_tags},
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "Project", "Value": "demo"}, {"Key": "RunName", "Value": "r1"}],
            }
        ],
    )
    instance_id: str = reservation["Instances"][0]["InstanceId"]
    return instance_id


def _imds_for(aws: LocalAws, instance_id: str) -> FakeImds:
    return FakeImds(
        describe_from_ec2(aws.client("ec2"), instance_id),
        region=aws.region,
        account_id=aws.account_id,
    ).start()


@pytest.fixture
def instance_id(local_aws: LocalAws) -> str:
    return _run_instance(local_aws)


@pytest.fixture
def imds(local_aws: LocalAws, instance_id: str) -> Iterator[FakeImds]:
    server = _imds_for(local_aws, instance_id)
    yield server
    server.stop()


def _request(imds: FakeImds, method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(imds.endpoint).netloc, timeout=5)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def _token_response(imds: FakeImds, ttl: str) -> tuple[int, str]:
    return _request(imds, "PUT", "/latest/api/token", {TTL_HEADER: ttl})


def _token(imds: FakeImds) -> str:
    status, token = _token_response(imds, "60")
    assert status == 200
    return token


def _get(imds: FakeImds, path: str, token: str | None) -> tuple[int, str]:
    return _request(imds, "GET", path, {TOKEN_HEADER: token} if token is not None else {})


def test_get_without_token_is_refused_with_401(imds: FakeImds) -> None:
    assert _get(imds, "/latest/meta-data/instance-id", None)[0] == 401


def test_get_with_expired_token_is_refused_with_401(imds: FakeImds) -> None:
    status, token = _token_response(imds, "1")
    assert status == 200
    time.sleep(1.1)
    assert _get(imds, "/latest/meta-data/instance-id", token)[0] == 401


def test_get_with_unknown_token_is_refused_with_401(imds: FakeImds) -> None:
    assert _get(imds, "/latest/meta-data/instance-id", "not-a-token")[0] == 401


def test_token_request_without_ttl_is_refused_with_400(imds: FakeImds) -> None:
    assert _token_response(imds, "")[0] == 400


def test_token_request_with_ttl_above_six_hours_is_refused(imds: FakeImds) -> None:
    assert _token_response(imds, "21601")[0] == 400


def test_instance_id_type_and_zone_come_from_the_emulator(imds: FakeImds, instance_id: str) -> None:
    token = _token(imds)
    assert _get(imds, "/latest/meta-data/instance-id", token) == (200, instance_id)
    assert _get(imds, "/latest/meta-data/instance-type", token) == (200, "g4dn.xlarge")
    assert _get(imds, "/latest/meta-data/placement/availability-zone", token) == (
        200,
        "eu-west-1b",
    )


def test_identity_document_names_instance_region_and_account(
    imds: FakeImds, instance_id: str, local_aws: LocalAws
) -> None:
    status, body = _get(imds, "/latest/dynamic/instance-identity/document", _token(imds))
    document: dict[str, Any] = json.loads(body)
    assert status == 200
    assert document["instanceId"] == instance_id
    assert document["region"] == local_aws.region
    assert document["accountId"] == local_aws.account_id
    assert document["availabilityZone"] == "eu-west-1b"
    assert document["instanceType"] == "g4dn.xlarge"


def test_tags_are_hidden_when_instance_metadata_tags_is_disabled(imds: FakeImds) -> None:
    assert _get(imds, "/latest/meta-data/tags/instance/Project", _token(imds))[0] == 404


def test_tags_are_served_when_instance_metadata_tags_is_enabled(local_aws: LocalAws) -> None:
    server = _imds_for(local_aws, _run_instance(local_aws, metadata_tags="enabled"))
    try:
        token = _token(server)
        assert _get(server, "/latest/meta-data/tags/instance", token) == (200, "Project\nRunName")
        assert _get(server, "/latest/meta-data/tags/instance/RunName", token) == (200, "r1")
        assert _get(server, "/latest/meta-data/tags/instance/Missing", token)[0] == 404
    finally:
        server.stop()


def test_answers_follow_the_emulator_not_a_copy(
    imds: FakeImds, instance_id: str, local_aws: LocalAws
) -> None:
    local_aws.client("ec2").modify_instance_attribute(
        InstanceId=instance_id, InstanceType={"Value": "g5.xlarge"}
    )
    assert _get(imds, "/latest/meta-data/instance-type", _token(imds)) == (200, "g5.xlarge")


def test_unknown_path_is_404(imds: FakeImds) -> None:
    assert _get(imds, "/latest/meta-data/no-such-thing", _token(imds))[0] == 404


def _run_instance_with_profile(aws: LocalAws) -> str:
    iam = aws.client("iam")
    iam.create_instance_profile(InstanceProfileName="gpu-model-instance")
    ec2 = aws.client("ec2")
    reservation = ec2.run_instances(
        ImageId="ami-12c6146b",
        InstanceType="g4dn.xlarge",
        MinCount=1,
        MaxCount=1,
        IamInstanceProfile={"Name": "gpu-model-instance"},
    )
    instance_id: str = reservation["Instances"][0]["InstanceId"]
    return instance_id


def test_instance_profile_credentials_are_served_as_the_sdks_read_them(
    local_aws: LocalAws,
) -> None:
    server = _imds_for(local_aws, _run_instance_with_profile(local_aws))
    try:
        token = _token(server)
        status, role = _get(server, "/latest/meta-data/iam/security-credentials/", token)
        assert (status, role) == (200, "gpu-model-instance")
        status, body = _get(server, f"/latest/meta-data/iam/security-credentials/{role}", token)
        assert status == 200
        credentials = json.loads(body)
        assert credentials["Code"] == "Success"
        assert {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} <= credentials.keys()
    finally:
        server.stop()


def test_no_credentials_without_an_instance_profile(imds: FakeImds) -> None:
    status, _ = _get(imds, "/latest/meta-data/iam/security-credentials/", _token(imds))
    assert status == 404
