"""The demo's phases: a failed run shows the phases its agent ran (from run.json's timings) and
marks only the ones it never reached."""

from __future__ import annotations

from local_aws.local_run import HistoryEvent
from local_aws.supervisor import InstanceEvent
from local_aws.timeline import compute_phases

HISTORY = [
    HistoryEvent("ExecutionStarted", 100.0),
    HistoryEvent("TaskStateExited", 102.0, "StartInstance"),
    HistoryEvent("ActivityStarted", 130.0),
    HistoryEvent("ActivityFailed", 200.0, details={"error": "ModelCommandFailed"}),
    HistoryEvent("TaskStateExited", 200.5, "RunModel"),
    HistoryEvent("TaskStateExited", 203.0, "StopInstance"),
]
INSTANCE = [InstanceEvent("i-1", "launched", 103.0), InstanceEvent("i-1", "terminated", 204.0)]
FAILED_RUN_TIMINGS = {
    "identity": 0.1,
    "storage": 1.0,
    "wait_for_task": 10.0,
    "model_copy": 30.0,
    "model_copy_wait": 20.0,
    "model_run": 50.0,
}


def phases(
    record_timings: dict[str, float] | None = None,
) -> dict[str, tuple[float | None, float | None]]:
    found = compute_phases(
        deploy_window=(90.0, 99.0),
        history=HISTORY,
        instance_events=INSTANCE,
        record_timings=record_timings,
    )
    return {p.name: (p.start, p.end) for p in found}


def test_a_failed_run_shows_the_copy_and_the_run_from_its_records_timings() -> None:
    shown = phases(record_timings=FAILED_RUN_TIMINGS)

    assert shown["copy"] == (120.0, 150.0)  # began wait_for_task before the take, 30 s long
    assert shown["run"] == (150.0, 200.0)  # after the 20 s wait for the copy, 50 s long
    assert shown["upload"] == (None, None)  # never reached: no results_upload timing
    assert shown["stop"] == (200.5, 204.0)


def test_without_a_record_the_agents_phases_stay_open() -> None:
    shown = phases()

    assert shown["copy"] == shown["run"] == shown["upload"] == (None, None)
    assert shown["boot"] == (103.0, 130.0)
