"""Download the ACDC cardiac cine-MRI data set and arrange it in the ACDC layout.

Usage::

    interp4d-lite download acdc --dest data/acdc            # download, verify, extract, arrange
    interp4d-lite download acdc --dest data/acdc --verify   # check an existing copy only

Source: the Human Heart Project (Creatis, Lyon) hosts ACDC since 2023 as a
Girder collection, https://humanheart-project.creatis.insa-lyon.fr/database/#collection/637218c173e9f0047faa00fb .
:data:`DEFAULT_URL` is the collection's Girder ``download`` endpoint, which
streams one zip of the whole collection (150 patients; about 7 GB, docs/METHOD.md "Data"). The
host may change that link; if it fails, open the page above in a browser, copy the link of the
zip and pass it with ``--url URL`` or the ``ACDC_URL`` environment variable. The site may ask
you to accept the licence / log in, in which case download the zip by hand
(browser) and pass ``--archive PATH``: everything else (verification, safe
extraction, layout) is the same.

What ends up in ``DEST`` (the layout ``interp4d_lite.data.load_acdc_patient`` reads,
docs/ARCHITECTURE.md)::

    DEST/patient001/patient001_4d.nii.gz, Info.cfg, (the other ACDC files of that patient)
    ...
    DEST/patient150/...
    DEST/dataset.json            {"kind": "cardiac", "layout": "acdc", "patients": [...], ...}
    DEST/.acdc/state.json        download state (archive size, SHA-256, content digest, split)
    DEST/.acdc/<archive>.zip     the verified archive (kept unless --delete-archive)
    DEST/.acdc/extras/           the archive's other files (MANDATORY_CITATION.md, ...)

The archive is extracted (safely: no absolute paths, ``..`` or escaping links)
into a temporary folder under ``DEST/.acdc`` and every ``patientXXX`` folder
found (``database/training`` = 001-100, ``database/testing`` = 101-150) is then
*moved* up to ``DEST/patientXXX`` (a rename: no second copy of 7 GB). Which
subset a patient came from is kept in ``dataset.json`` (``"acdc_subsets"``).

Checksums: the source publishes none. The SHA-256 of the first good download
and a digest of the zip's table of contents (names, sizes, CRC-32) are recorded
in ``.acdc/state.json``; a later download must match one of them (the server
builds the zip on the fly, so the bytes may differ while the content does not).
``--sha256`` enforces a hash you know.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import DataError
from ..io_utils import atomic_write_json, check_output_path
from . import _common as C
from .archive import list_safe_members, safe_extract, zip_content_digest
from .errors import ChecksumError, DiskFullError, DownloadError
from .http import HTTPSettings, download_file, read_json, sha256_file

DEFAULT_URL = (
    "https://humanheart-project.creatis.insa-lyon.fr/database/api/v1/collection/637218c173e9f0047faa00fb/download"
)
PAGE_URL = "https://humanheart-project.creatis.insa-lyon.fr/database/#collection/637218c173e9f0047faa00fb"
ENV_URL = "ACDC_URL"
N_PATIENTS = 150

CITATION = (
    """\
