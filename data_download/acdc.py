"""``python -m data_download.acdc ...`` in a clone: the same as ``interp4d-lite download acdc ...``
(the downloader lives in :mod:`interp4d_lite.download.acdc`)."""

import sys

from interp4d_lite.download.acdc import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m data_download.acdc"))
