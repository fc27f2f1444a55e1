"""The local Lambda runtime: a Python function's deployed code runs as Lambda runs it."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import pytest

from local_aws.server import LocalAws
from tests.local_aws.moto_workarounds.conftest import (
    create_state_machine,
    function_zip,
)
from tests.support.workflow import wait_for_end

pytestmark = pytest.mark.slow

HANDLERS = '''
import json, os, time

calls = 0


class ModelBucketMissingError(Exception):
    """A handler's own error class, whose name Step Functions must see."""


def add(event, context):
    return {"sum": event["a"] + event["b"]}


def environment(event, context):
    return {"environment": dict(os.environ), "pid": os.getpid()}


def context_of(event, context):
    return {
        "name": context.function_name,
        "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
    }


def fails(event, context):
    raise ModelBucketMissingError("bucket models-x does not exist")


def returns_a_set(event, context):
    return {1, 2}


def sleeps(event, context):
    time.sleep(event["seconds"])
    return {"slept": event["seconds"]}


def counts(event, context):
    global calls
    calls += 1
    time.sleep(event.get("seconds", 0))
    return {"calls": calls, "pid": os.getpid()}


def prints(event, context):
    print(json.dumps({"level": "INFO", "message": event["message"]}))
    return {}
'''


def deploy(
    aws: LocalAws,
    name: str,
    handler: str,
    *,
    environment: dict[str, str] | None = None,
    runtime: str = "python3.12",
    timeout: int = 30,
) -> str:
    iam = aws.client("iam")
    try:
        role = iam.get_role(RoleName="runtime-test")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="runtime-test", AssumeRolePolicyDocument="{}")["Role"][
            "Arn"
        ]
    arn: str = aws.client("lambda").create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=role,
        Handler=f"handlers.{handler}",
        Code={"ZipFile": function_zip(HANDLERS, module="handlers")},
        Timeout=timeout,
        MemorySize=256,
        Environment={"Variables": environment or {}},
    )["FunctionArn"]
    return arn


def invoke(aws: LocalAws, name: str, event: dict[str, Any] | None = None) -> tuple[Any, str | None]:
    """(decoded payload, FunctionError or None)."""
    response = aws.client("lambda").invoke(
        FunctionName=name, Payload=json.dumps(event or {}).encode()
    )
    return json.loads(response["Payload"].read()), response.get("FunctionError")


def test_an_invoke_runs_the_deployed_handler_and_returns_its_result(local_aws: LocalAws) -> None:
    deploy(local_aws, "adder", "add")

    assert invoke(local_aws, "adder", {"a": 2, "b": 3}) == ({"sum": 5}, None)


def test_the_handler_sees_the_functions_variables_and_lambdas_own(local_aws: LocalAws) -> None:
    deploy(local_aws, "env-reader", "environment", environment={"PROJECT_NAME": "p1"})

    payload, _ = invoke(local_aws, "env-reader")

    environment = payload["environment"]
    assert environment["PROJECT_NAME"] == "p1"
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == "env-reader"
    assert environment["AWS_REGION"] == local_aws.region
    # Nothing of the emulator's own environment (its credentials, a developer's profile).
    assert not {"AWS_ACCESS_KEY_ID", "AWS_PROFILE", "PYTEST_CURRENT_TEST"} & set(environment)


def test_the_emulators_environment_never_changes_during_an_invocation(
    local_aws: LocalAws,
) -> None:
    deploy(local_aws, "slow-env", "sleeps", environment={"PROJECT_NAME": "p1"})
    before = dict(os.environ)
    samples: list[dict[str, str]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(dict(os.environ))
            done.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        invoke(local_aws, "slow-env", {"seconds": 0.5})
    finally:
        done.set()
        sampler.join()

    assert samples
    assert all(seen == before for seen in samples)


def test_each_invocation_is_a_process_of_its_own_with_nothing_carried_over(
    local_aws: LocalAws,
) -> None:
    deploy(local_aws, "counter", "counts")
    results: list[Any] = []

    def call() -> None:
        results.append(invoke(local_aws, "counter", {"seconds": 0.5})[0])

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.append(invoke(local_aws, "counter")[0])

    assert [r["calls"] for r in results] == [1, 1, 1]
    assert len({r["pid"] for r in results}) == 3
    assert os.getpid() not in {r["pid"] for r in results}


def test_the_handler_receives_a_lambda_context_describing_the_function(
    local_aws: LocalAws,
) -> None:
    arn = deploy(local_aws, "ctx", "context_of")

    result, _ = invoke(local_aws, "ctx")

    assert result["name"] == "ctx"
    assert result["arn"] == arn
    assert result["memory"] == 256
    assert 0 < result["remaining_ms"] <= 30_000
    assert result["request_id"]


def test_a_handler_exception_becomes_a_function_error_named_after_its_class(
    local_aws: LocalAws,
) -> None:
    deploy(local_aws, "fails", "fails")

    payload, error = invoke(local_aws, "fails")

    assert error == "Unhandled"
    assert payload["errorType"] == "ModelBucketMissingError"
    assert payload["errorMessage"] == "bucket models-x does not exist"


def test_step_functions_catches_a_handler_exception_by_its_class_name(
    local_aws: LocalAws,
) -> None:
    arn = deploy(local_aws, "fails-in-workflow", "fails")
    sfn = local_aws.client("stepfunctions")
    machine = create_state_machine(
        sfn,
        {
            "StartAt": "Call",
            "States": {
                "Call": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": arn, "Payload": {}},
                    "Catch": [
                        {
                            "ErrorEquals": ["ModelBucketMissingError"],
                            "ResultPath": "$.error",
                            "Next": "Caught",
                        }
                    ],
                    "End": True,
                },
                "Caught": {"Type": "Pass", "End": True},
            },
        },
        "catches",
    )

    execution = sfn.start_execution(stateMachineArn=machine, name="catches")["executionArn"]
    ended = wait_for_end(sfn, execution)

    assert ended["status"] == "SUCCEEDED"
    error = json.loads(ended["output"])["error"]
    assert error["Error"] == "ModelBucketMissingError"
    assert json.loads(error["Cause"])["errorMessage"] == "bucket models-x does not exist"


def test_a_result_that_is_not_json_becomes_a_marshal_error(local_aws: LocalAws) -> None:
    deploy(local_aws, "returns-a-set", "returns_a_set")

    payload, error = invoke(local_aws, "returns-a-set")

    assert (error, payload["errorType"]) == ("Unhandled", "Runtime.MarshalError")


def test_a_handler_that_cannot_be_imported_is_an_import_module_error(
    local_aws: LocalAws,
) -> None:
    deploy(local_aws, "missing", "no_such_function")

    payload, error = invoke(local_aws, "missing")

    assert (error, payload["errorType"]) == ("Unhandled", "Runtime.ImportModuleError")
    assert "no_such_function" in payload["errorMessage"]


def test_an_invocation_past_the_functions_timeout_is_killed(local_aws: LocalAws) -> None:
    deploy(local_aws, "too-slow", "sleeps", timeout=1)

    payload, error = invoke(local_aws, "too-slow", {"seconds": 30})

    assert (error, payload["errorType"]) == ("Unhandled", "Sandbox.Timedout")
    assert "1.00 seconds" in payload["errorMessage"]


def test_what_the_function_prints_goes_to_its_log_group(local_aws: LocalAws) -> None:
    deploy(local_aws, "printer", "prints")

    invoke(local_aws, "printer", {"message": "hello from the function"})

    logs = local_aws.client("logs")
    (stream,) = logs.describe_log_streams(logGroupName="/aws/lambda/printer")["logStreams"]
    events = logs.get_log_events(
        logGroupName="/aws/lambda/printer", logStreamName=stream["logStreamName"]
    )["events"]
    assert [json.loads(e["message"])["message"] for e in events] == ["hello from the function"]


def test_a_function_of_another_runtime_keeps_motos_echo(local_aws: LocalAws) -> None:
    deploy(local_aws, "node", "add", runtime="nodejs20.x")

    assert invoke(local_aws, "node", {"x": 1}) == ({"x": 1}, None)
