"""``python -m interp4d_lite.train COMMAND ...`` -- the same commands as ``interp4d-lite``;
the entry point for ``torchrun --standalone --nproc_per_node=N -m interp4d_lite.train distill ...``."""

import sys

from ..cli import main
from .distributed import cleanup_distributed

if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    except BaseException:
        cleanup_distributed(wait=False)
        raise
    cleanup_distributed()
    sys.exit(code)
