"""Local stand-ins for the two nets outside the execution, driven by what is deployed.

moto 5.2.5 emits no "Step Functions Execution Status Change" events, its PutEvents cannot deliver
to a Lambda target (``events/models.py`` raises NotImplementedError for it), and it never fires
EventBridge Scheduler schedules. So:

- ``ExecutionStatusWatcher`` polls the emulator's executions; each one that ends becomes the
  event AWS would emit, which is matched against every deployed rule's pattern and delivered to
  the rule's Lambda targets through their input transformer (``deliver_event``: the one place).
- ``ScheduleTicker`` reads a deployed schedule (``rate(...)`` only) and invokes its Lambda target
  with its input at that rate, divided by ``compression`` so tests run in seconds.

Only the rule, its targets and the schedule read from the emulator decide what is delivered: a
wrong pattern or transformer in the deploy shows up here as a net that does not fire.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from local_aws.server import LocalAws
from run_contract.statuses import TERMINAL_STATUSES

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One invocation made by a net, with what the target answered."""

    source: str
    target_arn: str
    payload: Any
    at: float
    response: Any
    function_error: str | None


def _json_path(event: Any, path: str) -> Any:
    """EventBridge's InputPathsMap paths: ``$.a.b`` dot notation (what our rules use)."""
    if not path.startswith("$"):
        raise ValueError(f"InputPathsMap path {path!r} must start with '$'")
    value = event
    for part in [p for p in path[1:].split(".") if p]:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def transform_input(transformer: dict[str, Any], event: dict[str, Any]) -> Any:
    """Apply an InputTransformer as EventBridge documents it.

    A placeholder inside a JSON string is replaced by the value's text; outside a string, a
    string value becomes a JSON string and anything else its JSON form.
    """
    values = {
        name: _json_path(event, path) for name, path in transformer.get("InputPathsMap", {}).items()
    }
    template: str = transformer["InputTemplate"]
    out: list[str] = []
    in_string = False
    index = 0
    while index < len(template):
        char = template[index]
        match = _PLACEHOLDER.match(template, index) if char == "<" else None
        if match and match.group(1) in values:
            value = values[match.group(1)]
            if in_string:
                text = value if isinstance(value, str) else json.dumps(value)
                out.append(json.dumps(text)[1:-1])
            else:
                out.append(json.dumps(value))
            index = match.end()
            continue
        if char == '"' and (index == 0 or template[index - 1] != "\\"):
            in_string = not in_string
        out.append(char)
        index += 1
    text = "".join(out)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a plain-text template is delivered as a string


