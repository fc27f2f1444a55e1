"""The model's container image, made ready at boot while the model copies.

Three steps, each a command through ``run`` (tests put fake ``systemctl``, ``mount`` and
``docker`` executables first on PATH; there is no Docker engine in the tests):

1. docker's and containerd's data directories are bind-mounted from the instance store, with the
   daemons stopped around it, so the image's layers land on NVMe rather than on the root volume
   (which, restored from a snapshot, reads and writes its first blocks at a few MB/s);
2. for an image in ECR, ``docker login`` with a token from the instance role
   (``ecr:GetAuthorizationToken``; Terraform grants pulls on that one repository);
3. ``docker pull``, limited by ``container.pull_timeout_seconds``.

Any failure is ImagePullFailed, with the command and its output; the run never starts. The
model's ``docker run --pull=never`` then only starts the pulled image, so max_runtime_seconds
holds the model's run alone.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from instance_agent.config import ContainerSettings
from instance_agent.errors import ImagePullFailed

log = logging.getLogger("instance_agent.image")

# <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]/<repository>[:tag|@digest]
_ECR_IMAGE = re.compile(
    r"^(?P<registry>(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)"
    r"\.amazonaws\.com(?:\.cn)?)/(?P<repository>[a-z0-9._/-]+?)(?::[\w.-]+)?(?:@sha256:[0-9a-f]{64})?$"
)
# Stopped before the data directories move (the socket too, or a client would start docker again
# mid-move), started again after, containerd first (docker needs it): only those that were
# active, so an image without one of them (or with docker only socket-activated) is left as it was.
STOP_UNITS = ("docker.socket", "docker.service", "containerd.service")
START_UNITS = ("containerd.service", "docker.socket", "docker.service")
STORE_SUBDIR = "container-data"
_OUTPUT_TAIL_CHARS = 2000


@dataclasses.dataclass(frozen=True)
class EcrImage:
    registry: str
    account: str
    region: str
    repository: str


def ecr_image(image: str) -> EcrImage | None:
    """The ECR registry, region and repository of ``image``; None for any other registry."""
    match = _ECR_IMAGE.match(image)
    if match is None:
        return None
    return EcrImage(match["registry"], match["account"], match["region"], match["repository"])


def run(
    args: Sequence[str],
    *,
    timeout: float,
    cancel: threading.Event | None = None,
    stdin_text: str | None = None,
    secret: bool = False,
    limit: str | None = None,
) -> str:
    """Run one command to completion; its output, or ImagePullFailed naming it and its output."""
    shown = " ".join(args)
    log.info("running: %s", shown)
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            list(args),
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    except OSError as exc:
        raise ImagePullFailed(f"{args[0]}: cannot run it: {exc}") from exc
    output = ""
    while True:
        remaining = timeout - (time.monotonic() - started)
        try:
            output, _ = process.communicate(stdin_text, timeout=max(0.01, min(1.0, remaining)))
            break
        except subprocess.TimeoutExpired:
            if cancel is not None and cancel.is_set():
                reason = "stopped: the run is over"
            elif remaining <= 0:
                reason = f"timed out ({limit or f'after {timeout:g} s'})"
            else:
                continue
            process.kill()
            process.communicate()
            raise ImagePullFailed(f"{shown} {reason}") from None
    if process.returncode != 0:
        tail = "(output hidden)" if secret else (output or "").strip()[-_OUTPUT_TAIL_CHARS:]
        raise ImagePullFailed(f"{shown} exited with code {process.returncode}: {tail}")
    return output or ""


def store_directory(store: Path, data_root: str) -> Path:
    """``data_root``'s directory on the instance store (/var/lib/docker: .../var-lib-docker)."""
    return store / STORE_SUBDIR / data_root.strip("/").replace("/", "-")


def relocate_data_roots(
    data_roots: Sequence[str],
    store: Path,
    *,
    timeout: float,
    cancel: threading.Event,
    limit: str | None = None,
) -> None:
    """Bind-mount each data root from the instance store, with the daemons stopped meanwhile."""
    if not data_roots:
        return
    active = [unit for unit in STOP_UNITS if unit_active(unit)]
    if active:
        run(["systemctl", "stop", *active], timeout=timeout, cancel=cancel, limit=limit)
    for root in data_roots:
        source = store_directory(store, root)
        source.mkdir(parents=True, exist_ok=True)
        Path(root).mkdir(parents=True, exist_ok=True)
        run(["mount", "--bind", str(source), root], timeout=timeout, cancel=cancel, limit=limit)
    restart = [unit for unit in START_UNITS if unit in active]
    if restart:
        run(["systemctl", "start", *restart], timeout=timeout, cancel=cancel, limit=limit)
    log.info("container data on the instance store: %s", ", ".join(data_roots))


def unit_active(unit: str) -> bool:
    """``systemctl is-active --quiet``: 0 when the unit is active (any other answer: not)."""
    try:
        done = subprocess.run(
            ["systemctl", "is-active", "--quiet", unit],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def ecr_login(
    image: EcrImage,
    make_ecr_client: Callable[[str], Any],
    *,
    timeout: float,
    cancel: threading.Event,
) -> None:
    """``docker login`` to the image's registry with a token from the instance role."""
    try:
        answer = make_ecr_client(image.region).get_authorization_token()
        token = answer["authorizationData"][0]["authorizationToken"]
        user, password = base64.b64decode(token).decode("utf-8").split(":", 1)
    except Exception as exc:
        raise ImagePullFailed(
            f"ECR GetAuthorizationToken in {image.region} failed: {exc}; the instance role needs "
            "ecr:GetAuthorizationToken (Terraform adds it when container_image is an ECR image)"
        ) from exc
    run(
        ["docker", "login", "--username", user, "--password-stdin", f"https://{image.registry}"],
        timeout=timeout,
        cancel=cancel,
        stdin_text=password,
        secret=True,
    )


def prepare_image(
    image: str,
    settings: ContainerSettings,
    store: Path,
    make_ecr_client: Callable[[str], Any],
    cancel: threading.Event,
) -> float:
    """Relocate, log in, pull; returns the pull's seconds. Raises ImagePullFailed."""
    deadline = time.monotonic() + settings.pull_timeout_seconds

    def left() -> float:
        return max(0.0, deadline - time.monotonic())

    limit = f"container.pull_timeout_seconds={settings.pull_timeout_seconds}"
    relocate_data_roots(settings.data_roots, store, timeout=left(), cancel=cancel, limit=limit)
    ecr = ecr_image(image)
    if ecr is not None and settings.ecr_login:
        ecr_login(ecr, make_ecr_client, timeout=left(), cancel=cancel)
    started = time.monotonic()
    run(["docker", "pull", image], timeout=left(), cancel=cancel, limit=limit)
    seconds = time.monotonic() - started
    log.info("image %s pulled in %.1f s", image, seconds)
    return seconds
