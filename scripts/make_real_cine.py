"""Build the real cines shipped in the package, interp4d_lite/data/real/<id>/, from their
originals: the pig cine from its DICOM series, the human cines from ACDC-layout folders.

    python scripts/make_real_cine.py SOURCE [SOURCE ...] --license LICENSE_FILE [--out FOLDER]

SOURCE is either

* a folder of DICOM files: the 280 files of the pig's long-axis SSFP cine (14 slices x 20
  phases, 256 x 256, 0.82 mm pixels, 5 mm slices) of the Sunnybrook Preclinical Simulated
  Cardiac EP Dataset (GitHub WrightGroupSRI/ep-dataset, folder E774S6-longAxis/), read with the
  package's converter (interp4d_lite.data.read_dicom_cine: slices along the normal, phases by
  TriggerTime, RAS affine); written to pig_cine_lax/ with ES the phase farthest from ED in mean
  absolute difference; or
* an ACDC-layout folder ``scdNNN/`` (``scdNNN_4d.nii.gz``, int16 256 x 256 x slices x 20, and
  ``Info.cfg``) of one of the three Sunnybrook Cardiac Data patients (scd101, scd201, scd301,
  converted from their DICOM files by ``interp4d-lite convert``), read with
  interp4d_lite.data.read_cine_nifti; written to scdNNN/ with the original's ED and ES.

Each is brought 2x down in plane by 2 x 2 area averaging (int16, gzip) and written in ACDC
layout with Info.cfg and LICENSE (interp4d_lite.data.real_cine.write_real_cine), plus
README.md (source, licence, citation). LICENSE_FILE is the CC0 1.0 text of the data. ``--out``
(one SOURCE only) replaces the default folder interp4d_lite/data/real/<id>. The same input
gives byte-identical files.
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
from interp4d_lite.data.io import read_info_cfg  # noqa: E402
from interp4d_lite.data.real_cine import (  # noqa: E402
    REAL_CINE_ID,
    end_systole_frame,
    read_cine_nifti,
    write_real_cine,
)
from interp4d_lite.errors import DataError  # noqa: E402
from interp4d_lite.io_utils import atomic_write_text  # noqa: E402

REAL = REPO / "interp4d_lite" / "data" / "real"

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


#: the three human cines of the Sunnybrook Cardiac Data: folder -> (original id, scanner, sequence)
SUNNYBROOK = {
    "scd101": ("SC-HF-I-1", "GE 1.5 T", "SSFP"),
    "scd201": ("SC-HF-I-2", "GE 1.5 T", "SSFP"),
    "scd301": ("SC-HF-I-4", "GE 1.5 T", "SSFP"),
}

README_SUNNYBROOK = """# A real cine MRI: human heart, short-axis stack, one heartbeat

A real scan, not a simulation: an ECG-gated {seq} cine MRI of a patient with heart failure and
infarction (group "HF-I"), one breath-hold short-axis stack from base to apex, {scanner};
clinical and anonymised. Original id `{orig}` of the Sunnybrook Cardiac Data.

* `{pid}_4d.nii.gz`: {nx} x {ny} x {nz} voxels x {nt} cardiac phases over one beat, int16,
  {sx:.2f} x {sy:.2f} x {sz:.0f} mm, time step {dt:.1f} ms (`pixdim[4]`), affine voxel -> RAS.
  The original series is {fx} x {fy} pixels of {fsx:.3f} mm; this copy is 2x down in plane by
  2 x 2 area averaging, rounded to integers, so that it ships inside the package.
* `Info.cfg` (ACDC style, 1-based): `ED: 1`, phase 0, the first after the R wave
  (end-diastole); `ES: {es1}`, end-systole as the conversion chose it: the phase farthest from
  ED over the central half of the image, by mean squared difference.
* No true displacement fields: the real in-between phases are the ground truth of an
  interpolation between any two phases.

