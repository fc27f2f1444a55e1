"""The cold start side by side, in one run: one model read from an (emulated) volume restored from
a snapshot, against the same model copied by the agent from S3 onto the instance store.

``python -m bench.cold_start`` (``make bench-cold-start``; ``--help`` for the knobs). Rows:

1. **snapshot, lazy**: the model read from a root volume restored from a snapshot, each block
   fetched on first read. Emulated (``bench.throttled_read``): a token bucket at
   ``--snapshot-mb-s`` (default 3.3 MB/s: this project's own observation, 5 GB in 20-30 min;
   public reports say 2-3 MB/s) over the file in the page cache.
2. **snapshot, provisioned rate**: the same read at ``--provisioned-mib-s`` (default 300 MiB/s,
   Terraform's ``root_volume_initialization_rate`` at its maximum). Best case: a real volume
   initializes all of its blocks in its own order, the model's not first.
3. **agent copy**: measured, not emulated: the agent's own copy engine (``copy_model``: parallel
   ranged GETs, checksums verified) from nginx serving the model path-style on 127.0.0.1 (S3's
   stand-in, see ``make bench``) into a local directory standing in for the instance store.

What this does not do: QEMU's I/O throttling of a real guest disk (the VM harness, issue 9's
branch, can run the same comparison with a booted root disk); a real EBS volume or S3 endpoint.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pwd
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.measure import BUCKET, OBJECT_NAME, PREFIX, client_environment
from bench.nginx import NginxServer, find_nginx
from bench.processes import ProcessGuard
from bench.source import prepare_source, verify_copy, warm_page_cache, write_agent_manifest
from bench.throttled_read import throttled_read

MiB = 1024 * 1024
DEFAULT_WORK_DIR = Path(".bench") / "cold-start"
# The observation this project was built on (README): 5 GB from a restored volume in 20-30 min.
OBSERVED_SNAPSHOT_MB_S = 5000 / (25 * 60)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cold_start",
        description="One model read from an emulated restored-snapshot volume (lazy, and at a "
        "provisioned rate) against the agent's copy of it from S3 (nginx on loopback) onto "
        "local disk, side by side.",
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="model size (default 1024)")
    parser.add_argument(
        "--snapshot-mb-s",
        type=float,
        default=round(OBSERVED_SNAPSHOT_MB_S, 1),
        help="first-read rate of a lazily restored volume, MB/s (default %(default)s: 5 GB in "
        "25 min)",
    )
    parser.add_argument(
        "--provisioned-mib-s",
        type=float,
        default=300.0,
        help="provisioned initialization rate, MiB/s (100-300; default 300)",
    )
    parser.add_argument(
        "--skip-lazy",
        action="store_true",
        help="leave out the lazy read (it takes size / snapshot rate: 5.4 min for 1 GiB)",
    )
    parser.add_argument(
        "--copy-runs", type=int, default=3, help="agent copies timed; the median is shown (3)"
    )
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument(
        "--output", type=Path, default=None, help="JSON result (default <work-dir>/result.json)"
    )
    args = parser.parse_args(argv)
    if args.size_mib < 1:
        parser.error("--size-mib must be >= 1")
    if args.copy_runs < 1:
        parser.error("--copy-runs must be >= 1")
    if args.snapshot_mb_s <= 0:
        parser.error("--snapshot-mb-s must be > 0")
    if not 100 <= args.provisioned_mib_s <= 300:
        parser.error("--provisioned-mib-s must be from 100 to 300, EBS's range")
    return args


def _say(message: str) -> None:
    print(f"cold-start: {message}", file=sys.stderr, flush=True)


def agent_copy(endpoint_url: str, destination: Path) -> dict[str, Any]:
    """The agent's copy engine with the S3 client the agent builds, path-style for nginx."""
    from instance_agent.model_copy import copy_model
    from instance_agent.services import make_s3_client

    client = make_s3_client("us-east-1", endpoint_url, addressing_style="path")
    started = time.perf_counter()
    report = copy_model(client, BUCKET, PREFIX, destination)
    seconds = time.perf_counter() - started
    return {"bytes": report.bytes, "seconds": seconds, "mb_per_s": report.bytes / 1e6 / seconds}


