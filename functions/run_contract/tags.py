"""The tags the launcher puts on every instance and volume it creates (docs/design.md, "Tags")."""

from __future__ import annotations

# IAM conditions key on it; its value is Terraform's var.name.
PROJECT_TAG = "Project"
EXECUTION_TAG = "StepFunctionsExecution"
RUN_NAME_TAG = "RunName"
NAME_TAG = "Name"
