"""The dashboard and alarms chart what the agent and the launcher publish: every metric name on
terraform/modules/monitoring's dashboard (as Terraform plans it) is one that
instance_agent/run_metrics.py or functions/launcher/metric_names.py emits, in the namespace and
with the dimensions they use; every duration and count they emit is on it. A misspelt name would
otherwise be an empty graph nobody notices until the week it matters."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from instance_agent import run_metrics
from launcher import metric_names
from local_aws import terraform_values
from local_aws.deployment import LocalSettings

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = "module.monitoring.aws_cloudwatch_dashboard.this"
PAST_LIFETIME_ALARM = "module.monitoring.aws_cloudwatch_metric_alarm.instance_past_lifetime"
STATES_EXECUTION_METRICS = frozenset(
    {"ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut"}
    | {"ExecutionsAborted", "ExecutionThrottled", "ExecutionTime"}
)
# What the agent's EMF line holds besides its metrics (run_metrics.build_emf, agent.py).
AGENT_LINE_FIELDS = frozenset(
    {"Service", "InstanceType", "ExecutionName", "InstanceId", "AvailabilityZone"}
    | {"ModelVersion", "ModelBytes", "@timestamp"}
)


@dataclass(frozen=True)
class Charted:
    namespace: str
    name: str
    dimensions: dict[str, str]


@pytest.fixture(scope="module")
def planned() -> terraform_values.TerraformValues:
    return terraform_values.plan(LocalSettings(), account_id="123456789012")


def widgets(planned: terraform_values.TerraformValues) -> list[dict[str, Any]]:
    body = json.loads(planned.evaluation.resource(DASHBOARD)["dashboard_body"])
    found: list[dict[str, Any]] = body["widgets"]
    return found


def charted(planned: terraform_values.TerraformValues) -> list[Charted]:
    metrics: list[Charted] = []
    for widget in widgets(planned):
        for row in widget["properties"].get("metrics", []):
            # [namespace, name, dimension, value, ...]; no "." shorthand (it would hide a name).
            assert all(isinstance(part, str) and part != "." for part in row), row
            namespace, name, *pairs = row
            dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
            metrics.append(Charted(namespace, name, dimensions))
    return metrics


def namespace(planned: terraform_values.TerraformValues) -> str:
    agent = planned.agent_config()["metrics"]["namespace"]
    launcher = planned.launcher_environment()["POWERTOOLS_METRICS_NAMESPACE"]
    assert agent == launcher, "the agent and the launcher publish to different namespaces"
    return str(agent)


def test_every_charted_metric_is_one_somebody_publishes(
    planned: terraform_values.TerraformValues,
) -> None:
    ours = namespace(planned)
    service = planned.launcher_environment()["POWERTOOLS_SERVICE_NAME"]
    for metric in charted(planned):
        if metric.namespace == "AWS/States":
            assert metric.name in STATES_EXECUTION_METRICS, metric
            assert set(metric.dimensions) == {"StateMachineArn"}, metric
            continue
        assert metric.namespace == ours, metric
        if metric.dimensions == {"Service": run_metrics.SERVICE}:
            assert metric.name in run_metrics.METRIC_UNITS, metric
            assert list(metric.dimensions) in run_metrics.DIMENSION_SETS
        elif metric.dimensions == {"service": service}:
            assert metric.name in metric_names.COUNTS, metric
        else:
            raise AssertionError(f"{metric}: neither the agent's nor the launcher's dimensions")


def test_every_metric_published_is_on_the_dashboard(
    planned: terraform_values.TerraformValues,
) -> None:
    names = {metric.name for metric in charted(planned)}
    durations = {n for n, unit in run_metrics.METRIC_UNITS.items() if unit != "Count"}

    assert durations - names == set(), "agent durations missing from the dashboard"
    assert metric_names.COUNTS - names == set(), "launcher counts missing from the dashboard"


def test_the_last_runs_table_reads_fields_of_the_agents_line(
    planned: terraform_values.TerraformValues,
) -> None:
    (query,) = [w["properties"]["query"] for w in widgets(planned) if w["type"] == "log"]
    fields = re.search(r"\|\s*fields ([^|]+)", query)
    assert fields is not None, query
    named = {field.strip() for field in fields.group(1).split(",")}

    assert named - set(run_metrics.METRIC_UNITS) - AGENT_LINE_FIELDS == set()
    agent_log_group = planned.evaluation.resource("aws_cloudwatch_log_group.agent")["name"]
    assert query.startswith(f"SOURCE '{agent_log_group}' |"), query
    assert f"Service = '{run_metrics.SERVICE}'" in query


def test_the_past_lifetime_alarm_watches_the_sweepers_count(
    planned: terraform_values.TerraformValues,
) -> None:
    alarm = planned.evaluation.resource(PAST_LIFETIME_ALARM)

    assert alarm["metric_name"] == metric_names.INSTANCES_PAST_LIFETIME
    assert alarm["namespace"] == namespace(planned)
    assert alarm["dimensions"] == {
        "service": planned.launcher_environment()["POWERTOOLS_SERVICE_NAME"]
    }


# Where people read the metric names: each list must be whole.
AGENT_METRICS_DOCS = ("docs/design.md", "docs/operations.md", "instance_agent/README.md")
LAUNCHER_METRICS_DOCS = ("docs/design.md", "docs/operations.md", "functions/launcher/README.md")


@pytest.mark.parametrize("doc", AGENT_METRICS_DOCS)
def test_the_docs_name_every_agent_metric(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert [m for m in run_metrics.METRIC_UNITS if f"`{m}`" not in text] == []


@pytest.mark.parametrize("doc", LAUNCHER_METRICS_DOCS)
def test_the_docs_name_every_launcher_count(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert sorted(m for m in metric_names.COUNTS if f"`{m}`" not in text) == []