def run(args: argparse.Namespace) -> dict[str, Any]:
    nginx = find_nginx()
    if nginx is None:
        raise SystemExit(
            "cold-start: nginx is not installed (apt-get install nginx, or make bench)"
        )
    work: Path = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    size = args.size_mib * MiB
    _say(f"model: {args.size_mib} MiB under {work / 'serve'}")
    source = prepare_source(
        work / "serve", size=size, bucket=BUCKET, prefix=PREFIX, name=OBJECT_NAME
    )
    write_agent_manifest(source)
    rows: list[dict[str, Any]] = []

    # 3 first: seconds, then the reads that take minutes.
    loadavg_start = os.getloadavg()
    user = pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None
    os.environ.update({k: v for k, v in client_environment(work).items() if k.startswith("AWS_")})
    destination = work / "instance-store" / "model"
    copies: list[dict[str, Any]] = []
    with ProcessGuard() as guard:
        server = NginxServer(
            guard, binary=nginx, root=source.serve_root, run_dir=work / "nginx", user=user
        )
        server.start()
        try:
            for _ in range(args.copy_runs):
                # Same start for every copy: no earlier copy, no dirty pages, the source cached.
                shutil.rmtree(destination.parent, ignore_errors=True)
                os.sync()
                warm_page_cache(source.path)
                copies.append(agent_copy(server.endpoint_url, destination))
                verify_copy(
                    "agent", destination / OBJECT_NAME, size=size, crc64nvme=source.crc64nvme
                )
        finally:
            server.stop()
    copied = sorted(copies, key=lambda c: c["seconds"])[len(copies) // 2]
    rows.append(
        {
            "row": "agent copy: S3 (nginx, loopback) -> instance store (local disk)",
            "emulated": False,
            **copied,
            "all_seconds": [round(c["seconds"], 3) for c in copies],
        }
    )
    each = ", ".join(f"{c['seconds']:.2f}" for c in copies)
    _say(
        f"agent copy: median {copied['seconds']:.2f} s ({copied['mb_per_s']:.0f} MB/s) of {each} s"
    )

    provisioned = args.provisioned_mib_s * MiB
    read = throttled_read(source.path, provisioned)
    rows.append(
        {
            "row": f"restored snapshot, provisioned rate {args.provisioned_mib_s:g} MiB/s",
            "emulated": True,
            "bytes": read.bytes,
            "seconds": read.seconds,
            "mb_per_s": read.mb_per_s,
        }
    )
    _say(f"provisioned-rate read: {read.seconds:.1f} s")
    if not args.skip_lazy:
        _say(
            f"lazy read at {args.snapshot_mb_s} MB/s: about "
            f"{size / (args.snapshot_mb_s * 1e6) / 60:.1f} min"
        )
        read = throttled_read(source.path, args.snapshot_mb_s * 1e6)
        rows.append(
            {
                "row": f"restored snapshot, lazy first reads at {args.snapshot_mb_s:g} MB/s",
                "emulated": True,
                "bytes": read.bytes,
                "seconds": read.seconds,
                "mb_per_s": read.mb_per_s,
            }
        )
    return {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "size_bytes": size,
        "snapshot_mb_s": args.snapshot_mb_s,
        "provisioned_mib_s": args.provisioned_mib_s,
        "cpus": os.cpu_count(),
        # The copy competes for the CPU with whatever else runs: say how busy the machine was.
        "loadavg_start": loadavg_start,
        "loadavg_end": os.getloadavg(),
        "rows": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    copy = next(r for r in result["rows"] if not r["emulated"])
    lines = [
        f"| {result['size_bytes'] // MiB} MiB model | seconds | MB/s | vs the agent's copy |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in sorted(result["rows"], key=lambda r: float(r["seconds"])):
        label = row["row"] + (" (emulated)" if row["emulated"] else " (measured)")
        ratio = row["seconds"] / copy["seconds"] if copy["seconds"] > 0 else 0.0
        lines.append(f"| {label} | {row['seconds']:.1f} | {row['mb_per_s']:.0f} | {ratio:.1f}x |")
    load = ", ".join(f"{x:.1f}" for x in result["loadavg_start"])
    lines.append("")
    lines.append(f"{result['cpus']} vCPUs, load average at the start {load}.")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    result = run(args)
    output: Path = args.output or args.work_dir / "result.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    table = markdown(result)
    output.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table, end="")
    _say(f"wrote {output} and {output.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