def matches_pattern(pattern: Any, event: Any) -> bool:
    """EventBridge matching for exact-value lists and nested objects (what our rules use)."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(
            key in event and matches_pattern(sub, event[key]) for key, sub in pattern.items()
        )
    if isinstance(pattern, list):
        for allowed in pattern:
            if isinstance(allowed, dict):
                raise NotImplementedError(
                    f"event pattern operator {allowed} is not supported by the local net; "
                    "extend local_aws/safety_nets.matches_pattern"
                )
        return event in pattern
    raise ValueError(f"event pattern leaf must be a list of values, got {pattern!r}")


def execution_status_event(
    execution: dict[str, Any], account_id: str, region: str
) -> dict[str, Any]:
    """The "Step Functions Execution Status Change" event AWS emits for ``execution``."""

    def millis(value: Any) -> int | None:
        return int(value.timestamp() * 1000) if isinstance(value, datetime) else None

    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [execution["executionArn"]],
        "detail": {
            "executionArn": execution["executionArn"],
            "stateMachineArn": execution["stateMachineArn"],
            "name": execution.get("name"),
            "status": execution["status"],
            "startDate": millis(execution.get("startDate")),
            "stopDate": millis(execution.get("stopDate")),
            "input": execution.get("input"),
            "output": execution.get("output"),
            "error": execution.get("error"),
            "cause": execution.get("cause"),
        },
    }


def _invoke(aws: LocalAws, source: str, target_arn: str, payload: Any) -> Delivery:
    if ":lambda:" not in target_arn:
        raise NotImplementedError(f"{source}: only Lambda targets are delivered, not {target_arn}")
    response = aws.client("lambda").invoke(
        FunctionName=target_arn, Payload=json.dumps(payload).encode("utf-8")
    )
    body = response["Payload"].read()
    return Delivery(
        source=source,
        target_arn=target_arn,
        payload=payload,
        at=time.time(),
        response=json.loads(body) if body else None,
        function_error=response.get("FunctionError"),
    )


def deliver_event(aws: LocalAws, event: dict[str, Any]) -> list[Delivery]:
    """Route ``event`` as EventBridge's default bus would: every enabled matching rule's targets."""
    events = aws.client("events")
    deliveries = []
    for rule in events.list_rules()["Rules"]:
        if rule.get("State") != "ENABLED" or "EventPattern" not in rule:
            continue
        if not matches_pattern(json.loads(rule["EventPattern"]), event):
            continue
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
            if "InputTransformer" in target:
                payload = transform_input(target["InputTransformer"], event)
            elif "Input" in target:
                payload = json.loads(target["Input"])
            else:
                payload = event
            deliveries.append(_invoke(aws, f"rule {rule['Name']}", target["Arn"], payload))
    return deliveries


class _Poller:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.deliveries: list[Delivery] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _tick(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._tick()
            except Exception as exc:  # surfaced by stop()
                self.error = exc
                return

    def start(self) -> _Poller:
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.error is not None:
            raise RuntimeError(f"{type(self).__name__} failed: {self.error}") from self.error


class ExecutionStatusWatcher(_Poller):
    """Turns each execution end of ``state_machine_arn`` into its status-change event."""

    def __init__(self, aws: LocalAws, state_machine_arn: str, interval: float = 0.2) -> None:
        super().__init__(interval)
        self.aws = aws
        self.state_machine_arn = state_machine_arn
        self._seen: set[str] = set()

    def _tick(self) -> None:
        sfn = self.aws.client("stepfunctions")
        for listed in sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]:
            arn = listed["executionArn"]
            if arn in self._seen or listed["status"] not in TERMINAL_STATUSES:
                continue
            self._seen.add(arn)
            execution = sfn.describe_execution(executionArn=arn)
            event = execution_status_event(execution, self.aws.account_id, self.aws.region)
            self.deliveries.extend(deliver_event(self.aws, event))


def instance_state_event(
    instance_id: str, state: str, account_id: str, region: str
) -> dict[str, Any]:
    """The "EC2 Instance State-change Notification" event AWS emits for an instance."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:ec2:{region}:{account_id}:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, "state": state},
    }


class InstanceStateWatcher(_Poller):
    """Turns each instance's change of state into EC2's state-change event, for every instance
    of the account (as EventBridge does: the events carry no tags)."""

    def __init__(self, aws: LocalAws, interval: float = 0.2) -> None:
        super().__init__(interval)
        self.aws = aws
        self._states: dict[str, str] = {}

    def _tick(self) -> None:
        ec2 = self.aws.client("ec2")
        for reservation in ec2.describe_instances()["Reservations"]:
            for instance in reservation["Instances"]:
                instance_id, state = instance["InstanceId"], instance["State"]["Name"]
                if self._states.get(instance_id) == state:
                    continue
                self._states[instance_id] = state
                event = instance_state_event(
                    instance_id, state, self.aws.account_id, self.aws.region
                )
                self.deliveries.extend(deliver_event(self.aws, event))


def rate_seconds(expression: str) -> float:
    """Seconds between firings of a ``rate(N unit)`` schedule expression."""
    match = _RATE.match(expression)
    if match is None:
        raise ValueError(
            f"schedule expression {expression!r}: the local ticker supports rate(N minutes|hours|"
            "days) only; use a rate() for the sweeper"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


class ScheduleTicker(_Poller):
    """Fires a deployed schedule's Lambda target with its input, ``compression`` times faster."""

    def __init__(self, aws: LocalAws, schedule_name: str, compression: float = 1.0) -> None:
        if compression <= 0:
            raise ValueError(f"compression must be > 0, got {compression}")
        schedule = aws.client("scheduler").get_schedule(Name=schedule_name)
        super().__init__(rate_seconds(schedule["ScheduleExpression"]) / compression)
        self.aws = aws
        self.schedule_name = schedule_name
        self.enabled = schedule.get("State", "ENABLED") == "ENABLED"
        self.target = schedule["Target"]

    def _tick(self) -> None:
        if self.enabled:
            payload = json.loads(self.target.get("Input", "{}"))
            delivery = _invoke(
                self.aws, f"schedule {self.schedule_name}", self.target["Arn"], payload
            )
            self.deliveries.append(delivery)
