"""The run parameters: every key has a Terraform default and an execution's input may override
it (docs/design.md, "The run parameters"). The launcher's pydantic model validates them."""

from __future__ import annotations

RUN_PARAMETERS = (
    "instance_types",
    "subnet_ids",
    "model_prefix",
    "max_runtime_seconds",
    "parameters",
)
