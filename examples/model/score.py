"""An example model: scores the rows of the task's ``parameters.rows`` with a linear model.

It shows the whole contract (instance_agent/README.md, "The model"): it reads its weights from
MODEL_DIR (its working directory), its input from TASK_INPUT, writes its results to OUTPUT_DIR,
prints progress lines, and exits non-zero on a bad input. It needs only the standard library;
on a GPU instance it also says whether PyTorch sees the GPU.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path


def describe_accelerator() -> str:
    try:
        import torch  # type: ignore[import-not-found]
    except ImportError:
        return "no PyTorch on this Python"
    return f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}"


def main() -> int:
    print(f"example model, run {os.environ['RUN_NAME']}, python {sys.executable}", flush=True)
    print(describe_accelerator(), flush=True)
    model = json.loads(Path("weights.json").read_text(encoding="utf-8"))
    task = json.loads(Path(os.environ["TASK_INPUT"]).read_text(encoding="utf-8"))
    rows = task.get("parameters", {}).get("rows", [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    width = len(model["weights"])
    output = Path(os.environ["OUTPUT_DIR"])
    with (output / "predictions.csv").open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["row", "score"])
        for index, row in enumerate(rows):
            if len(row) != width:
                message = f"row {index} has {len(row)} values, the model takes {width}"
                print(message, file=sys.stderr)
                return 2
            score = model["bias"] + sum(w * x for w, x in zip(model["weights"], row, strict=True))
            writer.writerow([index, round(score, 6)])
    (output / "metrics.json").write_text(json.dumps({"rows": len(rows)}) + "\n", encoding="utf-8")
    print(f"scored {len(rows)} row(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
