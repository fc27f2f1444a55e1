"""The cold-start comparison (bench.cold_start): the token bucket that emulates a volume restored
from a snapshot, and one small run of the whole side-by-side figure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import cold_start
from bench.nginx import find_nginx
from bench.throttled_read import throttled_read


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_throttled_read_takes_size_over_rate_and_reads_every_byte(tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"m" * (3 * 512 * 1024 + 10))
    clock = FakeClock()

    report = throttled_read(model, 1024 * 1024, clock=clock, sleep=clock.sleep)

    assert report.bytes == 3 * 512 * 1024 + 10
    assert report.seconds == pytest.approx(report.bytes / (1024 * 1024))


def test_a_throttled_read_is_not_slowed_further_by_a_slow_disk(tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"m" * (4 * 512 * 1024))
    clock = FakeClock()

    # Time already spent reading counts towards the rate: no sleep beyond size / rate.
    report = throttled_read(model, 512 * 1024, clock=clock, sleep=clock.sleep)

    assert report.seconds == pytest.approx(4.0)
    assert sum(clock.slept) == pytest.approx(4.0)


def test_a_rate_of_zero_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m").write_bytes(b"x")
    with pytest.raises(ValueError, match="bytes_per_second must be > 0"):
        throttled_read(tmp_path / "m", 0)


def test_a_provisioned_rate_outside_ebs_range_is_refused() -> None:
    with pytest.raises(SystemExit):
        cold_start.parse(["--provisioned-mib-s", "500"])


@pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed")
def test_one_small_run_shows_the_three_rows_and_writes_its_result(tmp_path: Path) -> None:
    output = tmp_path / "result.json"

    code = cold_start.main(
        [
            "--size-mib",
            "8",
            "--snapshot-mb-s",
            "80",
            "--work-dir",
            str(tmp_path),
            "--output",
            str(output),
        ]
    )

    assert code == 0
    result = json.loads(output.read_text())
    assert [r["emulated"] for r in result["rows"]] == [False, True, True]
    assert result["rows"][0]["row"].startswith("agent copy")
    lazy = result["rows"][2]
    assert lazy["bytes"] == 8 * 1024 * 1024
    assert lazy["seconds"] >= 8 * 1024 * 1024 / 80e6
    assert (tmp_path / "instance-store" / "model" / "model.bin").stat().st_size == 8 * 1024 * 1024
    assert output.with_suffix(".md").read_text().startswith("| 8 MiB model |")
    shutil.rmtree(tmp_path / "serve")
