"""Running ``gpurun`` in-process and capturing what it prints."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from gpurun.cli import main
from local_aws.local_run import LocalRun
from local_aws.server import LocalAws


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def json_lines(self) -> list[Any]:
        """The events ``run``/``follow --json`` stream, one JSON object a line."""
        return [json.loads(line) for line in self.out.splitlines()]


def gpurun(*argv: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return Result(code, out.getvalue(), err.getvalue())


def gpurun_on(run: LocalRun, aws: LocalAws, *argv: str) -> Result:
    """``gpurun`` against a stack deployed in the local AWS, its names given as flags."""
    return gpurun(
        *argv,
        "--endpoint-url",
        aws.endpoint_url,
        "--region",
        aws.region,
        "--state-machine-arn",
        run.deployed.state_machine_arn,
        "--bucket",
        run.deployed.bucket_name,
    )


def run_record(run: LocalRun, aws: LocalAws, name: str) -> dict[str, Any]:
    """The run.json a run left under runs/<name>/ in the stack's bucket."""
    body = aws.client("s3").get_object(
        Bucket=run.deployed.bucket_name, Key=f"runs/{name}/run.json"
    )["Body"]
    record: dict[str, Any] = json.loads(body.read())
    return record
