"""A DICOM CT series -> one 3D volume with a RAS affine (nibabel convention).

Conventions (docs/ARCHITECTURE.md): voxel axes ``(X, Y, Z)``; ``X`` runs along a
DICOM image row (the first three ImageOrientationPatient cosines, i.e. the
column index), ``Y`` down the columns (the row index, last three cosines),
``Z`` across slices. So ``volume[:, :, k] = pixel_array_k.T``.

* Slices are sorted by their position along the slice normal
  ``n = row_cosines x column_cosines`` (``ImagePositionPatient . n``), never by
  file name or InstanceNumber.
* The slice step is measured from the positions; a position that repeats
  (duplicated slice), a gap larger than 1.5 times the typical step (missing
  slice) or steps that differ by more than ``tolerance`` are errors
  (:class:`DicomSeriesError`), as are mixed orientations, sizes or pixel spacings.
* The affine maps voxel indices to world millimetres. DICOM world coordinates
  are LPS; nibabel's are RAS, so the LPS affine is multiplied by
  ``diag(-1, -1, 1, 1)``. Its third column is the mean step between consecutive
  ``ImagePositionPatient`` (exact also for a tilted gantry).
* Values are ``stored * RescaleSlope + RescaleIntercept`` (HU for CT), float32,
  per slice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DicomSeriesError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class DicomVolume:
    """One DICOM series as a volume: voxels, RAS affine, spacing and what the headers said."""

    array: np.ndarray  # (X, Y, Z) float32, rescaled (HU for CT)
    affine: np.ndarray  # (4, 4) voxel -> RAS mm
    spacing: tuple[float, float, float]  # mm along X, Y, Z
    meta: dict = field(default_factory=dict)


def _files(source) -> list[Path]:
    if isinstance(source, (str, Path)):
        p = Path(source)
        if p.is_dir():
            return sorted(q for q in p.rglob("*") if q.is_file())
        return [p]
    return [Path(q) for q in source]


def read_dicom_series(
    source: Path | str | Iterable[Path],
    *,
    expected_count: int | None = None,
    tolerance: float = 0.05,
    name: str | None = None,
) -> DicomVolume:
    """Read one DICOM series (a folder or a list of files) into a :class:`DicomVolume`.

    Files that are not DICOM (a LICENSE or README in a download) are ignored.
    ``tolerance`` is the relative spread of slice steps allowed (default 5 %).
    ``expected_count`` (e.g. the API's ImageCount) is checked when given."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    files = _files(source)
    label = name or (str(source) if isinstance(source, (str, Path)) else f"{len(files)} files")
    slices = []
    for f in files:
        try:
            ds = pydicom.dcmread(f)
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        if "PixelData" not in ds:
            continue
        slices.append((f, ds))
    if len(slices) < 2:
        raise DicomSeriesError(f"{label}: found {len(slices)} DICOM image(s); a volume needs at least 2")

    uids = {str(getattr(ds, "SeriesInstanceUID", "")) for _, ds in slices}
    if len(uids) > 1:
        raise DicomSeriesError(f"{label}: files of {len(uids)} different series mixed in one folder")
    first = slices[0][1]
    if int(getattr(first, "NumberOfFrames", 1) or 1) > 1:
        raise DicomSeriesError(f"{label}: multi-frame (enhanced) DICOM is not supported")

    def req(ds, kw, f):
        v = getattr(ds, kw, None)
        if v is None:
            raise DicomSeriesError(f"{f}: missing {kw}; cannot place the slice in space")
        return v

    iop0 = np.asarray(req(first, "ImageOrientationPatient", slices[0][0]), dtype=float)
    ps0 = np.asarray(req(first, "PixelSpacing", slices[0][0]), dtype=float)
    rows0, cols0 = int(first.Rows), int(first.Columns)
    for f, ds in slices:
        iop = np.asarray(req(ds, "ImageOrientationPatient", f), dtype=float)
        if not np.allclose(iop, iop0, atol=1e-4):
            raise DicomSeriesError(f"{label}: slices with different ImageOrientationPatient ({f.name})")
        if (int(ds.Rows), int(ds.Columns)) != (rows0, cols0):
            raise DicomSeriesError(
                f"{label}: slices of different sizes ({f.name}: {ds.Rows}x{ds.Columns} vs {rows0}x{cols0})"
            )
        if not np.allclose(np.asarray(req(ds, "PixelSpacing", f), dtype=float), ps0, rtol=1e-4):
            raise DicomSeriesError(f"{label}: slices with different PixelSpacing ({f.name})")

    row_cos, col_cos = iop0[:3], iop0[3:]
    row_cos = row_cos / np.linalg.norm(row_cos)
    col_cos = col_cos / np.linalg.norm(col_cos)
    normal = np.cross(row_cos, col_cos)
    pos = np.array([np.asarray(req(ds, "ImagePositionPatient", f), dtype=float) for f, ds in slices])
    d = pos @ normal
    order = np.argsort(d, kind="stable")
    d, pos = d[order], pos[order]
    slices = [slices[i] for i in order]

    steps = np.diff(d)
    dup = np.nonzero(steps < 1e-3)[0]
    if dup.size:
        i = int(dup[0])
        raise DicomSeriesError(
            f"{label}: duplicated slice at position {d[i]:.3f} mm along the normal "
            f"({slices[i][0].name} and {slices[i + 1][0].name}); {dup.size} duplicate(s) in total"
        )
    step = float(np.median(steps))
    gaps = np.nonzero(steps > 1.5 * step)[0]
    if gaps.size:
        i = int(gaps[0])
        n_missing = int(round(steps[i] / step)) - 1
        raise DicomSeriesError(
            f"{label}: missing slice(s): gap of {steps[i]:.3f} mm between {d[i]:.3f} and {d[i + 1]:.3f} mm "
            f"(typical step {step:.3f} mm, about {n_missing} slice(s) missing; "
            f"{gaps.size} gap(s) in total)"
        )
    if np.max(np.abs(steps - step)) > tolerance * step:
        raise DicomSeriesError(
            f"{label}: non-uniform slice spacing (steps from {steps.min():.3f} to "
            f"{steps.max():.3f} mm); cannot build a regular volume"
        )
    if expected_count is not None and len(slices) != int(expected_count):
        raise DicomSeriesError(f"{label}: {len(slices)} slices found, the archive lists {expected_count}")

    nz = len(slices)
    vol = np.empty((cols0, rows0, nz), dtype=np.float32)
    for k, (f, ds) in enumerate(slices):
        try:
            px = ds.pixel_array
        except Exception as exc:  # pydicom raises many kinds for bad/compressed pixel data
            raise DicomSeriesError(f"{f}: cannot decode pixel data ({exc})") from exc
        slope = float(getattr(ds, "RescaleSlope", 1) or 1)
        inter = float(getattr(ds, "RescaleIntercept", 0) or 0)
        vol[:, :, k] = (px.astype(np.float32) * slope + inter).T

    sx, sy = float(ps0[1]), float(ps0[0])  # PixelSpacing = [between rows, between columns]
    step_vec = (pos[-1] - pos[0]) / (nz - 1)
    lps = np.eye(4)
    lps[:3, 0] = row_cos * sx
    lps[:3, 1] = col_cos * sy
    lps[:3, 2] = step_vec
    lps[:3, 3] = pos[0]
    affine = LPS_TO_RAS @ lps
    sz = float(np.linalg.norm(step_vec))
    meta = {
        "series_instance_uid": uids.pop(),
        "n_slices": nz,
        "modality": str(getattr(first, "Modality", "")),
        "patient_id": str(getattr(first, "PatientID", "")),
        "series_description": str(getattr(first, "SeriesDescription", "")),
        "slice_step_mm": step,
        "gantry_tilt": bool(abs(abs(float(step_vec @ normal)) - sz) > 1e-3 * sz),
    }
    return DicomVolume(array=vol, affine=affine, spacing=(sx, sy, sz), meta=meta)
