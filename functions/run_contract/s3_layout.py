"""Where things live in the model bucket (docs/design.md, "S3 layout")."""

from __future__ import annotations

MODELS_PREFIX = "models/"
RUNS_PREFIX = "runs/"
AGENT_PREFIX = "agent/"
AGENT_ARTIFACT_KEY = AGENT_PREFIX + "instance-agent.tar.gz"

# Written last under a model's prefix by `publish`: without it, there is no model.
MODEL_MANIFEST = "manifest.json"
# Under a run's results prefix: the run record, then the results manifest, written last.
RUN_RECORD = "run.json"
RESULTS_MANIFEST = "_manifest.json"
# A model's output file may not take these names (ResultsUploadFailed).
RESERVED_RESULT_NAMES = (RESULTS_MANIFEST, RUN_RECORD)

# S3's answers for "no such object" (GetObject: NoSuchKey; HeadObject: a bare 404).
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def results_prefix(execution_name: str) -> str:
    """``runs/<execution name>/``: where one run's results and record go."""
    if not execution_name or "/" in execution_name:
        raise ValueError(f"execution name {execution_name!r}: must be non-empty, without '/'")
    return f"{RUNS_PREFIX}{execution_name}/"


def run_record_key(execution_name: str) -> str:
    return results_prefix(execution_name) + RUN_RECORD


def results_manifest_key(execution_name: str) -> str:
    return results_prefix(execution_name) + RESULTS_MANIFEST