ACDC data set - MANDATORY CITATION (required by the data providers):
  O. Bernard, A. Lalande, C. Zotti, F. Cervenansky, et al.,
  "Deep Learning Techniques for Automatic MRI Cardiac Multi-Structures Segmentation
  and Diagnosis: Is the Problem Solved?", IEEE Transactions on Medical Imaging,
  37(11):2514-2525, 2018. doi:10.1109/TMI.2018.2837502
  Source: Human Heart Project, Creatis / University of Lyon, """
    + PAGE_URL
    + """
  Terms of use: the licence shown on that page applies; read it before using the data."""
)

PATIENT_RE = re.compile(r"^patient\d{3}$")


def state_dir(dest: Path) -> Path:
    return Path(dest) / ".acdc"


# ------------------------------------------------------------------ verification


def check_patient(pdir: Path, deep: bool = False) -> list[str]:
    """Problems of one ACDC patient folder (empty list: fine). ``Info.cfg`` is read by the
    loaders' own reader, :func:`interp4d_lite.data.io.read_info_cfg`."""
    import nibabel as nib
    import numpy as np

    from ..data.io import read_info_cfg

    name = pdir.name
    img_path, cfg = pdir / f"{name}_4d.nii.gz", pdir / "Info.cfg"
    probs = []
    if not img_path.is_file():
        probs.append(f"{img_path}: missing")
    if not cfg.is_file():
        probs.append(f"{cfg}: missing")
    if probs:
        return probs
    try:
        info = read_info_cfg(cfg)
    except DataError as exc:  # no ED/ES line, a line that is not 'key: value', a frame that is not a number
        return [str(exc)]
    except OSError as exc:
        return [f"{cfg}: unreadable ({exc})"]
    if "NbFrame" not in info:
        return [f"{cfg}: no 'NbFrame:' line"]
    ed, es, nb = info["ED"], info["ES"], info["NbFrame"]
    try:
        img = nib.load(str(img_path))
        shape = img.shape
    except Exception as exc:  # nibabel raises several kinds for corrupt files
        return [f"{img_path}: not a readable NIfTI ({exc})"]
    if len(shape) != 4:
        probs.append(f"{img_path}: {len(shape)}D image, expected 4D (X, Y, Z, T)")
    elif shape[3] != nb:
        probs.append(f"{img_path}: {shape[3]} frames but Info.cfg says NbFrame: {nb}")
    if not (1 <= ed <= nb and 1 <= es <= nb):
        probs.append(f"{cfg}: ED {ed} / ES {es} outside 1..{nb}")
    if deep and not probs:
        try:
            data = np.asanyarray(img.dataobj)
            if not np.isfinite(data).all():
                probs.append(f"{img_path}: contains NaN/inf")
        except Exception as exc:
            probs.append(f"{img_path}: data unreadable ({exc})")
    return probs


