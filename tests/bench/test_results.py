"""Summaries, ratios, the issue's targets and the table."""

import pytest

from bench.results import Run, check_targets, render_markdown, render_table, summarize

GIB = 1024**3
COPY = ("agent", "s5cmd", "boto3-default")
CEILINGS = ("ceiling-read", "ceiling-write")


def runs_of(client: str, walls: list[float], cpu: float = 1.0, rss_kib: int = 1024) -> list[Run]:
    return [
        Run(i, client, wall, cpu * 0.25, cpu * 0.75, rss_kib + i, inner_s=wall - 0.1)
        for i, wall in enumerate(walls)
    ]


def test_summary_has_median_min_max_of_wall_seconds() -> None:
    (s,) = summarize(runs_of("agent", [1.5, 1.0, 3.0]), size=GIB, clients=["agent"], baseline=None)
    assert (s.median_s, s.min_s, s.max_s, s.runs) == (1.5, 1.0, 3.0, 3)


def test_throughput_is_decimal_megabytes_per_median_second() -> None:
    (s,) = summarize(runs_of("agent", [2.0]), size=4_000_000_000, clients=["agent"], baseline=None)
    assert s.mb_per_s == pytest.approx(2000.0)


def test_cpu_seconds_is_user_plus_system_median() -> None:
    (s,) = summarize(
        runs_of("agent", [1.0, 1.0], cpu=2.0), size=GIB, clients=["agent"], baseline=None
    )
    assert (s.cpu_s, s.user_s, s.sys_s) == pytest.approx((2.0, 0.5, 1.5))


def test_peak_memory_is_the_largest_run_in_mebibytes() -> None:
    (s,) = summarize(
        runs_of("agent", [1.0, 1.0, 1.0], rss_kib=2048), size=GIB, clients=["agent"], baseline=None
    )
    assert s.max_rss_mib == pytest.approx((2048 + 2) / 1024)


def test_ratio_is_client_median_over_baseline_median() -> None:
    runs = runs_of("agent", [1.0, 1.2, 1.1]) + runs_of("s5cmd", [2.2, 2.2, 2.0])
    agent, s5cmd = summarize(runs, size=GIB, clients=["agent", "s5cmd"], baseline="agent")
    assert agent.ratio == pytest.approx(1.0)
    assert s5cmd.ratio == pytest.approx(2.2 / 1.1)


def test_no_ratio_without_a_baseline() -> None:
    (s,) = summarize(runs_of("s5cmd", [1.0]), size=GIB, clients=["s5cmd"], baseline=None)
    assert s.ratio is None


def test_summaries_follow_the_requested_client_order() -> None:
    runs = runs_of("s5cmd", [1.0]) + runs_of("agent", [1.0])
    names = [s.client for s in summarize(runs, size=GIB, clients=["agent", "s5cmd"], baseline=None)]
    assert names == ["agent", "s5cmd"]


def _targets(walls: dict[str, float]) -> dict[str, bool]:
    runs = [run for name, wall in walls.items() for run in runs_of(name, [wall])]
    summaries = summarize(runs, size=GIB, clients=list(walls), baseline="agent")
    return {
        t["target"]: t["met"]
        for t in check_targets(summaries, agent="agent", copy_clients=COPY, ceilings=CEILINGS)
    }


def test_targets_met_when_agent_is_fast_enough() -> None:
    met = _targets(
        {
            "agent": 1.0,
            "s5cmd": 1.3,
            "boto3-default": 2.0,
            "ceiling-read": 0.6,
            "ceiling-write": 0.8,
        }
    )
    assert met == {
        "agent at least 1.3x faster than s5cmd defaults": True,
        "agent faster than every other client": True,
        "agent within 1.25x the slower ceiling": True,
    }


def test_target_missed_when_s5cmd_is_less_than_1_3_times_slower() -> None:
    met = _targets({"agent": 1.0, "s5cmd": 1.29})
    assert met["agent at least 1.3x faster than s5cmd defaults"] is False


def test_target_missed_when_another_client_is_faster() -> None:
    met = _targets({"agent": 1.0, "s5cmd": 2.0, "boto3-default": 0.99})
    assert met["agent faster than every other client"] is False


def test_ceiling_target_uses_the_slower_ceiling() -> None:
    met = _targets({"agent": 1.0, "ceiling-read": 0.5, "ceiling-write": 0.79})
    assert met["agent within 1.25x the slower ceiling"] is False
    met = _targets({"agent": 1.0, "ceiling-read": 0.5, "ceiling-write": 0.8})
    assert met["agent within 1.25x the slower ceiling"] is True


def test_ceiling_target_needs_both_ceilings() -> None:
    assert "agent within 1.25x the slower ceiling" not in _targets(
        {"agent": 1.0, "ceiling-read": 0.5}
    )


def test_no_targets_without_the_agent() -> None:
    runs = runs_of("s5cmd", [1.0])
    summaries = summarize(runs, size=GIB, clients=["s5cmd"], baseline=None)
    assert check_targets(summaries, agent="agent", copy_clients=COPY, ceilings=CEILINGS) == []


def test_table_has_a_header_and_one_aligned_line_per_client() -> None:
    runs = runs_of("agent", [1.0]) + runs_of("s5cmd", [2.0])
    table = render_table(
        summarize(runs, size=GIB, clients=["agent", "s5cmd"], baseline="agent"), "agent"
    )
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["client", "median"]
    assert lines[0].endswith("x agent")
    assert lines[2].startswith("agent ")
    assert lines[2].endswith("1.00")
    assert lines[3].startswith("s5cmd ")
    assert lines[3].endswith("2.00")
    assert len({len(line) for line in lines}) == 1


def test_markdown_table_has_one_row_per_client() -> None:
    runs = runs_of("agent", [1.0]) + runs_of("s5cmd", [2.0])
    text = render_markdown(
        summarize(runs, size=GIB, clients=["agent", "s5cmd"], baseline="agent"), "agent"
    )
    assert text.splitlines()[2] == "| agent | 1.000 | 1.000 | 1.000 | 1074 | 1.00 | 1 | 1.00 |"
    assert text.splitlines()[3].startswith("| s5cmd | 2.000 |")
