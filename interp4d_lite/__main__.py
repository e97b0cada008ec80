"""``python -m interp4d_lite COMMAND ...``: the same as the ``interp4d-lite`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
