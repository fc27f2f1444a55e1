"""Names that cross a boundary: the error names (agent, launcher, the state machine's Retry and
Catch, the design), the run parameters (Terraform's defaults, the launcher's model, gpurun) and
the statuses, each pinned to ``run_contract``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

import hcl2

import instance_agent.errors as agent_errors
import launcher.errors as launcher_errors
from instance_agent.config import DEFAULT_CONFIG_PATH
from launcher.events import CleanupEvent, RunParameters
from run_contract import statuses
from run_contract.error_names import AGENT_ERRORS, LAUNCHER_ERRORS, LAUNCHER_TRANSIENT_ERROR
from run_contract.run_parameters import RUN_PARAMETERS

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "terraform/modules/workflow/weekly_run.asl.json.tftpl"
DESIGN = ROOT / "docs/design.md"
# Names Step Functions and the Lambda service define, not this project.
FOREIGN_PREFIXES = ("States.", "Lambda.")


def subclasses(base: type[Any]) -> list[type[Any]]:
    found = []
    for cls in base.__subclasses__():
        found += [cls, *subclasses(cls)]
    return found


def error_equals() -> dict[str, list[str]]:
    """Each Task state's ErrorEquals names, from the template's text (rendering is not needed)."""
    text = ASL.read_text(encoding="utf-8")
    found: dict[str, list[str]] = {}
    for state, body in re.findall(r'\n    "(\w+)": \{(.*?)\n    \}', text, re.S):
        names = re.findall(r'"ErrorEquals":\s*\[([^\]]*)\]', body)
        found[state] = [json.loads(n) for group in names for n in re.findall(r'"[^"]+"', group)]
    return found


def design_names(after: str) -> set[str]:
    """The backquoted names of the paragraph of docs/design.md that starts with ``after``."""
    text = DESIGN.read_text(encoding="utf-8")
    paragraph = text.split(after, 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"`([A-Z][A-Za-z]+)`", paragraph))


def test_the_agent_reports_exactly_the_declared_errors() -> None:
    names = {agent_errors.AgentFailure.error_name} | {
        cls.error_name for cls in subclasses(agent_errors.AgentFailure)
    }
    assert names == set(AGENT_ERRORS)


def test_the_launcher_raises_exactly_the_declared_errors() -> None:
    names = {cls.__name__ for cls in subclasses(launcher_errors.LauncherError)}
    assert names == set(LAUNCHER_ERRORS)
    assert LAUNCHER_TRANSIENT_ERROR in LAUNCHER_ERRORS


def test_the_state_machine_matches_only_declared_errors() -> None:
    ours = {
        name
        for names in error_equals().values()
        for name in names
        if not name.startswith(FOREIGN_PREFIXES)
    }
    assert ours
    assert ours <= set(AGENT_ERRORS) | set(LAUNCHER_ERRORS)


def test_the_state_machine_retries_the_launchers_transient_error_when_starting() -> None:
    assert LAUNCHER_TRANSIENT_ERROR in error_equals()["StartInstance"]


def test_the_design_lists_the_agents_errors() -> None:
    assert design_names("Failure error names:") == set(AGENT_ERRORS)


def test_the_design_lists_the_launchers_errors() -> None:
    assert design_names("Error classes:") >= set(LAUNCHER_ERRORS)
    assert design_names("Error classes:") - set(LAUNCHER_ERRORS) == {"ClientError"}


def test_the_launcher_validates_exactly_the_run_parameters() -> None:
    assert tuple(RunParameters.model_fields) == RUN_PARAMETERS


def test_terraform_gives_every_run_parameter_a_default() -> None:
    with (ROOT / "terraform/main.tf").open(encoding="utf-8") as handle:
        parsed = hcl2.load(handle)
    # python-hcl2 keeps the block label's quotes.
    (workflow,) = [m['"workflow"'] for m in parsed["module"] if '"workflow"' in m]
    assert tuple(workflow["run_defaults"]) == RUN_PARAMETERS


def test_the_terminal_statuses_are_the_step_functions_ones() -> None:
    assert set(statuses.TERMINAL_STATUSES) == {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
    assert statuses.RUNNING not in statuses.TERMINAL_STATUSES


def test_the_launcher_cleans_up_after_exactly_the_terminal_statuses() -> None:
    assert set(get_args(CleanupEvent.model_fields["status"].annotation)) == set(
        statuses.TERMINAL_STATUSES
    )


def test_the_user_data_writes_the_config_where_the_agent_reads_it() -> None:
    template = (ROOT / "terraform/modules/launch_template/user_data.yaml.tftpl").read_text()

    assert f"- path: {DEFAULT_CONFIG_PATH}\n" in template
    assert f"--config {DEFAULT_CONFIG_PATH}" in template
