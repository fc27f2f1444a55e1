"""Fixtures for the launcher's tests: moto in-process, a VPC with three subnets, a launch
template, a state machine with a RUNNING execution, and a fake Lambda context."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws

from launcher import app, clients

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import TagSpecificationTypeDef, TagTypeDef
    from mypy_boto3_stepfunctions import SFNClient

REGION = "eu-west-1"
PROJECT = "scheduled-gpu-model"
# moto's account; the state machine and activity the fixtures create under these names.
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:123456789012:stateMachine:{PROJECT}"
ACTIVITY_ARN = f"arn:aws:states:{REGION}:123456789012:activity:{PROJECT}-run-model"
EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
TEMPLATE_INSTANCE_TYPE: Final = "t3.micro"  # the template's own type, which start must override
TEMPLATE_USER_DATA = "I2Nsb3VkLWNvbmZpZwo="  # base64 of "#cloud-config\n"


def load_event(name: str) -> Any:
    """A JSON event fixture from tests/events/."""
    return json.loads((EVENTS_DIR / name).read_text())


@dataclass(frozen=True)
class FakeLambdaContext:
    """What Powertools' Logger reads from the Lambda context."""

    function_name: str = "scheduled-gpu-model-launcher"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        f"arn:aws:lambda:{REGION}:123456789012:function:scheduled-gpu-model-launcher"
    )
    aws_request_id: str = "5b2d6c1e-0000-4000-8000-000000000001"
    log_group_name: str = "/aws/lambda/scheduled-gpu-model-launcher"
    log_stream_name: str = "2025/01/07/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_context() -> LambdaContext:
    return cast(LambdaContext, FakeLambdaContext())


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment Terraform gives the function, minus the template id (set later)."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_ENDPOINT_URL_EC2"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # moto builds its 5,000 default AMIs per backend otherwise: 1.5 s per test for nothing.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.setenv("PROJECT_NAME", PROJECT)
    monkeypatch.setenv("STATE_MACHINE_ARN", STATE_MACHINE_ARN)
    monkeypatch.setenv("ACTIVITY_ARN", ACTIVITY_ARN)
    monkeypatch.setenv("LAUNCH_TEMPLATE_VERSION", "$Latest")
    monkeypatch.setenv("MAX_INSTANCE_LIFETIME_SECONDS", "7200")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "launcher")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ScheduledGpuModelTest")


@pytest.fixture
def aws(env: None) -> Iterator[None]:
    """moto in-process, with the launcher's lazily created clients reset around each test."""
    clients.ec2_client = clients.sfn_client = clients.s3_client = None
    clients.poll_sfn_client = None
    with mock_aws():
        yield
    clients.ec2_client = clients.sfn_client = clients.s3_client = None
    clients.poll_sfn_client = None


class RefusingClient:
    """Stands in for every AWS client where a test needs no AWS at all: any use fails."""

    def __init__(self, service: str) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected AWS use: {self._service}.{name}")


@pytest.fixture
def no_aws(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """No mocked AWS at all (for the edge's refusals): the launcher's clients, and any new
    boto3 client, fail on first use, so a test passes only if no AWS call was attempted."""
    monkeypatch.setattr(clients, "ec2_client", RefusingClient("ec2"))
    monkeypatch.setattr(clients, "sfn_client", RefusingClient("stepfunctions"))
    monkeypatch.setattr(clients, "s3_client", RefusingClient("s3"))
    monkeypatch.setattr(boto3, "client", lambda service, *a, **k: RefusingClient(service))
    monkeypatch.setenv("LAUNCH_TEMPLATE_ID", "lt-0123456789abcdef0")


RUN_RECORDS_BUCKET = "scheduled-gpu-model-models"


@pytest.fixture
def s3(aws: None) -> Any:
    """The model bucket, where stop writes the run records."""
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(
        Bucket=RUN_RECORDS_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return client


@pytest.fixture
def ec2(aws: None) -> EC2Client:
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture
def sfn(aws: None) -> SFNClient:
    return boto3.client("stepfunctions", region_name=REGION)


@dataclass(frozen=True)
class Network:
    subnet_ids: list[str]
    zones: list[str]
    security_group_id: str


@pytest.fixture
def network(ec2: EC2Client) -> Network:
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    zones = [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.20.{n}.0/24", AvailabilityZone=zone)[
            "Subnet"
        ]["SubnetId"]
        for n, zone in enumerate(zones)
    ]
    group_id = ec2.create_security_group(
        GroupName="gpu-model", Description="no ingress", VpcId=vpc_id
    )["GroupId"]
    return Network(subnet_ids=subnet_ids, zones=zones, security_group_id=group_id)


@dataclass(frozen=True)
class Template:
    template_id: str
    image_id: str


@pytest.fixture
def launch_template(ec2: EC2Client, network: Network, monkeypatch: pytest.MonkeyPatch) -> Template:
    """A launch template carrying every instance setting, as Terraform declares it."""
    # moto does not check AMIs by default; a made-up id shows where the instance's came from.
    image_id = "ami-0f00dfeedc0ffee42"
    template_id = ec2.create_launch_template(
        LaunchTemplateName="scheduled-gpu-model",
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": TEMPLATE_INSTANCE_TYPE,
            "InstanceInitiatedShutdownBehavior": "terminate",
            "SecurityGroupIds": [network.security_group_id],
            "UserData": TEMPLATE_USER_DATA,
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
            "BlockDeviceMappings": [
                {
                    "DeviceName": "/dev/sda1",
                    "Ebs": {
                        "VolumeSize": 60,
                        "VolumeType": "gp3",
                        "Encrypted": True,
                        "DeleteOnTermination": True,
                    },
                }
            ],
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    monkeypatch.setenv("LAUNCH_TEMPLATE_ID", template_id)
    return Template(template_id=template_id, image_id=image_id)


@dataclass(frozen=True)
class Workflow:
    state_machine_arn: str
    execution_arn: str
    execution_name: str


_DEFINITION = json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}})


