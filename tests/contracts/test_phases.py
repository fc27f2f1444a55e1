"""The phase names of run.json's ``timings``: every one the agent records is declared in
run_contract.phases (the order gpurun status --phases shows), and every phase metric names one."""

from __future__ import annotations

import re
from pathlib import Path

from instance_agent.run_metrics import PHASE_METRICS
from run_contract.phases import PHASE_NAMES

ROOT = Path(__file__).resolve().parents[2]


def recorded_phases() -> set[str]:
    """The literal phase names agent.py and cold_start.py put into the timings."""
    names: set[str] = set()
    agent = (ROOT / "instance_agent/agent.py").read_text(encoding="utf-8")
    names |= set(re.findall(r'_timed\("([a-z_]+)"', agent))
    names |= set(re.findall(r'timings\["([a-z_]+)"\]', agent))
    names |= set(re.findall(r'\(\("([a-z_]+)", self\.\w+_job\)', agent))
    cold = (ROOT / "instance_agent/cold_start.py").read_text(encoding="utf-8")
    names |= set(re.findall(r'phases\["([a-z_]+)"\]', cold))
    return names


def test_every_phase_the_agent_records_is_declared() -> None:
    recorded = recorded_phases()
    assert {"storage", "model_copy", "image_pull", "warm", "launch_to_boot"} <= recorded
    assert recorded <= set(PHASE_NAMES)


def test_every_phase_metric_is_a_declared_phase() -> None:
    assert set(PHASE_METRICS) <= set(PHASE_NAMES)


def test_phase_names_are_unique() -> None:
    assert len(PHASE_NAMES) == len(set(PHASE_NAMES))
