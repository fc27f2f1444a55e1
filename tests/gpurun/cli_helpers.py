"""Running ``gpurun`` in-process and capturing what it prints."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from gpurun.cli import main


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
