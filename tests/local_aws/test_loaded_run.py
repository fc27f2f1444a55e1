"""The loaded-run wrapper behind `make test-loaded`: the command's status, and no spinner left."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import loaded_run


def test_the_command_status_is_returned_and_logged(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    status = loaded_run.main(["--spinners", "1", "--log", str(log), "--", "sh", "-c", "exit 3"])
    assert status == 3
    (line,) = log.read_text().splitlines()
    assert line.startswith("loaded-run rc=3 ")
    assert "spinners=1" in line


def test_spinners_run_during_the_command_and_are_gone_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[subprocess.Popen[bytes]] = []
    spin = loaded_run._spin

    def recording_spin(count: int) -> list[subprocess.Popen[bytes]]:
        started.extend(spin(count))
        return started

    monkeypatch.setattr(loaded_run, "_spin", recording_spin)
    # The command sees both spinners alive (signal 0 reaches them).
    probe = "import os, sys; [os.kill(int(p), 0) for p in sys.argv[1:]]"

    def run(command: object) -> int:
        return subprocess.call(["python3", "-c", probe, *(str(p.pid) for p in started)])

    monkeypatch.setattr(loaded_run, "_run", run)
    assert loaded_run.main(["--spinners", "2", "--", "true"]) == 0
    assert len(started) == 2
    for spinner in started:
        assert spinner.returncode is not None  # reaped
        with pytest.raises(ProcessLookupError):
            os.killpg(spinner.pid, 0)


def test_a_missing_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        loaded_run.main(["--spinners", "2"])
    assert refused.value.code == 2
    assert "give the command" in capsys.readouterr().err
