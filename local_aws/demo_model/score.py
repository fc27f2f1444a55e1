"""Score the demo model: the model command the local run gives the agent.

Environment contract (instance_agent/README.md): ``MODEL_DIR`` holds the copied model,
``OUTPUT_DIR`` receives the results, ``TASK_INPUT`` is the path of the activity task's input JSON
(its ``parameters`` object is the run's parameters). Writes ``predictions.csv`` and
``metrics.json``. Exits non-zero, with the reason on stderr, when the model is unusable.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

MIN_ACCURACY_DEFAULT = 0.9


def _required_path(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"score: environment variable {name} is not set (see the agent README)")
    return Path(value)


def _parameters(task_input_path: Path | None) -> dict[str, Any]:
    if task_input_path is None:
        return {}
    task = json.loads(task_input_path.read_text())
    parameters = task.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise SystemExit("score: the task's 'parameters' must be a JSON object")
    return parameters


def score(model_dir: Path, output_dir: Path, parameters: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    description = json.loads((model_dir / "model.json").read_text())
    padding = model_dir / "padding.bin"
    expected_padding = int(description.get("padding_bytes", 0))
    actual_padding = padding.stat().st_size if padding.exists() else 0
    if actual_padding != expected_padding:
        raise SystemExit(
            f"score: padding.bin is {actual_padding} bytes, expected {expected_padding}"
        )

    weights = np.load(model_dir / "weights.npz")
    holdout = np.load(model_dir / "holdout.npz")
    limit = int(parameters.get("batch_size", len(holdout["y"])))
    x, y = holdout["x"][:limit], holdout["y"][:limit]
    logits = x @ weights["coef"].T + weights["intercept"]
    predicted = np.asarray(description["classes"])[logits.argmax(axis=1)]
    accuracy = float((predicted == y).mean()) if len(y) else 0.0

    output_dir.mkdir(parents=True, exist_ok=True)
    with (output_dir / "predictions.csv").open("w") as predictions:
        predictions.write("index,label,predicted\n")
        for index, (label, guess) in enumerate(zip(y, predicted, strict=True)):
            predictions.write(f"{index},{int(label)},{int(guess)}\n")
    metrics = {
        "samples": len(y),
        "accuracy": round(accuracy, 4),
        "seconds": round(time.monotonic() - started, 3),
        "model": description["kind"],
    }
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    min_accuracy = float(parameters.get("min_accuracy", MIN_ACCURACY_DEFAULT))
    if accuracy < min_accuracy:
        raise SystemExit(f"score: accuracy {accuracy:.4f} is below min_accuracy {min_accuracy}")
    return metrics


def main() -> None:
    task_input = os.environ.get("TASK_INPUT")
    metrics = score(
        _required_path("MODEL_DIR"),
        _required_path("OUTPUT_DIR"),
        _parameters(Path(task_input) if task_input else None),
    )
    print(f"scored {metrics['samples']} samples, accuracy {metrics['accuracy']}", flush=True)


if __name__ == "__main__":
    main()
