"""``python -m interp4d_lite.tutorial``: the notebook runner (``make tutorial`` calls it)."""

from __future__ import annotations

import sys

from .runner import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
