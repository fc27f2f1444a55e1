"""Quick throughput sanity check of copy_model on loopback (the full benchmark is `make bench`).

Writes a random object of --mib MiB plus its manifest under a scratch directory, serves it with
the ranged server in a separate process (so the server does not share our GIL), and copies it
--runs times with copy_model, printing seconds and MB/s (MB = 10^6 bytes) and peak RSS::

    .venv/bin/python -m tests.instance_agent.model_copy.measure_copy --mib 512 --runs 3
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

from instance_agent.checksums import file_chunk_checksums
from instance_agent.manifest import DEFAULT_CHUNK_SIZE, ManifestFile, build_manifest
from instance_agent.model_copy import CopySettings, client_config, copy_model
from run_contract.s3_layout import MODEL_MANIFEST


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--part-mib", type=int, default=None)
    parser.add_argument("--streams", type=int, default=None)
    parser.add_argument("--scratch", type=Path, default=None)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="measure-copy-", dir=args.scratch))
    server: subprocess.Popen[bytes] | None = None
    try:
        model = scratch / "serve" / "bucket" / "models" / "m"
        model.mkdir(parents=True)
        data = model / "weights.bin"
        with data.open("wb") as out:
            for _ in range(args.mib):
                out.write(os.urandom(1024 * 1024))
        manifest = build_manifest(
            [
                ManifestFile(
                    "weights.bin",
                    data.stat().st_size,
                    tuple(file_chunk_checksums(data, DEFAULT_CHUNK_SIZE)),
                )
            ],
            DEFAULT_CHUNK_SIZE,
        )
        (model / MODEL_MANIFEST).write_bytes(manifest.to_json())
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                *("-m", "tests.instance_agent.model_copy.ranged_server"),
                *("--root", str(scratch / "serve"), "--port", str(port)),
            ],
            stdout=subprocess.PIPE,
        )
        assert server.stdout is not None
        server.stdout.readline()  # "serving ..." once it listens
        settings = CopySettings(
            part_size=args.part_mib * 1024 * 1024 if args.part_mib else None,
            max_concurrency=args.streams,
        )
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=client_config(64).merge(Config(s3={"addressing_style": "path"})),
        )
        times = []
        for run in range(args.runs):
            destination = scratch / f"copy-{run}"
            cpu = time.process_time()
            report = copy_model(s3, "bucket", "models/m/", destination, settings=settings)
            cpu = time.process_time() - cpu
            times.append(report.seconds)
            print(f"run {run}: {report.seconds:.2f} s, {report.mb_per_s:.0f} MB/s, cpu {cpu:.2f} s")
            shutil.rmtree(destination)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(
            f"{args.mib} MiB: median {statistics.median(times):.2f} s "
            f"({args.mib * 1.048576 / statistics.median(times):.0f} MB/s), peak RSS {peak} MiB"
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
