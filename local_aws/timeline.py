"""The phases of one local run (deploy, start, boot, copy, run, upload, stop) and their chart.

Where each phase's times come from:

- deploy: the harness's deploy began -> the model was published.
- start: ExecutionStarted -> StartInstance exited (the launcher returned the instance).
- boot: the supervisor saw the instance launched -> ActivityStarted (the agent took the task).
- copy: from the agent's ``timings``: it began ``wait_for_task`` before the task was taken and
  took ``model_copy``.
- run: after the agent's wait for the copy (``model_copy_wait``), ``model_run`` long.
- upload: right after the run, ``results_upload`` long.
- stop: RunModel exited -> StopInstance exited or the instance was seen terminated, whichever
  is later.

The agent reports ``timings`` in its success output and in run.json on every path: on a failed
run the record's timings show the phases that ran, and a phase without a timing is not reached.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from local_aws.local_run import HistoryEvent, RunOutcome
from local_aws.supervisor import InstanceEvent

PHASES: tuple[str, ...] = ("deploy", "start", "boot", "copy", "run", "upload", "stop")


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase; ``start``/``end`` are epoch seconds, None while not (or never) known."""

    name: str
    start: float | None
    end: float | None
    detail: str = ""

    @property
    def done(self) -> bool:
        return self.start is not None and self.end is not None

    @property
    def seconds(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return max(0.0, self.end - self.start)


def _first(
    events: Sequence[HistoryEvent], kind: str, state: str | None = None
) -> HistoryEvent | None:
    for event in events:
        if event.type == kind and (state is None or event.state == state):
            return event
    return None


def _instance_event(events: Sequence[InstanceEvent], name: str) -> InstanceEvent | None:
    return next((e for e in events if e.name == name), None)


def _timings(history: Sequence[HistoryEvent]) -> Mapping[str, float] | None:
    succeeded = _first(history, "ActivitySucceeded")
    if succeeded is None:
        return None
    output = succeeded.details.get("output")
    parsed = json.loads(output) if isinstance(output, str) else None
    timings = parsed.get("timings") if isinstance(parsed, dict) else None
    return timings if isinstance(timings, dict) else None


def compute_phases(
    *,
    deploy_window: tuple[float, float] | None,
    history: Sequence[HistoryEvent],
    instance_events: Sequence[InstanceEvent],
    instance_state: str | None = None,
    record_timings: Mapping[str, float] | None = None,
) -> list[Phase]:
    """Every phase in PHASES order, from what is known so far (works on a running execution).

    The agent's phases come from its success output, or else from the run record's timings
    (``record_timings``), which hold the phases that ran on failed runs too."""
    phases: dict[str, Phase] = {}
    deploy_start, deploy_end = deploy_window or (None, None)
    phases["deploy"] = Phase("deploy", deploy_start, deploy_end, "Terraform's resources + model")

    started = _first(history, "ExecutionStarted")
    start_exit = _first(history, "TaskStateExited", "StartInstance")
    phases["start"] = Phase(
        "start",
        started.at if started else None,
        start_exit.at if start_exit else None,
        "launcher start: RunInstances from the launch template",
    )

    launched = _instance_event(instance_events, "launched")
    taken = _first(history, "ActivityStarted")
    phases["boot"] = Phase(
        "boot",
        launched.at if launched else None,
        taken.at if taken else None,
        "agent up, instance store mounted, task taken",
    )

    timings = _timings(history) or record_timings
    if timings is not None and taken is not None:
        copy_start = taken.at - float(timings.get("wait_for_task", 0.0))
        copy_end = copy_start + float(timings.get("model_copy", 0.0))
        # After the task: the copy's rest, then the image pull's and the warm read's.
        waits = ("model_copy_wait", "image_pull_wait", "warm_wait")
        run_start = taken.at + sum(float(timings.get(name, 0.0)) for name in waits)
        run_end = run_start + float(timings.get("model_run", 0.0))
        upload_end = run_end + float(timings.get("results_upload", 0.0))
        # A phase the agent never reached has no timing: it stays "not reached".
        reached = {
            "copy": "model_copy" in timings,
            "run": "model_run" in timings,
            "upload": "results_upload" in timings,
        }
        spans = {
            "copy": (copy_start, copy_end, "model from S3 to the store"),
            "run": (run_start, run_end, "the model command"),
            "upload": (run_end, upload_end, "results, manifest last"),
        }
        for name, (start, end, note) in spans.items():
            phases[name] = (
                Phase(name, start, end, note)
                if reached[name]
                else Phase(name, None, None, "not reached by the agent")
            )
    else:
        for name in ("copy", "run", "upload"):
            phases[name] = Phase(name, None, None, "no timings from the agent")

    model_exit = _first(history, "TaskStateExited", "RunModel")
    stop_exit = _first(history, "TaskStateExited", "StopInstance")
    terminated = _instance_event(instance_events, "terminated")
    stop_end: float | None = None
    if stop_exit is not None and terminated is not None:
        stop_end = max(stop_exit.at, terminated.at)
    phases["stop"] = Phase(
        "stop",
        model_exit.at if model_exit else None,
        stop_end,
        f"instance {instance_state}" if instance_state else "launcher stop: TerminateInstances",
    )
    return [phases[name] for name in PHASES]


def phases_of(outcome: RunOutcome, deploy_window: tuple[float, float] | None) -> list[Phase]:
    states = set(outcome.instance_states.values())
    return compute_phases(
        deploy_window=deploy_window,
        history=outcome.history,
        instance_events=outcome.instance_events,
        instance_state=", ".join(sorted(states)) if states else None,
        record_timings=outcome.record_timings,
    )


def timeline_text(phases: Sequence[Phase], origin: float) -> str:
    """A text chart: one row per phase, offset and duration in seconds, and a bar."""
    known = [p for p in phases if p.done]
    span = max((p.end or 0.0) - origin for p in known) if known else 1.0
    width = 40
    rows = []
    for phase in phases:
        if phase.start is None or phase.end is None:
            rows.append(f"  {phase.name:<7} {'-':>7}  {'-':>7}  {phase.detail}")
            continue
        begin = int((phase.start - origin) / span * width) if span > 0 else 0
        length = max(1, round((phase.end - phase.start) / span * width))
        bar = " " * max(0, begin) + "#" * length
        rows.append(
            f"  {phase.name:<7} {phase.start - origin:>6.2f}s {phase.seconds or 0.0:>6.2f}s  "
            f"|{bar:<{width}}|"
        )
    header = f"  {'phase':<7} {'at':>7} {'took':>7}"
    return "\n".join([header, *rows])


def write_chart(phases: Sequence[Phase], origin: float, title: str, path: Path) -> Path:
    """A PNG Gantt chart of the phases (matplotlib, Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 3.6), dpi=110)
    try:
        labels = []
        for row, phase in enumerate(reversed(phases)):
            labels.append(phase.name)
            if phase.start is None or phase.end is None:
                axes.text(0, row, "  not reached", va="center", fontsize=8, color="grey")
                continue
            width = max(phase.end - phase.start, 0.01)
            axes.barh(row, width, left=phase.start - origin, height=0.6, color="tab:blue")
            axes.text(
                phase.end - origin,
                row,
                f" {phase.end - phase.start:.2f} s",
                va="center",
                fontsize=8,
            )
        axes.set_yticks(range(len(labels)), labels)
        axes.set_xlabel("seconds since the deploy began")
        axes.set_title(title, fontsize=10)
        axes.grid(axis="x", alpha=0.3)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
    finally:
        plt.close(figure)
    return path
