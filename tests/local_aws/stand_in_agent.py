"""A stand-in for the agent in the supervisor's own tests (the process mechanics only).

Reads the configuration the supervisor wrote, records what it saw in ``stand-in.json`` next to
it, starts a child in a session of its own (as the agent's runner does with the model), then:
``STAND_IN_MODE=shutdown`` runs the configured shutdown_command, ``sleep`` does nothing; both then
wait to be killed, as an agent on a powering-off machine would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    config_path = Path(sys.argv[sys.argv.index("--config") + 1])
    config = json.loads(config_path.read_text(encoding="utf-8"))
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    report = {
        "pid": os.getpid(),
        "child_pid": child.pid,
        "config": config,
        "path": os.environ["PATH"],
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
        "extra": os.environ.get("STAND_IN_EXTRA"),
    }
    (config_path.parent / "stand-in.json").write_text(json.dumps(report), encoding="utf-8")
    if os.environ.get("STAND_IN_MODE") == "shutdown":
        subprocess.run(config.get("shutdown_command", ["shutdown", "-h", "now"]), check=True)
    time.sleep(600)


if __name__ == "__main__":
    main()
