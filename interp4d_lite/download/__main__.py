"""``python -m interp4d_lite.download {acdc|lung4d} ...``: the same as ``interp4d-lite download ...``."""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("acdc", "lung4d"):
        print("usage: interp4d-lite download {acdc|lung4d} --dest DIR [options]  (--help for each)", file=sys.stderr)
        return 2
    if argv[0] == "acdc":
        from .acdc import main as run
    else:
        from .lung4d import main as run
    return run(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
