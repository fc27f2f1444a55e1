"""``python -m gpurun``."""

from __future__ import annotations

import sys

from gpurun.cli import main

if __name__ == "__main__":
    sys.exit(main())