def verify(dest: Path, deep: bool = False, expected: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """Check ``dest`` against the ACDC layout. Returns (good patient ids, problems)."""
    dest = Path(dest)
    if not dest.is_dir():
        return [], [f"{dest}: no such folder"]
    pdirs = sorted(p for p in dest.iterdir() if p.is_dir() and PATIENT_RE.match(p.name))
    good, probs = [], []
    for p in pdirs:
        pp = check_patient(p, deep=deep)
        (probs.extend(pp) if pp else good.append(p.name))
    if not pdirs:
        probs.append(f"{dest}: no patientXXX folders")
    if expected:
        missing = sorted(set(expected) - {p.name for p in pdirs})
        if missing:
            probs.append(
                f"{dest}: {len(missing)} patient folder(s) missing: {', '.join(missing[:5])}"
                + (" ..." if len(missing) > 5 else "")
            )
    return good, probs


# ------------------------------------------------------------------ download


def _find_patients(root: Path) -> dict[str, tuple[Path, str]]:
    found: dict[str, tuple[Path, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if PATIENT_RE.match(d.name) and f"{d.name}_4d.nii.gz" in filenames:
            rel = d.relative_to(root).parts
            subset = "testing" if "testing" in rel else ("training" if "training" in rel else "unknown")
            if d.name in found:
                raise DownloadError(f"{root}: {d.name} appears twice in the archive ({found[d.name][0]} and {d})")
            found[d.name] = (d, subset)
            dirnames[:] = []
    return found


def fetch(
    dest: Path,
    url: str = DEFAULT_URL,
    *,
    sha256: str | None = None,
    archive: Path | None = None,
    settings: HTTPSettings | None = None,
    delete_archive: bool = False,
) -> dict:
    """Download (or take ``archive``), verify, extract and arrange ACDC in ``dest``.
    Idempotent: a complete, verified destination is left alone. Returns the state."""
    dest = Path(dest)
    settings = settings or HTTPSettings()
    sd = state_dir(dest)
    sd.mkdir(parents=True, exist_ok=True)
    with C.dest_lock(sd / "lock"):
        state = read_json(sd / "state.json", default={}) or {}
        if state.get("complete"):
            good, probs = verify(dest, expected=state.get("patients"))
            if not probs:
                C.say(f"ACDC already complete in {dest} ({len(good)} patients verified); nothing to do.")
                return state
            C.say(f"ACDC in {dest} was complete but now has problems ({probs[0]}); repairing.")

        # 1. the archive (cached in .acdc/, downloaded through .part with resume)
        if archive is not None:
            arc = Path(archive)
            if not arc.is_file():
                raise DownloadError(f"{arc}: no such archive")
        else:
            name = state.get("archive", {}).get("file") or _archive_name(url)
            arc = sd / name
            C.say(f"Downloading ACDC from {url}\n  -> {arc}")
            res = download_file(url, arc, expected_sha256=sha256, settings=settings, desc="ACDC")
        digest = res["sha256"] if archive is None else sha256_file(arc)
        if sha256 and digest != sha256.lower():
            raise ChecksumError(f"{arc}: SHA-256 {digest} does not match --sha256 {sha256}")
        content = zip_content_digest(arc) if _is_zip(arc) else None
        rec = state.get("archive") or {}
        if rec.get("sha256") and digest != rec["sha256"] and not (content and content == rec.get("content_sha256")):
            msg = (
                f"{arc}: SHA-256 {digest} differs from the first good download recorded in "
                f"{sd / 'state.json'} ({rec['sha256']}) and so does its list of contents; "
                "the file on the server changed or the download is corrupt."
            )
            if archive is None:
                arc.unlink()
                msg += " The new (unverified) archive was deleted; nothing else was changed."
            raise ChecksumError(msg)
        verified_before = digest in (rec.get("sha256"), rec.get("last_sha256"))
        ext = sd / "extract"
        try:
            list_safe_members(arc)  # hostile archives fail before any write
            # 2. extraction into .acdc/extract (a rename of a complete temp folder; CRC-checked)
            if not ext.exists():
                C.say(f"Extracting {arc.name} ...")
                safe_extract(arc, ext)
        except DownloadError as exc:
            if archive is None and not verified_before and not isinstance(exc, DiskFullError):
                arc.unlink(missing_ok=True)  # never verified: let a re-run download it again
                raise type(exc)(f"{exc} (the downloaded archive was deleted; re-run to download again)") from exc
            raise
        found = _find_patients(ext)
        already = {p.name for p in dest.iterdir() if p.is_dir() and PATIENT_RE.match(p.name)}
        if not found and not already:
            raise DownloadError(
                f"{arc}: no patientXXX/patientXXX_4d.nii.gz inside; is this the ACDC zip? "
                f"(open {PAGE_URL} and pass the zip's link with --url)"
            )

        # Record the archive as good now that it extracted completely (CRC-checked).
        state.update(
            {
                "dataset": "acdc",
                "url": url if archive is None else str(arc),
                "archive": {
                    "file": arc.name,
                    "size": arc.stat().st_size,
                    "sha256": rec.get("sha256") or digest,
                    "content_sha256": rec.get("content_sha256") or content,
                    "last_sha256": digest,
                    "verified_at": C.now_iso(),
                },
            }
        )
        subsets = dict(state.get("subsets", {}))
        for pid, (_, subset) in found.items():
            subsets[pid] = subset
        state["subsets"] = subsets
        atomic_write_json(sd / "state.json", state, indent=2, sort_keys=True)

        # 3. arrange: move every patient folder up to DEST/patientXXX
        replaced = sd / "replaced"
        for pid, (src, _subset) in sorted(found.items()):
            target = dest / pid
            if target.exists():
                if not check_patient(target):
                    shutil.rmtree(src)  # the verified copy in DEST stays
                    continue
                replaced.mkdir(exist_ok=True)
                aside = replaced / f"{pid}-{C.now_iso().replace(':', '')}"
                os.replace(target, aside)
                C.say(f"  {target} failed verification; moved aside to {aside}")
            os.replace(src, target)
        extras = sd / "extras"
        if extras.exists():
            shutil.rmtree(extras)
        os.replace(ext, extras)  # what is left: citation file, READMEs, ...

        # 4. verify and finish
        expected = sorted(set(subsets) | set(state.get("patients") or []))
        good, probs = verify(dest, expected=expected)
        if probs:
            raise DownloadError(f"ACDC in {dest}: {len(probs)} problem(s) after extraction, first: {probs[0]}")
        state.update({"patients": good, "complete": True, "completed_at": C.now_iso()})
        atomic_write_json(
            dest / "dataset.json",
            {
                "kind": "cardiac",
                "layout": "acdc",
                "patients": good,
                "source": "ACDC (Bernard et al., IEEE TMI 2018, doi:10.1109/TMI.2018.2837502)",
                "acdc_subsets": {k: subsets.get(k, "unknown") for k in good},
            },
            indent=2,
            sort_keys=True,
        )
        atomic_write_json(sd / "state.json", state, indent=2, sort_keys=True)
        if delete_archive and archive is None:
            arc.unlink()
            C.say(f"Deleted the archive {arc} (--delete-archive).")
        if len(good) != N_PATIENTS:
            C.say(f"Note: {len(good)} patients, the full ACDC release has {N_PATIENTS}.")
        C.say(f"ACDC ready in {dest}: {len(good)} patients.")
        return state


def _archive_name(url: str) -> str:
    tail = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    return tail if tail.endswith((".zip", ".tar.gz", ".tgz")) else "acdc.zip"


def _is_zip(p: Path) -> bool:
    import zipfile

    return zipfile.is_zipfile(p)


# ------------------------------------------------------------------ CLI

PROG = "interp4d-lite download acdc"
DESCRIPTION = (
    "Download ACDC (cardiac cine MRI, ~7 GB) and arrange DEST/patientXXX/{patientXXX_4d.nii.gz, "
    "Info.cfg}. Re-running resumes or does nothing."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's flags (also ``interp4d-lite download acdc``)."""
    p.add_argument("--dest", required=True, type=Path, help="destination folder (the notebooks' data_root)")
    p.add_argument(
        "--url",
        default=None,
        help=f"archive URL (default: ${ENV_URL} or {DEFAULT_URL}); file:// is not "
        "supported, use --archive for a local zip",
    )
    p.add_argument(
        "--archive", type=Path, default=None, help="use this already downloaded ACDC zip instead of downloading"
    )
    p.add_argument("--sha256", default=None, help="expected SHA-256 of the archive, if you know it")
    p.add_argument(
        "--verify", action="store_true", help="only check DEST against the layout the loaders read (no network)"
    )
    p.add_argument("--deep", action="store_true", help="with --verify: also read every image's voxels")
    p.add_argument(
        "--delete-archive",
        action="store_true",
        help="delete the downloaded zip after a verified extraction (default: keep it)",
    )
    C.add_http_args(p)


def run(args: argparse.Namespace) -> int:
    """Run the command on parsed flags (errors as exceptions; :func:`main` prints them)."""
    C.say(CITATION)
    C.say()
    if args.verify:
        state = read_json(state_dir(args.dest) / "state.json", default={}) or {}
        good, probs = verify(args.dest, deep=args.deep, expected=state.get("patients"))
        if probs:
            for line in probs[:20]:
                C.say(f"  problem: {line}")
            raise DownloadError(f"ACDC in {args.dest}: {len(probs)} problem(s); {len(good)} patient(s) fine")
        C.say(
            f"ACDC in {args.dest}: {len(good)} patient(s) verified" + (" (voxels read)" if args.deep else " (headers)")
        )
        return 0
    check_output_path(args.dest, suffixes=None, what="--dest")
    url = args.url or os.environ.get(ENV_URL) or DEFAULT_URL
    fetch(
        args.dest,
        url,
        sha256=args.sha256,
        archive=args.archive,
        settings=C.http_settings(args),
        delete_archive=args.delete_archive,
    )
    C.say()
    C.say("Please cite: Bernard et al., IEEE TMI 2018, doi:10.1109/TMI.2018.2837502")
    return 0


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Parse ``argv``, run, print any expected error as one line (exit 2)."""
    return C.command_main(sys.modules[__name__], argv, prog)


if __name__ == "__main__":
    sys.exit(main())