@pytest.fixture
def workflow(sfn: SFNClient) -> Workflow:
    """A state machine with one RUNNING execution: the one the start events belong to."""
    machine_arn = sfn.create_state_machine(
        name="scheduled-gpu-model",
        definition=_DEFINITION,
        roleArn="arn:aws:iam::123456789012:role/scheduled-gpu-model-workflow",
    )["stateMachineArn"]
    execution_arn = sfn.start_execution(stateMachineArn=machine_arn, name="weekly-2025-01-07")[
        "executionArn"
    ]
    return Workflow(machine_arn, execution_arn, "weekly-2025-01-07")


@pytest.fixture
def start_event(workflow: Workflow, network: Network, launch_template: Template) -> dict[str, Any]:
    """tests/events/start.json, pointed at the moto state machine and subnets."""
    event = load_event("start.json")
    event["execution_arn"] = workflow.execution_arn
    event["execution_name"] = workflow.execution_name
    event["state_machine_arn"] = workflow.state_machine_arn
    event["run"]["instance_types"] = ["g4dn.xlarge", "g5.xlarge"]
    event["run"]["subnet_ids"] = network.subnet_ids[:2]
    return cast(dict[str, Any], event)


Invoke = Callable[[Any], dict[str, Any]]


@pytest.fixture
def invoke(lambda_context: LambdaContext) -> Invoke:
    """Call the real handler, checking its result is plain JSON as Step Functions needs."""

    def call(event: Any) -> dict[str, Any]:
        result = app.handler(event, lambda_context)
        assert json.loads(json.dumps(result)) == result
        return cast(dict[str, Any], result)

    return call


@dataclass
class CallLog:
    """Every AWS API call the launcher's own clients made, as (service, operation, params)."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def operations(self, service: str | None = None) -> list[str]:
        return [op for svc, op, _ in self.calls if service is None or svc == service]

    def params(self, operation: str) -> list[dict[str, Any]]:
        return [p for _, op, p in self.calls if op == operation]


@pytest.fixture
def aws_calls(aws: None) -> CallLog:
    """Create the launcher's clients now and record every call they make."""
    log = CallLog()

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        log.calls.append((model.service_model.service_name, model.name, dict(params)))

    for client in (clients.ec2(), clients.stepfunctions()):
        # The API parameters as the launcher passed them, before serialisation.
        client.meta.events.register("before-parameter-build.*.*", record)
    return log


@dataclass
class RunInstancesFailures:
    """Makes RunInstances fail with a given error code for chosen type/subnet pairs."""

    errors: dict[tuple[str, str], str] = field(default_factory=dict)
    attempts: list[tuple[str, str]] = field(default_factory=list)
    status: int = 500

    def fail(self, instance_type: str, subnet_id: str, code: str) -> None:
        self.errors[(instance_type, subnet_id)] = code


@pytest.fixture
def run_instances_failures(aws: None) -> RunInstancesFailures:
    """A patched RunInstances on the launcher's real (moto) client: listed pairs fail before
    reaching moto, every other pair is launched by moto."""
    failures = RunInstancesFailures()

    def maybe_fail(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        body = params["body"]
        pair = (body["InstanceType"], body["SubnetId"])
        failures.attempts.append(pair)
        code = failures.errors.get(pair)
        if code is None:
            return None
        status = 503 if code == "RequestLimitExceeded" else 400
        if code in {"InternalError", "ServiceUnavailable"}:
            status = 500
        error = {
            "Error": {"Code": code, "Message": f"{code} for {pair[0]} in {pair[1]}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return _HttpStatus(status), error

    # A before-call handler that returns (http response, parsed error) replaces the request.
    handler: Any = maybe_fail
    clients.ec2().meta.events.register("before-call.ec2.RunInstances", handler)
    return failures


@dataclass(frozen=True)
class _HttpStatus:
    status_code: int


def instance_of(ec2: EC2Client, instance_id: str) -> Any:
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]


def tags_of(resource: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def launch_tagged(ec2: EC2Client, template: Template, subnet_id: str, tags: dict[str, str]) -> str:
    """An instance launched outside the launcher (a leftover, or someone else's)."""
    spec: list[TagTypeDef] = [{"Key": k, "Value": v} for k, v in tags.items()]
    tagging: list[TagSpecificationTypeDef] = [{"ResourceType": "instance", "Tags": spec}]
    return ec2.run_instances(
        LaunchTemplate={"LaunchTemplateId": template.template_id, "Version": "$Latest"},
        SubnetId=subnet_id,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=tagging if spec else [],
    )["Instances"][0]["InstanceId"]
