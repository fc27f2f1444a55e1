"""Model commands the end-to-end cases run in place of a GPU model, each showing one behaviour."""

from __future__ import annotations

import shlex
import sys

# What a scorer does with the contract's environment: the SHA-256 of every file it finds in
# MODEL_DIR (so a test sees the bytes the copy delivered), the task's parameters and run name (so
# it sees TASK_INPUT and RUN_NAME), written to OUTPUT_DIR.
CONTRACT_SCORER = """\
import hashlib, json, os, pathlib
model = pathlib.Path(os.environ["MODEL_DIR"])
out = pathlib.Path(os.environ["OUTPUT_DIR"])
task = json.loads(pathlib.Path(os.environ["TASK_INPUT"]).read_text())
lines = [
    f"{p.relative_to(model).as_posix()} {hashlib.sha256(p.read_bytes()).hexdigest()}"
    for p in sorted(model.rglob("*")) if p.is_file()
]
(out / "result.txt").write_text("\\n".join(lines) + "\\n")
(out / "details").mkdir()
(out / "details" / "task.json").write_text(
    json.dumps({"run_name": os.environ["RUN_NAME"], "parameters": task["parameters"]})
)
print(f"scored {len(lines)} model file(s)")
"""
CONTRACT_SCORER_COMMAND = (sys.executable, "-c", CONTRACT_SCORER)

FAILING_COMMAND = (
    sys.executable,
    "-c",
    "import sys; print('loading the model'); "
    "sys.stderr.write('scorer: CUDA out of memory on batch 7\\n'); sys.exit(3)",
)

# A model that runs until it is killed, with a child of its own (a model's data loader, say);
# it writes both pids next to TASK_INPUT (the mount point) once both run.
MODEL_PID_FILE = "model.pids"
SLEEPER = f"""\
import os, pathlib, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
pids = pathlib.Path(os.environ["TASK_INPUT"]).parent / "{MODEL_PID_FILE}"
pids.with_suffix(".tmp").write_text(f"{{os.getpid()}} {{child.pid}}")
pids.with_suffix(".tmp").rename(pids)
print("model running", flush=True)
time.sleep(300)
"""
SLEEPER_COMMAND = (sys.executable, "-c", SLEEPER)


def slow_scorer(seconds: float) -> list[str]:
    """The demo scorer, after ``seconds`` of work: time for the test to act mid-run."""
    scorer = shlex.join([sys.executable, "-m", "local_aws.demo_model.score"])
    return ["sh", "-c", f"sleep {seconds} && exec {scorer}"]
