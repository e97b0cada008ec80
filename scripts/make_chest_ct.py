"""Build the compact real chest CTs of chest_ct/ (the lung student's real anatomy) from the
original public files.

    python scripts/make_chest_ct.py popi_chest DICOM_DIR --license LICENSE_FILE [--out chest_ct]
    python scripts/make_chest_ct.py ts_chest   NIFTI     --license LICENSE_FILE [--out chest_ct]

* ``popi_chest``: DICOM_DIR holds the 141 files ``00-slice000.dcm`` .. ``00-slice140.dcm`` of
  the public GitHub repository InsightSoftwareConsortium/ITKElastix, folder
  ``examples/data/00/`` at commit 787db6d117d5c3de231935163b713f3e0a5c7433 (removed from the
  repository in 2025): phase 00 of the POPI-model 4D CT (Philips Brilliance Big Bore, 2007,
  512 x 512 x 141, 0.98 x 0.98 x 2 mm). LICENSE_FILE: that repository's LICENSE (Apache 2.0).
* ``ts_chest``: NIFTI is ``tests/reference_files/aorta_report/test_result/models/ct_cropped.nii.gz``
  of the public GitHub repository wasserth/TotalSegmentator (120 x 126 x 164, 1.5 mm).
  LICENSE_FILE: that repository's LICENSE (Apache 2.0).

Each scan is read (DICOM with the package's reader, interp4d_lite.download.dicom; NIfTI with
nibabel), reoriented to RAS, resampled to 2.5 mm voxels with Gaussian anti-aliasing and
trilinear interpolation, cropped to the body's box plus 5 mm
(interp4d_lite.data.chest_ct.resample_ct), rounded to int16 HU and written as
``OUT/<name>/<name>_ct.nii.gz`` with ``README.md`` (source, attribution, what was changed) and
``LICENSE``. The same input gives the same voxels.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

from interp4d_lite.data.chest_ct import CHEST_CT_SPACING, CHEST_CTS, resample_ct  # noqa: E402
from interp4d_lite.io_utils import atomic_write_bytes, atomic_write_text  # noqa: E402

SOURCES = {
    "popi_chest": """# A real chest CT: POPI-model 4D CT, phase 0 % (end-inhale)

A real scan: the first phase (00, end-inhale) of the ten-phase 4D CT of the POPI-model, a
radiotherapy planning scan of a patient with a lung tumour (Philips Brilliance Big Bore,
Centre Léon Bérard, Lyon, 2007; anonymised), used by the lung student's training series.

* `{name}_ct.nii.gz`: {nx} x {ny} x {nz} voxels of {sp} mm, int16 HU, RAS affine. The original
  series is 512 x 512 x 141 voxels of 0.98 x 0.98 x 2 mm; this copy is resampled to 2.5 mm
  (Gaussian anti-aliasing, trilinear) and cropped to the box of the body plus 5 mm.
* Static: the breathing series made from it (`interp4d_lite.data.chest_ct`) move it with a
  breathing model; its own other phases are not in this repository.

Source: the public GitHub repository InsightSoftwareConsortium/ITKElastix, folder
`examples/data/00/` at commit 787db6d117d5c3de231935163b713f3e0a5c7433 (141 DICOM files),
distributed there under the Apache License 2.0 (text in `LICENSE`). The series is phase 00 of
the POPI-model (CREATIS, Lyon), which its authors make freely available for research and ask
to be cited:

J. Vandemeulebroucke, D. Sarrut, P. Clarysse. The POPI-model, a point-validated pixel-based
breathing thorax model. XVth International Conference on the Use of Computers in Radiation
Therapy (ICCR), Toronto, Canada, 2007.

Rebuilt by `scripts/make_chest_ct.py popi_chest DICOM_DIR --license LICENSE`.
""",
    "ts_chest": """# A real chest CT: contrast-enhanced chest, TotalSegmentator example

A real scan: a contrast-enhanced CT of an adult chest (CT angiography), cropped around the
heart and aorta, so the lungs are cut by the field of view on every side. Kept aside: only the
lung student's held-out scoring series are made from it, never its training series.

* `{name}_ct.nii.gz`: {nx} x {ny} x {nz} voxels of {sp} mm, int16 HU, RAS affine. The original
  is 120 x 126 x 164 voxels of 1.5 mm; this copy is resampled to 2.5 mm (Gaussian
  anti-aliasing, trilinear) and cropped to the box of the body plus 5 mm.

Source: the public GitHub repository wasserth/TotalSegmentator, file
`tests/reference_files/aorta_report/test_result/models/ct_cropped.nii.gz`, distributed there
under the Apache License 2.0 (text in `LICENSE`); the repository does not name the scan's
origin. Attribution: J. Wasserthal et al., TotalSegmentator: robust segmentation of 104
anatomic structures in CT images, Radiology: Artificial Intelligence 5(5), 2023.

Rebuilt by `scripts/make_chest_ct.py ts_chest NIFTI --license LICENSE`.
""",
}


def read_source(name: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    if name == "popi_chest":
        from interp4d_lite.download.dicom import read_dicom_series

        vol = read_dicom_series(path, expected_count=141, name=str(path))
        return vol.array, vol.affine
    img = nib.load(str(path))
    return np.asarray(img.dataobj, dtype=np.float32), np.asarray(img.affine, dtype=np.float64)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=sorted(SOURCES), help="which scan")
    ap.add_argument("source", type=Path, help="the DICOM folder (popi_chest) or the NIfTI (ts_chest)")
    ap.add_argument("--license", type=Path, required=True, help="the licence text of the source repository")
    ap.add_argument("--out", type=Path, default=REPO / "chest_ct")
    a = ap.parse_args(argv)
    assert set(SOURCES) == set(CHEST_CTS)
    hu, affine = read_source(a.name, a.source)
    hu, affine = resample_ct(hu, affine, CHEST_CT_SPACING)
    folder = a.out / a.name
    folder.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(np.round(hu).astype(np.int16), affine)
    img.header.set_xyzt_units("mm")
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    path = folder / f"{a.name}_ct.nii.gz"
    atomic_write_bytes(path, gzip.compress(img.to_bytes(), compresslevel=9, mtime=0))
    nx, ny, nz = hu.shape
    sp = " x ".join(f"{s:g}" for s in CHEST_CT_SPACING)
    atomic_write_text(folder / "README.md", SOURCES[a.name].format(name=a.name, nx=nx, ny=ny, nz=nz, sp=sp))
    atomic_write_text(folder / "LICENSE", a.license.read_text())
    print(f"{path}: {hu.shape}, {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
