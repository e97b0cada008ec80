"""``python -m interp4d_lite.download.lung4d ...``: the same as ``interp4d-lite download lung4d ...``."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
