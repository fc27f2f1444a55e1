"""``gpurun status --phases``: each run's phases from launch to the model's first output line and
on, in the order they happen (run_contract.phases), from run.json's timings."""

from __future__ import annotations

from run_contract.phases import PHASE_NAMES
from tests.gpurun.cli_helpers import gpurun
from tests.gpurun.conftest import SmallStack
from tests.gpurun.test_status_and_logs import _record

TIMINGS = {
    "model_run": 61.0,
    "launch_to_boot": 14.2,
    "image_pull": 40.5,
    "storage": 1.2,
    "model_first_output": 3.4,
    "boot_to_cloud_init": 6.1,
    "warm": 20.0,
    "model_copy": 9.8,
    "boot_to_first_output": 70.3,
}


def test_status_json_gives_every_run_its_phases_in_launch_order(small_stack: SmallStack) -> None:
    small_stack.run("week-7")
    small_stack.put_record("week-7", _record("week-7", "agent", timings=TIMINGS))

    (row,) = gpurun("status", *small_stack.flags(), "--json").json()

    assert list(row["phases"]) == [name for name in PHASE_NAMES if name in TIMINGS]
    assert row["phases"]["launch_to_boot"] == 14.2


def test_status_phases_prints_one_line_per_phase_under_each_run(small_stack: SmallStack) -> None:
    small_stack.run("week-8")
    small_stack.put_record("week-8", _record("week-8", "agent", timings=TIMINGS))

    out = gpurun("status", *small_stack.flags(), "--phases").out

    block = out.split("\n\n", 1)[1].splitlines()
    assert block[0] == "week-8 (SUCCEEDED)"
    names = [line.split()[0] for line in block[1:]]
    assert names == [name for name in PHASE_NAMES if name in TIMINGS]
    assert any(
        line.split()[:3] == ["launch_to_boot", "14.2", "s"] and "kernel's boot" in line
        for line in block
    )


def test_status_phases_says_so_for_a_run_without_timings(small_stack: SmallStack) -> None:
    small_stack.run("week-9")

    out = gpurun("status", *small_stack.flags(), "--phases").out

    assert "week-9 (SUCCEEDED)\n  no phase timings" in out


def test_status_without_phases_keeps_its_table(small_stack: SmallStack) -> None:
    small_stack.run("week-10")
    small_stack.put_record("week-10", _record("week-10", "agent", timings=TIMINGS))

    out = gpurun("status", *small_stack.flags()).out

    assert "launch_to_boot" not in out
    assert out.splitlines()[0].split()[:2] == ["NAME", "STATUS"]
