"""The agent's profile: every thread's time, merged, biggest first."""

import json
import threading
import time
from pathlib import Path
from typing import Any

from bench import client_main
from bench.profiling import render_profile, top_functions


def _sleepy_copy(spec: dict[str, Any]) -> tuple[float, Any]:
    threads = [threading.Thread(target=time.sleep, args=(0.2,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 0.2, {"files": 1}


def test_profile_covers_worker_threads_not_only_the_main_thread(tmp_path: Path) -> None:
    path = tmp_path / "agent.prof"
    client_main.run_profiled(_sleepy_copy, {}, str(path))
    rows = {row["function"]: row for row in top_functions(path)}
    sleep = rows["<built-in method time.sleep>"]
    assert sleep["calls"] == 2
    assert sleep["tottime_s"] >= 0.35


def test_profiling_restores_threads_afterwards(tmp_path: Path) -> None:
    original = threading.Thread.run
    client_main.run_profiled(_sleepy_copy, {}, str(tmp_path / "p.prof"))
    assert threading.Thread.run is original


def test_top_functions_are_sorted_by_time_inside_them(tmp_path: Path) -> None:
    path = tmp_path / "agent.prof"
    client_main.run_profiled(_sleepy_copy, {}, str(path))
    times = [row["tottime_s"] for row in top_functions(path, limit=5)]
    assert times == sorted(times, reverse=True)
    assert len(times) <= 5
    assert "time.sleep" in render_profile(top_functions(path)).splitlines()[1]


def test_client_main_refuses_an_unknown_client(capsys: Any) -> None:
    assert client_main.main([json.dumps({"client": "rclone"})]) == 2
    assert "client: 'rclone' is not one of" in capsys.readouterr().err
