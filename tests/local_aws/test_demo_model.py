"""The embedded demo model: trained from sklearn's bundled digits, scored with numpy alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local_aws.demo_model.train import train_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_model(tmp_path_factory.mktemp("model"), padding_mib=1)


def _score(
    model_dir: Path, output_dir: Path, task: dict[str, object] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODEL_DIR": str(model_dir), "OUTPUT_DIR": str(output_dir)}
    if task is not None:
        task_file = output_dir.parent / "task.json"
        task_file.write_text(json.dumps(task))
        env["TASK_INPUT"] = str(task_file)
    return subprocess.run(
        [sys.executable, "-m", "local_aws.demo_model.score"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_training_writes_weights_holdout_description_and_padding(model_dir: Path) -> None:
    names = sorted(path.name for path in model_dir.iterdir())
    assert names == ["holdout.npz", "model.json", "padding.bin", "weights.npz"]
    assert (model_dir / "padding.bin").stat().st_size == 1024 * 1024


def test_scoring_writes_predictions_and_metrics_with_real_accuracy(
    model_dir: Path, tmp_path: Path
) -> None:
    result = _score(model_dir, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["samples"] == 450
    assert metrics["accuracy"] > 0.9
    lines = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert lines[0] == "index,label,predicted"
    assert len(lines) == 451


def test_scoring_honours_the_task_parameters(model_dir: Path, tmp_path: Path) -> None:
    result = _score(model_dir, tmp_path / "out", {"parameters": {"batch_size": 10}})
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["samples"] == 10


def test_scoring_fails_when_accuracy_is_below_the_requested_minimum(
    model_dir: Path, tmp_path: Path
) -> None:
    result = _score(model_dir, tmp_path / "out", {"parameters": {"min_accuracy": 1.01}})
    assert result.returncode != 0
    assert "below min_accuracy" in result.stderr


def test_scoring_fails_clearly_on_a_truncated_model(model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in model_dir.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    (broken / "padding.bin").write_bytes(b"short")
    result = _score(broken, tmp_path / "out")
    assert result.returncode != 0
    assert "padding.bin is 5 bytes" in result.stderr


def test_scoring_without_model_dir_says_which_variable_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"MODEL_DIR", "OUTPUT_DIR"}}
    result = subprocess.run(
        [sys.executable, "-m", "local_aws.demo_model.score"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
    assert "MODEL_DIR is not set" in result.stderr
