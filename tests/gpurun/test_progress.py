"""publish-model's progress: a bar on a terminal, plain lines or JSON lines otherwise."""

from __future__ import annotations

import io
import json

from gpurun.progress import TransferProgress, human_bytes


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_come_every_few_seconds_and_at_the_end_of_each_stage() -> None:
    out, clock = io.StringIO(), Clock()
    progress = TransferProgress(out, json_lines=False, terminal=False, clock=clock)

    progress("upload", 0, 4_000_000)  # the stage starts
    clock.now += 1
    progress("upload", 1_000_000, 4_000_000)  # too soon for a line
    clock.now += 5
    progress("upload", 2_000_000, 4_000_000)
    clock.now += 2
    progress("upload", 1_000_000, 4_000_000)

    assert out.getvalue().splitlines() == [
        "upload   3.0 MB of 4.0 MB (75%), 500.0 KB/s",
        "upload   4.0 MB of 4.0 MB (100%), 500.0 KB/s",
    ]


def test_a_terminal_gets_one_bar_redrawn_in_place_ending_with_a_newline() -> None:
    out, clock = io.StringIO(), Clock()
    progress = TransferProgress(out, json_lines=False, terminal=True, clock=clock)

    progress("checksum", 0, 2_000)
    clock.now += 1
    progress("checksum", 1_000, 2_000)
    clock.now += 1
    progress("checksum", 1_000, 2_000)

    text = out.getvalue()
    assert text.count("\r") == 2
    assert text.endswith("100.0% 2.0 KB of 2.0 KB, 1.0 KB/s\n")
    assert "[###############...............]  50.0%" in text


def test_json_lines_carry_stage_bytes_total_and_rate() -> None:
    out, clock = io.StringIO(), Clock()
    progress = TransferProgress(out, json_lines=True, clock=clock)

    progress("checksum", 0, 10)
    clock.now += 2
    progress("checksum", 10, 10)

    (event,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert event == {
        "event": "progress",
        "stage": "checksum",
        "bytes": 10,
        "total_bytes": 10,
        "bytes_per_second": 5,
    }


def test_human_bytes_uses_decimal_units() -> None:
    assert [human_bytes(n) for n in (999, 1_500, 2_000_000, 5_300_000_000)] == [
        "999 B",
        "1.5 KB",
        "2.0 MB",
        "5.3 GB",
    ]
