"""``python -m data_download.lung4d ...`` in a clone: the same as ``interp4d-lite download lung4d ...``
(the downloader lives in :mod:`interp4d_lite.download.lung4d`)."""

import sys

from interp4d_lite.download.lung4d import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m data_download.lung4d"))
