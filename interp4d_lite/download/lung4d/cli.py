"""``interp4d-lite download lung4d``: the command's flags and what it prints (licence,
citation), over :func:`.fetch.fetch` and :func:`.convert.verify`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ...io_utils import check_output_path
from .. import _common as C
from ..errors import DownloadError
from .convert import verify
from .fetch import fetch
from .plan import DEFAULT_API, ENV_API

__all__ = ["LICENCE", "PROG", "DESCRIPTION", "add_arguments", "run", "main"]

LICENCE = """\
4D-Lung (The Cancer Imaging Archive) is published under the Creative Commons
Attribution 4.0 International licence (CC BY 4.0): https://creativecommons.org/licenses/by/4.0/
Cite, when you use it:
  Data:  Hugo GD, Weiss E, Sleeman WC, Balik S, Keall PJ, Lu J, Williamson JF. Data from
         4D Lung Imaging of NSCLC Patients. The Cancer Imaging Archive, 2016.
         doi:10.7937/K9/TCIA.2016.ELN8YGLE
  Paper: Hugo GD, et al. A longitudinal four-dimensional computed tomography and cone beam
         computed tomography dataset for image-guided radiation therapy research in lung
         cancer. Medical Physics 44(2):762-771, 2017. doi:10.1002/mp.12059
  TCIA:  Clark K, Vendt B, Smith K, et al. The Cancer Imaging Archive (TCIA): Maintaining and
         Operating a Public Information Repository. Journal of Digital Imaging
         26(6):1045-1057, 2013. doi:10.1007/s10278-013-9622-7"""

PROG = "interp4d-lite download lung4d"
DESCRIPTION = (
    "Download TCIA 4D-Lung (~170 GB of DICOM in total) through the NBIA API and write "
    "DEST/<PatientID>/<PatientID>_4d.nii.gz (10 phases, HU) + phases.json. "
    "Re-running resumes; converted patients are skipped."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's flags (also ``interp4d-lite download lung4d``)."""
    p.add_argument("--dest", required=True, type=Path, help="destination folder (the notebooks' data_root)")
    p.add_argument("--api-url", default=None, help=f"NBIA v1 API base (default: ${ENV_API} or {DEFAULT_API})")
    p.add_argument("--patients", nargs="+", default=None, help="only these PatientIDs")
    p.add_argument(
        "--max-gb",
        type=float,
        default=None,
        help="stop before this run's downloads would exceed N GB (sizes from the API)",
    )
    p.add_argument(
        "--session",
        default="first",
        help="which 4D-CT session per patient: first (default), last, an index, or YYYYMMDD",
    )
    p.add_argument(
        "--shape",
        type=int,
        nargs=3,
        default=(128, 128, 128),
        metavar=("X", "Y", "Z"),
        help="output grid (default 128 128 128, as UVI-Net)",
    )
    p.add_argument("--keep-couch", action="store_true", help="skip couch removal")
    p.add_argument(
        "--delete-raw", action="store_true", help="delete a patient's downloaded DICOM zips once its NIfTI is written"
    )
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="after a patient fails (e.g. a series with missing slices), go on with the others",
    )
    p.add_argument("--list", action="store_true", help="only list what would be downloaded")
    p.add_argument("--verify", action="store_true", help="only check DEST against the layout (no network)")
    C.add_http_args(p)


def run(args: argparse.Namespace) -> int:
    """Run the command on parsed flags (errors as exceptions; :func:`main` prints them)."""
    C.say(LICENCE)
    C.say()
    if args.verify:
        good, probs = verify(args.dest)
        for line in probs[:20]:
            C.say(f"  problem: {line}")
        if probs:
            raise DownloadError(f"4D-Lung in {args.dest}: {len(probs)} problem(s); {len(good)} patient(s) fine")
        C.say(f"4D-Lung in {args.dest}: {len(good)} patient(s) verified")
        return 0
    check_output_path(args.dest, suffixes=None, what="--dest")
    if any(n < 2 for n in args.shape):
        raise DownloadError(f"--shape {args.shape}: every size must be >= 2")
    api = args.api_url or os.environ.get(ENV_API) or DEFAULT_API
    fetch(
        args.dest,
        api,
        patients=args.patients,
        max_gb=args.max_gb,
        session_choice=args.session,
        out_shape=tuple(args.shape),
        settings=C.http_settings(args),
        delete_raw=args.delete_raw,
        list_only=args.list,
        couch=not args.keep_couch,
        keep_going=args.keep_going,
    )
    C.say()
    C.say(
        "Licence CC BY 4.0; cite doi:10.7937/K9/TCIA.2016.ELN8YGLE, doi:10.1002/mp.12059 and TCIA "
        "(doi:10.1007/s10278-013-9622-7)."
    )
    return 0


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Parse ``argv``, run, print any expected error as one line (exit 2)."""
    return C.command_main(sys.modules[__name__], argv, prog)
