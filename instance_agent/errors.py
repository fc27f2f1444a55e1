"""The agent's failures, each reported to Step Functions under its ``error_name``.

The names are the contract with the workflow and the operators (docs/design.md): they appear as
the execution's error in the console, so each one says what went wrong in a word.
"""


class AgentFailure(Exception):
    """A failure that ends the run; ``error_name`` is what SendTaskFailure reports."""

    error_name = "AgentError"


class WrongInstance(AgentFailure):
    """The activity task names another instance: it belongs to another run."""

    error_name = "WrongInstance"


class NoInstanceStore(AgentFailure):
    """No NVMe instance-store disk was found and the root-volume fallback is off."""

    error_name = "NoInstanceStore"


class ModelNotFound(AgentFailure):
    """The model prefix, its manifest, or a file the manifest lists is missing in S3."""

    error_name = "ModelNotFound"


class ModelChecksumMismatch(AgentFailure):
    """A copied file's checksum differs from the manifest's; the message names the file."""

    error_name = "ModelChecksumMismatch"


class ModelCopyFailed(AgentFailure):
    """The copy failed after its retries (network, disk full, permissions)."""

    error_name = "ModelCopyFailed"


class ModelEntryPointMissing(AgentFailure):
    """No model command is configured and the published model has no ``run.sh`` at its top."""

    error_name = "ModelEntryPointMissing"


class ImagePullFailed(AgentFailure):
    """The container image could not be pulled (login, permissions, name, timeout, disk)."""

    error_name = "ImagePullFailed"


class ModelCommandFailed(AgentFailure):
    """The model command exited non-zero; the message carries the exit code."""

    error_name = "ModelCommandFailed"


class ModelRunTimedOut(AgentFailure):
    """The model command ran past max_runtime_seconds and was killed."""

    error_name = "ModelRunTimedOut"


class ResultsUploadFailed(AgentFailure):
    """The results could not be uploaded; no results manifest was written."""

    error_name = "ResultsUploadFailed"


class ConfigError(AgentFailure):
    """The configuration file is missing or invalid; the message names the bad key."""

    error_name = "AgentConfigError"
