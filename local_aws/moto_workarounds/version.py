"""The moto version every patch of this package was written against."""

from __future__ import annotations

from typing import Final

PINNED_MOTO_VERSION: Final = "5.2.5"


class MotoVersionError(RuntimeError):
    """The installed moto is not the version these workarounds were written against."""


def check_moto_version(found: str) -> None:
    """Refuse any moto but the pinned one: the patches reach into moto's internals."""
    if found != PINNED_MOTO_VERSION:
        raise MotoVersionError(
            f"local_aws.moto_workarounds is written against moto {PINNED_MOTO_VERSION}, "
            f"but moto {found} is installed: install moto=={PINNED_MOTO_VERSION} "
            "(requirements-dev.txt), or re-check every patch in this package against the new "
            "version's stepfunctions and awslambda_simple sources and update "
            "PINNED_MOTO_VERSION"
        )
