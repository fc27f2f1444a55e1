"""The agent artifact a VM's bootstrap downloads: ``make build``'s, published to the local S3.

The user data's bootstrap fetches ``s3://<model bucket>/agent/instance-agent.tar.gz`` (the key
``local_aws.deployment`` renders into it); on AWS Terraform uploads it, here ``publish_artifact``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from local_aws.deployment import REPO_ROOT
from local_aws.server import LocalAws

ARTIFACT_KEY = "agent/instance-agent.tar.gz"


def build_agent_artifact(destination: Path) -> Path:
    """``make build``'s artifact, built by the same module (instance_agent.build)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "instance_agent.build", "--output", str(destination)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"building the agent artifact failed (exit {done.returncode}): "
            f"{done.stderr.strip()[-2000:]}"
        )
    return destination


def publish_artifact(aws: LocalAws, artifact: Path, bucket: str) -> str:
    """Upload the artifact where the user data's bootstrap looks; returns its S3 URI."""
    aws.client("s3").upload_file(str(artifact), bucket, ARTIFACT_KEY)
    return f"s3://{bucket}/{ARTIFACT_KEY}"