Source: the Sunnybrook Cardiac Data (the 2009 Cardiac MR Left Ventricle Segmentation Challenge
set, Sunnybrook Health Sciences Centre, Toronto), distributed by the Cardiac Atlas Project.
Licence: CC0 1.0 Universal (public domain dedication), text in `LICENSE`.
Please cite: Radau P, Lu Y, Connelly K, Paul G, Dick AJ, Wright GA. Evaluation Framework for
Algorithms Segmenting Short Axis Cardiac MRI. The MIDAS Journal, 2009,
http://hdl.handle.net/10380/3070 (doi:10.54294/g80ruo).
Rebuilt by `scripts/make_real_cine.py` from the ACDC-layout conversion of the original DICOM
files (`interp4d-lite convert`: slices along the slice normal, phases by TriggerTime).
"""


def _from_dicom(source: Path, out: Path, license_text: str) -> dict:
    cine = read_dicom_cine(source)
    print(
        f"read {cine.meta['n_files']} files: {cine.shape} voxels x phases, spacing "
        f"{', '.join(f'{s:.4f}' for s in cine.spacing)} mm, phases by {cine.meta['time_source']}, dt {cine.dt_ms} ms"
    )
    info = write_real_cine(cine, out, license_text)
    (nx, ny, nz, nt), (sx, sy, sz), es = info["shape"], info["spacing"], info["es"]
    readme = README.format(pid=out.name, nx=nx, ny=ny, nz=nz, nt=nt, sx=sx, sy=sy, sz=sz, dt=info["dt_ms"], es1=es + 1)
    atomic_write_text(out / "README.md", readme)
    es_full, _ = end_systole_frame(np.moveaxis(cine.array, -1, 0))
    print(f"ES = phase {es} (0-based; Info.cfg ES: {es + 1}); on the full-resolution series: phase {es_full}")
    return info


def _from_acdc(source: Path, out: Path, license_text: str) -> dict:
    pid = source.name
    if pid not in SUNNYBROOK:
        raise DataError(f"{source}: not one of the Sunnybrook cines this script knows ({', '.join(SUNNYBROOK)})")
    cine = read_cine_nifti(source / f"{pid}_4d.nii.gz")
    cfg = read_info_cfg(source / "Info.cfg")
    if cfg["ED"] != 1:
        raise DataError(f"{source / 'Info.cfg'}: ED is {cfg['ED']}; the shipped cines start at ED (ED: 1)")
    print(
        f"read {source}: {cine.shape} voxels x phases, spacing {', '.join(f'{s:.4f}' for s in cine.spacing)} mm, "
        f"dt {cine.dt_ms:.2f} ms, ED {cfg['ED']}, ES {cfg['ES']}"
    )
    info = write_real_cine(cine, out, license_text, es=cfg["ES"] - 1)
    (nx, ny, nz, nt), (sx, sy, sz), es = info["shape"], info["spacing"], info["es"]
    orig, scanner, seq = SUNNYBROOK[pid]
    readme = README_SUNNYBROOK.format(
        pid=out.name, orig=orig, scanner=scanner, seq=seq, nx=nx, ny=ny, nz=nz, nt=nt, sx=sx, sy=sy, sz=sz,
        dt=info["dt_ms"], es1=es + 1, fx=cine.shape[0], fy=cine.shape[1], fsx=cine.spacing[0],
    )  # fmt: skip
    atomic_write_text(out / "README.md", readme)
    far = int(np.argmax(info["mad"]))
    print(f"ES = phase {es} (0-based, the original's); farthest from ED in mean absolute difference: phase {far}")
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sources", type=Path, nargs="+", help="DICOM folders or ACDC-layout cine folders")
    ap.add_argument("--license", type=Path, required=True, help="the CC0 1.0 licence text of the data")
    ap.add_argument(
        "--out", type=Path, default=None, help="output folder (one source only; default interp4d_lite/data/real/<id>)"
    )
    args = ap.parse_args(argv)
    if args.out is not None and len(args.sources) > 1:
        ap.error("--out takes one SOURCE")
    license_text = args.license.read_text()
    for source in args.sources:
        start = time.perf_counter()
        acdc = (source / f"{source.name}_4d.nii.gz").is_file()
        out = args.out or REAL / (source.name if acdc else REAL_CINE_ID)
        info = (_from_acdc if acdc else _from_dicom)(source, out, license_text)
        print(f"mean |frame - ED| per phase: {' '.join(f'{v:.2f}' for v in info['mad'])}")
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in sorted(out.iterdir()))
        print(f"wrote {out} in {time.perf_counter() - start:.1f} s: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
