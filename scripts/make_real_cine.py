"""Build the real cine shipped in the package, interp4d_lite/data/real/pig_cine_lax/, from
its DICOM series.

    python scripts/make_real_cine.py DICOM_DIR --license LICENSE_FILE [--out FOLDER]

DICOM_DIR holds the 280 files of the long-axis SSFP cine (14 slices x 20 phases, 256 x 256,
0.82 mm pixels, 5 mm slices) of the Sunnybrook Preclinical Simulated Cardiac EP Dataset
(GitHub WrightGroupSRI/ep-dataset, folder E774S6-longAxis/); LICENSE_FILE is its CC0 1.0
text. The series is read with the package's converter (interp4d_lite.data.read_dicom_cine:
slices along the normal, phases by TriggerTime, RAS affine), brought 2x down in plane by
2 x 2 area averaging (128 x 128 x 14 x 20, 1.64 x 1.64 x 5 mm, int16, gzip) and written in
ACDC layout with Info.cfg (ED: 1, ES: the phase farthest from ED in mean absolute
difference) and LICENSE (interp4d_lite.data.real_cine.write_real_cine), plus README.md
(source and attribution). The same input gives byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from interp4d_lite.data.convert import read_dicom_cine  # noqa: E402
from interp4d_lite.data.real_cine import REAL_CINE_ID, end_systole_frame, write_real_cine  # noqa: E402
from interp4d_lite.io_utils import atomic_write_text  # noqa: E402

README = """# A real cine MRI: pig heart, long-axis stack, one heartbeat

A real scan, not a simulation: an ECG-gated SSFP cine MRI ("SSFP-CINE LAx") of a 32 kg pig,
acquired in 2011 on a GE Signa Excite 1.5 T scanner; preclinical and anonymised.

* `{pid}_4d.nii.gz`: {nx} x {ny} x {nz} voxels x {nt} cardiac phases over one beat, int16,
  {sx:.2f} x {sy:.2f} x {sz:.0f} mm, time step {dt:.0f} ms (`pixdim[4]`), affine voxel -> RAS
  (from the DICOM ImagePositionPatient / ImageOrientationPatient, LPS -> RAS). The original
  series is 256 x 256 pixels of 0.82 mm; this copy is 2x down in plane by 2 x 2 area averaging,
  rounded to integers, so that it ships inside the package.
* `Info.cfg` (ACDC style, 1-based): `ED: 1`, phase 0, the first after the ECG trigger
  (end-diastole); `ES: {es1}`, the phase farthest from ED in mean absolute difference
  (end-systole).
* No true displacement fields: the real in-between phases are the ground truth of an
  interpolation from ED to ES.

Source: the Sunnybrook Preclinical Simulated Cardiac EP Dataset, Sunnybrook Research
Institute, Toronto; public GitHub repository `WrightGroupSRI/ep-dataset`, folder
`E774S6-longAxis/` (280 DICOM files, 14 slices x 20 phases).
Licence: CC0 1.0 Universal (public domain dedication), text in `LICENSE`.
Rebuilt by `scripts/make_real_cine.py` from those DICOM files.
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dicom_dir", type=Path, help="folder with the cine's DICOM files")
    ap.add_argument("--license", type=Path, required=True, help="the CC0 1.0 licence text of the data")
    ap.add_argument(
        "--out",
        type=Path,
        default=REPO / "interp4d_lite" / "data" / "real" / REAL_CINE_ID,
        help="output folder (default: the package's interp4d_lite/data/real/pig_cine_lax)",
    )
    args = ap.parse_args(argv)
    start = time.perf_counter()
    cine = read_dicom_cine(args.dicom_dir)
    print(
        f"read {cine.meta['n_files']} files: {cine.shape} voxels x phases, spacing "
        f"{', '.join(f'{s:.4f}' for s in cine.spacing)} mm, phases by {cine.meta['time_source']}, dt {cine.dt_ms} ms"
    )
    info = write_real_cine(cine, args.out, args.license.read_text())
    (nx, ny, nz, nt), (sx, sy, sz), es = info["shape"], info["spacing"], info["es"]
    readme = README.format(
        pid=args.out.name, nx=nx, ny=ny, nz=nz, nt=nt, sx=sx, sy=sy, sz=sz, dt=info["dt_ms"], es1=es + 1
    )
    atomic_write_text(args.out / "README.md", readme)
    es_full, _ = end_systole_frame(np.moveaxis(cine.array, -1, 0))
    print(f"mean |frame - ED| per phase: {' '.join(f'{v:.2f}' for v in info['mad'])}")
    print(f"ES = phase {es} (0-based; Info.cfg ES: {es + 1}); on the full-resolution series: phase {es_full}")
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in sorted(args.out.iterdir()))
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
