"""The phases of a run in run.json's ``timings``, in the order they happen, from the instance's
launch to the model's first line of output and beyond (docs/design.md, "The run record").

Each is in seconds. The boot-time jobs overlap: ``image_pull``, ``warm`` and ``model_copy`` all
start after ``storage`` and run while the agent waits for its task. ``*_wait`` is the part of a
job the run waited for after the task arrived. A phase that did not run is absent.
"""

from __future__ import annotations

# (name, what it measures); gpurun status --phases prints them in this order.
PHASES: tuple[tuple[str, str], ...] = (
    ("launch_to_boot", "RunInstances' pending state to the kernel's boot"),
    ("boot_to_cloud_init", "kernel boot to cloud-init's first stage"),
    ("cloud_init", "cloud-init's first stage to its runcmd stage"),
    ("bootstrap", "runcmd to the agent's start (download and install of the agent)"),
    ("identity", "IMDS: instance id, type, zone"),
    ("storage", "instance store found, formatted (or reused) and mounted"),
    ("image_pull", "container data on the instance store, ECR login, docker pull"),
    ("warm", "root-volume paths read once (warm.paths)"),
    ("model_copy", "model copied from S3 and verified"),
    ("wait_for_task", "long poll for the activity task"),
    ("image_pull_wait", "what the run waited for the pull after the task came"),
    ("model_copy_wait", "what the run waited for the copy after the task came"),
    ("warm_wait", "what the run waited for the warm read (warm.max_wait_seconds at most)"),
    ("model_first_output", "model start to its first line of output"),
    ("boot_to_first_output", "kernel boot to the model's first line: the cold start"),
    ("model_run", "the model command, start to exit"),
    ("results_upload", "results, run.json and the manifest to S3"),
    ("total", "agent start to the results uploaded"),
)
PHASE_NAMES: tuple[str, ...] = tuple(name for name, _ in PHASES)
