"""The boto3 TransferConfig grid (part sizes x thread counts): every point timed round-robin,
the lowest median wins."""

from collections.abc import Iterator
from typing import Any

from bench.measure import search_boto3_grid
from bench.processes import Measurement

MIB = 1024 * 1024


class FakeBench:
    """Answers each run with the next wall time scripted for its TransferConfig."""

    def __init__(self, walls: dict[tuple[int, int], list[float]]) -> None:
        self._walls: dict[tuple[int, int], Iterator[float]] = {k: iter(v) for k, v in walls.items()}
        self.order: list[tuple[int, int]] = []

    def run(self, config: dict[str, int], *, full_check: bool) -> tuple[Measurement, None]:
        point = (config["multipart_chunksize"], config["max_concurrency"])
        self.order.append(point)
        return Measurement(next(self._walls[point]), 0.1, 0.2, 1000, ""), None


def build(name: str, config: dict[str, int]) -> dict[str, int]:
    assert name == "boto3-tuned"
    return config


def search(walls: dict[tuple[int, int], list[float]], runs: int) -> tuple[Any, Any, FakeBench]:
    bench = FakeBench(walls)
    parts = sorted({p for p, _c in walls})
    threads = sorted({c for _p, c in walls})
    best, grid = search_boto3_grid(bench, build, parts, threads, runs)  # type: ignore[arg-type]
    return best, grid, bench


def test_the_point_with_the_lowest_median_wins_not_the_luckiest_run() -> None:
    best, _grid, _bench = search(
        {
            (8 * MIB, 2): [0.5, 3.0, 3.0],
            (8 * MIB, 4): [2.0, 2.0, 2.0],
            (64 * MIB, 2): [3.0, 3.0, 3.0],
            (64 * MIB, 4): [1.0, 1.0, 1.0],
        },
        runs=3,
    )
    assert best == {
        "multipart_threshold": 64 * MIB,
        "multipart_chunksize": 64 * MIB,
        "max_concurrency": 4,
    }


def test_every_point_is_reported_with_its_median_and_run_count() -> None:
    _best, grid, _bench = search({(8 * MIB, 2): [2.0, 1.0, 3.0], (8 * MIB, 4): [1.0, 1.0, 1.0]}, 3)
    assert [(p["max_concurrency"], p["wall_s"], p["runs"]) for p in grid] == [
        (2, 2.0, 3),
        (4, 1.0, 3),
    ]


def test_grid_runs_alternate_between_points() -> None:
    _best, _grid, bench = search({(8 * MIB, 2): [1.0, 1.0], (8 * MIB, 4): [1.0, 1.0]}, 2)
    assert bench.order == [(8 * MIB, 2), (8 * MIB, 4), (8 * MIB, 4), (8 * MIB, 2)]
