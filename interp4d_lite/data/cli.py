"""``interp4d-lite phantom``: write a phantom dataset in the ACDC or 4D-Lung layout;
``interp4d-lite convert``: a cine DICOM series -> one 4D NIfTI.

Usage::

    interp4d-lite phantom --phantom cardiac --patients 3 --out data/phantom_acdc
    interp4d-lite phantom --phantom lung --patients 2 --shape 64 64 64 --out data/phantom_lung
    interp4d-lite convert scans/cine_dicom/ --out data/cine_4d.nii.gz
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import CLIError
from ..io_utils import check_output_path
from . import DATA_KINDS


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "phantom",
        help="write a synthetic 4D dataset with true displacement fields",
        description="Generate phantom patients (cardiac / lung / linear) with exact motion and write them in "
        "ACDC layout (cardiac, linear) or our 4D-Lung layout (lung), with <id>_truth.npz, "
        "phantom.json and OUT/dataset.json. See docs/ARCHITECTURE.md.",
    )
    p.add_argument("--phantom", choices=DATA_KINDS, default="cardiac", help="which phantom (default: cardiac)")
    p.add_argument("--patients", type=int, default=3, help="number of patients (default: 3)")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument(
        "--shape",
        type=int,
        nargs=3,
        metavar=("X", "Y", "Z"),
        help="volume shape in voxels (default: 128 128 10 cardiac, 128 128 32 linear, 128 128 128 lung)",
    )
    p.add_argument(
        "--spacing",
        type=float,
        nargs=3,
        metavar=("SX", "SY", "SZ"),
        help="voxel spacing in mm (default: 1.5 1.5 8 cardiac, 1.5 1.5 5 linear, 2.5 2.5 2.5 lung)",
    )
    p.add_argument("--frames", type=int, help="frames per cycle (default: 25 cardiac, 10 lung, 6 linear)")
    p.add_argument(
        "--noise",
        type=float,
        default=None,
        help="noise std on the [0, 1] scale (cardiac: Rician, each channel's std, default 0.02; "
        "linear: Gaussian, 0.01; lung: Gaussian, fraction of the 1600 HU window, 0.01)",
    )
    p.add_argument("--amplitude", type=float, default=1.0, help="motion amplitude, 1 = typical (0..2, default 1)")
    p.add_argument(
        "--anatomy",
        default=None,
        help="lung only: the thorax family, a (default), b (a second family, for tests away from the "
        "training data) or chest (a with ribs and an airway tree)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--no-truth", action="store_true", help="do not write the true fields (<id>_truth.npz)")
    p.add_argument("--force", action="store_true", help="write into OUT even if it already holds a dataset.json")
    p.set_defaults(func=run_phantom)

    c = subparsers.add_parser(
        "convert",
        help="convert a cine DICOM series (one file per slice and phase) to one 4D NIfTI",
        description="Read a cine series from DICOM_DIR (one file per slice and phase), sort the slices by "
        "position along the slice normal and the phases by TriggerTime (else AcquisitionTime, else "
        "InstanceNumber), and write one 4D NIfTI (X, Y, Z, T) with the RAS affine, the voxel spacing and "
        "the time step in ms (pixdim[4]). Needs pydicom (pip install 'interp4d_lite[download]').",
    )
    c.add_argument("dicom_dir", metavar="DICOM_DIR", help="folder with the DICOM files of one cine series")
    c.add_argument("--out", required=True, metavar="NII4D", help="output file, ending in .nii.gz or .nii")
    c.add_argument("--force", action="store_true", help="overwrite NII4D if it exists")
    c.set_defaults(func=run_convert)


def run_phantom(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.patients < 1:
        raise CLIError(f"--patients must be >= 1, got {args.patients}")
    if args.anatomy is not None and args.phantom != "lung":
        raise CLIError(f"--anatomy is for the lung phantom only, not {args.phantom}")
    check_output_path(out, suffixes=None)  # a folder, or a missing one in a writable folder
    if (out / "dataset.json").exists() and not args.force:
        raise CLIError(f"--out {out} already holds a dataset (dataset.json); pass --force to overwrite it")
    from .phantoms import write_phantom_dataset

    start = time.perf_counter()
    try:
        manifest = write_phantom_dataset(
            out,
            phantom=args.phantom,
            n_patients=args.patients,
            shape=args.shape,
            spacing=args.spacing,
            n_frames=args.frames,
            noise=args.noise,
            amplitude=args.amplitude,
            seed=args.seed,
            truth=not args.no_truth,
            **({} if args.anatomy is None else {"anatomy": args.anatomy}),
        )
    except ValueError as exc:  # bad generator parameter (shape, spacing, frames, noise, amplitude)
        raise CLIError(str(exc)) from None
    seconds = time.perf_counter() - start
    shape = "x".join(str(s) for s in manifest["shape"])
    spacing = ", ".join(f"{s:g}" for s in manifest["spacing"])
    layout = (
        "ACDC (patientXXX/patientXXX_4d.nii.gz + Info.cfg)"
        if manifest["layout"] == "acdc"
        else "4D-Lung (<id>/<id>_4d.nii.gz in HU + phases.json)"
    )
    print(f"wrote {len(manifest['patients'])} {args.phantom} phantom patients to {out} in {seconds:.1f} s")
    print(f"  layout:   {layout}")
    print(f"  shape:    {shape} voxels, spacing ({spacing}) mm, {manifest['n_frames']} frames")
    for row in manifest["frames"]:
        if manifest["layout"] == "acdc":
            pair = f"ED={row['i0'] + 1} ES={row['i1'] + 1} (1-based, as Info.cfg)"
        else:
            pair = f"input phases 0% (frame {row['i0']}) and 50% (frame {row['i1']}), 0-based"
        print(f"  {row['patient']}: {pair}")
    print(
        f"  truth:    {'u_t0/u_t1 in <id>_truth.npz' if not args.no_truth else 'not written'}; "
        f"manifest {out / 'dataset.json'}"
    )
    return 0


def run_convert(args: argparse.Namespace) -> int:
    src = Path(args.dicom_dir)
    if not src.is_dir():
        raise CLIError(f"{src}: {'not a folder' if src.exists() else 'folder not found'} (DICOM_DIR)")
    from .convert import check_nifti_out, convert_dicom_cine

    out = check_nifti_out(args.out, overwrite=args.force)
    start = time.perf_counter()
    cine = convert_dicom_cine(src, out, overwrite=True)
    seconds = time.perf_counter() - start
    meta = cine.meta
    nx, ny, nz, nt = cine.shape
    spacing = " x ".join(f"{s:.4g}" for s in cine.spacing)
    if cine.dt_ms is not None:
        when = f"{cine.times_ms[0]:.0f} .. {cine.times_ms[-1]:.0f} ms, time step {cine.dt_ms:.4g} ms"
    else:
        when = "no times in the headers: order only, time step unknown (pixdim[4] = 1)"
    print(f"read {meta['n_files']} DICOM files from {src} in {seconds:.1f} s: {nz} slices x {nt} phases")
    print(f"  phases:   ordered by {meta['time_source']} ({when})")
    print(f"  grid:     {nx} x {ny} x {nz} voxels, spacing {spacing} mm, affine voxel -> RAS")
    print(f"  wrote     {out} ({nx}, {ny}, {nz}, {nt})")
    return 0


__all__ = ["add_commands", "run_phantom", "run_convert"]
