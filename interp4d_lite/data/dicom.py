"""DICOM -> volumes with a RAS affine (nibabel convention): a CT series -> one 3D volume
(:func:`read_dicom_series`), a cine MRI series (one file per slice and phase) -> one 4D
volume (:func:`read_dicom_cine`). Both build the geometry in one place.

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
* A cine: the files are grouped by slice position along the normal, each slice's files are
  ordered in time by ``TriggerTime`` (ms after the ECG R wave), or, where that is missing or
  the same for every phase, by ``AcquisitionTime``, or last by ``InstanceNumber`` (order only,
  no time step); ``meta["time_source"]`` says which. Every slice position must hold the same
  number of phases; phase ``k`` of every slice makes volume ``k``, built as above.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DicomSeriesError

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


def _pydicom():
    try:
        import pydicom
    except ImportError:
        raise DicomSeriesError(
            "reading DICOM needs pydicom: pip install 'interp4d_lite[download]' (or pip install pydicom)"
        ) from None
    return pydicom


#: files a cine folder may hold beside its DICOM files (skipped by :func:`read_dicom_cine`)
SIDE_FILE_SUFFIXES = (".txt", ".md", ".json", ".cfg", ".csv", ".html", ".pdf", ".xml", ".nii", ".gz", ".zip")
SIDE_FILE_NAMES = ("LICENSE", "README", "COPYING", "NOTICE", "ATTRIBUTION", "DICOMDIR")


def _is_side_file(path: Path) -> bool:
    return (
        path.name.startswith(".")
        or path.suffix.lower() in SIDE_FILE_SUFFIXES
        or path.stem.upper() in SIDE_FILE_NAMES
        or path.name.upper() in SIDE_FILE_NAMES
    )


def _read_datasets(files: list[Path], strict: bool) -> list[tuple[Path, object]]:
    """``(path, dataset)`` of the files holding an image. Files that are not DICOM are
    skipped, or, with ``strict``, an error naming the file (side files such as a README are
    skipped either way when ``strict``); a DICOM file without pixel data (DICOMDIR, a report)
    is skipped, except, with ``strict``, one of an image class (a truncated file)."""
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    out = []
    for f in files:
        if strict and _is_side_file(f):
            continue
        try:
            ds = pydicom.dcmread(f)
        except InvalidDicomError:
            if strict:
                raise DicomSeriesError(f"{f}: not a DICOM file (no DICM marker); remove it from the folder") from None
            continue
        except (OSError, ValueError, EOFError, AttributeError, KeyError, TypeError) as exc:
            if strict:
                raise DicomSeriesError(f"{f}: corrupt DICOM file ({type(exc).__name__}: {exc})") from None
            continue
        if "PixelData" not in ds:
            if strict and "Image Storage" in _sop_class_name(ds):
                raise DicomSeriesError(f"{f}: corrupt DICOM file (an image without pixel data: truncated?)")
            continue
        out.append((f, ds))
    return out


def _sop_class_name(ds) -> str:
    uid = getattr(ds, "SOPClassUID", None) or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)
    return str(getattr(uid, "name", "") or "")


def _req(ds, kw, f):
    v = getattr(ds, kw, None)
    if v is None:
        raise DicomSeriesError(f"{f}: missing {kw}; cannot place the slice in space")
    return v


def _check_one_series(slices, label: str) -> str:
    """The one SeriesInstanceUID of ``slices`` (else an error); multi-frame files are refused."""
    uids = {str(getattr(ds, "SeriesInstanceUID", "")) for _, ds in slices}
    if len(uids) > 1:
        raise DicomSeriesError(f"{label}: files of {len(uids)} different series mixed in one folder")
    if int(getattr(slices[0][1], "NumberOfFrames", 1) or 1) > 1:
        raise DicomSeriesError(f"{label}: multi-frame (enhanced) DICOM is not supported")
    return uids.pop()


def _check_geometry(slices, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One orientation, image size and pixel spacing for every slice (else an error).
    Returns the unit row and column cosines and ``PixelSpacing``."""
    f0, first = slices[0]
    iop0 = np.asarray(_req(first, "ImageOrientationPatient", f0), dtype=float)
    ps0 = np.asarray(_req(first, "PixelSpacing", f0), dtype=float)
    rows0, cols0 = int(first.Rows), int(first.Columns)
    for f, ds in slices:
        iop = np.asarray(_req(ds, "ImageOrientationPatient", f), dtype=float)
        if not np.allclose(iop, iop0, atol=1e-4):
            raise DicomSeriesError(f"{label}: slices with different ImageOrientationPatient ({f.name})")
        if (int(ds.Rows), int(ds.Columns)) != (rows0, cols0):
            raise DicomSeriesError(
                f"{label}: slices of different sizes ({f.name}: {ds.Rows}x{ds.Columns} vs {rows0}x{cols0})"
            )
        if not np.allclose(np.asarray(_req(ds, "PixelSpacing", f), dtype=float), ps0, rtol=1e-4):
            raise DicomSeriesError(f"{label}: slices with different PixelSpacing ({f.name})")
    row_cos, col_cos = iop0[:3], iop0[3:]
    return row_cos / np.linalg.norm(row_cos), col_cos / np.linalg.norm(col_cos), ps0


def _build_volume(slices, label: str, tolerance: float, expected_count: int | None, geometry, uid: str) -> DicomVolume:
    """Slices of one volume (any order) -> :class:`DicomVolume`: sorted along the normal,
    steps checked (duplicates, gaps, uniformity), pixels rescaled, affine in RAS."""
    row_cos, col_cos, ps0 = geometry
    normal = np.cross(row_cos, col_cos)
    pos = np.array([np.asarray(_req(ds, "ImagePositionPatient", f), dtype=float) for f, ds in slices])
    d = pos @ normal
    order = np.argsort(d, kind="stable")
    d, pos = d[order], pos[order]
    slices = [slices[i] for i in order]

    if len(slices) == 1:  # one slice (a single-slice cine): the step is the slice spacing
        ds = slices[0][1]
        thick = float(getattr(ds, "SpacingBetweenSlices", None) or getattr(ds, "SliceThickness", None) or 1.0)
        steps = np.array([thick])
    else:
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

    first = slices[0][1]
    rows0, cols0 = int(first.Rows), int(first.Columns)
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
    step_vec = (pos[-1] - pos[0]) / (nz - 1) if nz > 1 else normal * step
    lps = np.eye(4)
    lps[:3, 0] = row_cos * sx
    lps[:3, 1] = col_cos * sy
    lps[:3, 2] = step_vec
    lps[:3, 3] = pos[0]
    affine = LPS_TO_RAS @ lps
    sz = float(np.linalg.norm(step_vec))
    meta = {
        "series_instance_uid": uid,
        "n_slices": nz,
        "modality": str(getattr(first, "Modality", "")),
        "patient_id": str(getattr(first, "PatientID", "")),
        "series_description": str(getattr(first, "SeriesDescription", "")),
        "slice_step_mm": step,
        "gantry_tilt": bool(abs(abs(float(step_vec @ normal)) - sz) > 1e-3 * sz),
        "files": [f.name for f, _ in slices],
    }
    return DicomVolume(array=vol, affine=affine, spacing=(sx, sy, sz), meta=meta)


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
    files = _files(source)
    label = name or (str(source) if isinstance(source, (str, Path)) else f"{len(files)} files")
    slices = _read_datasets(files, strict=False)
    if len(slices) < 2:
        raise DicomSeriesError(f"{label}: found {len(slices)} DICOM image(s); a volume needs at least 2")
    uid = _check_one_series(slices, label)
    geometry = _check_geometry(slices, label)
    return _build_volume(slices, label, tolerance, expected_count, geometry, uid)


# --------------------------------------------------------------------------- cine (4D)
@dataclass
class DicomCine:
    """A cine series as one 4D volume. Unpacks as ``array, affine, spacing, dt_ms = cine``."""

    array: np.ndarray  # (X, Y, Z, T) float32, rescaled
    affine: np.ndarray  # (4, 4) voxel -> RAS mm (the same for every phase)
    spacing: tuple[float, float, float]  # mm along X, Y, Z
    dt_ms: float | None  # time step between phases (median of the steps), None when unknown
    times_ms: np.ndarray | None = None  # (T,) time of each phase (mean over slices), None when unknown
    meta: dict = field(default_factory=dict)

    def __iter__(self):
        return iter((self.array, self.affine, self.spacing, self.dt_ms))

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return tuple(self.array.shape)


def _tm_to_ms(value) -> float:
    """DICOM TM ``HHMMSS.FFFFFF`` (or ``HH:MM:SS``) -> milliseconds since midnight."""
    s = str(value).strip().replace(":", "")
    hh, mm = int(s[0:2]), int(s[2:4] or 0)
    ss = float(s[4:] or 0)
    return ((hh * 60 + mm) * 60 + ss) * 1000.0


def _time_keys(groups, depth, label: str) -> tuple[str, list[list[float]]]:
    """The header that orders the phases of every slice: TriggerTime, else AcquisitionTime,
    else InstanceNumber; the first that is in every file and differs between the files of each
    slice. A header that varies within the slices but repeats in one of them means two files
    at one slice and time: an error naming them."""

    def values(kw):
        out = []
        for group in groups:
            vals = []
            for _, ds in group:
                v = getattr(ds, kw, None)
                if v is None or str(v).strip() == "":
                    return None
                try:
                    vals.append(_tm_to_ms(v) if kw == "AcquisitionTime" else float(v))
                except (TypeError, ValueError):
                    return None
            out.append(vals)
        return out

    for kw in ("TriggerTime", "AcquisitionTime", "InstanceNumber"):
        vals = values(kw)
        if vals is None:
            continue
        if all(len(set(v)) == len(v) for v in vals):
            return kw, vals
        if kw != "InstanceNumber" and any(len(set(v)) > 1 for v in vals):
            g = next(j for j, v in enumerate(vals) if len(set(v)) < len(v))
            v = vals[g]
            a = next(i for i in range(len(v)) if v.count(v[i]) > 1)
            b = next(i for i in range(a + 1, len(v)) if v[i] == v[a])
            unit = " ms" if kw == "TriggerTime" else ""
            raise DicomSeriesError(
                f"{label}: duplicated phase: {groups[g][a][0].name} and {groups[g][b][0].name} share the slice at "
                f"{depth[g]:.3f} mm and {kw} {getattr(groups[g][a][1], kw)}{unit}"
            )
    return "", []


def read_dicom_cine(
    source: Path | str | Iterable[Path], *, tolerance: float = 0.05, name: str | None = None
) -> DicomCine:
    """Read a cine series (one file per slice and phase; a folder or a list of files) into a
    :class:`DicomCine` ``(X, Y, Z, T)``.

    Slices are sorted by position along the slice normal, phases by ``TriggerTime`` (else
    ``AcquisitionTime``, else ``InstanceNumber``: ``meta["time_source"]``). Side files (README,
    LICENSE, ``*.txt``, ``*.json``, hidden files) are skipped; any other file must be DICOM.
    Errors (:class:`DicomSeriesError`, a :class:`~interp4d_lite.errors.DataError`, one line
    naming the folder or file): no such folder, no DICOM image, a file that is not DICOM or is
    corrupt, several series, orientations, image sizes or pixel spacings, a slice position with
    fewer (or more) phases than the others, two files at one slice and time, a missing slice
    position, non-uniform slice steps."""
    if isinstance(source, (str, Path)) and not Path(source).exists():
        raise DicomSeriesError(f"{source}: folder not found")
    files = _files(source)
    label = name or (str(source) if isinstance(source, (str, Path)) else f"{len(files)} files")
    if not files:
        raise DicomSeriesError(f"{label}: the folder is empty (a cine needs one DICOM file per slice and phase)")
    slices = _read_datasets(files, strict=True)
    if not slices:
        raise DicomSeriesError(f"{label}: no DICOM image among its {len(files)} file(s)")
    uid = _check_one_series(slices, label)
    geometry = _check_geometry(slices, label)
    row_cos, col_cos, _ = geometry
    normal = np.cross(row_cos, col_cos)

    # group the files by slice position along the normal (same position = same slice)
    pos = np.array([np.asarray(_req(ds, "ImagePositionPatient", f), dtype=float) for f, ds in slices])
    d = pos @ normal
    order = np.argsort(d, kind="stable")
    groups, starts = [], []
    for i in order:
        if groups and d[i] - d[starts[-1]] < 1e-2:
            groups[-1].append(slices[i])
            if not np.allclose(pos[i], pos[starts[-1]], atol=1e-2):
                raise DicomSeriesError(
                    f"{label}: {slices[i][0].name} and {slices[starts[-1]][0].name} lie at one depth "
                    f"({d[i]:.3f} mm along the normal) but at different ImagePositionPatient; not one stack"
                )
        else:
            groups.append([slices[i]])
            starts.append(i)
    depth = [float(d[i]) for i in starts]

    source_kw, keys = _time_keys(groups, depth, label)
    if not source_kw:
        raise DicomSeriesError(
            f"{label}: cannot order the phases: no TriggerTime, AcquisitionTime or InstanceNumber that "
            "is in every file and differs between the phases of each slice"
        )
    for g, k in enumerate(keys):
        o = np.argsort(k, kind="stable")
        groups[g] = [groups[g][i] for i in o]
        keys[g] = [k[i] for i in o]

    counts = [len(g) for g in groups]
    n_phases = max(set(counts), key=lambda c: (counts.count(c), c))  # the most common count
    odd = [j for j, c in enumerate(counts) if c != n_phases]
    if odd:
        j = odd[0]
        what = "fewer" if counts[j] < n_phases else "more"
        raise DicomSeriesError(
            f"{label}: unequal phase counts: the slice at {depth[j]:.3f} mm along the normal "
            f"({groups[j][0][0].name}, ...) has {counts[j]} phase(s), {what} than the {n_phases} of "
            f"{counts.count(n_phases)} other slice(s); {len(odd)} slice(s) differ (a missing or extra file)"
        )
    if n_phases < 2:
        raise DicomSeriesError(
            f"{label}: one file per slice position: a 3D series, not a cine (read it with read_dicom_series)"
        )

    volumes = []
    for k in range(n_phases):
        phase = [g[k] for g in groups]
        vol = _build_volume(phase, f"{label} (phase {k + 1})", tolerance, None, geometry, uid)
        if volumes and not np.allclose(vol.affine, volumes[0].affine, atol=1e-4):
            raise DicomSeriesError(f"{label}: phase {k + 1} lies elsewhere than phase 1 (different slice positions)")
        volumes.append(vol)
    array = np.stack([v.array for v in volumes], axis=-1)

    times = dt = None
    keys_arr = np.asarray(keys, dtype=float)  # (Z, T) in slice order along the normal
    if source_kw != "InstanceNumber":
        times = keys_arr.mean(axis=0)
        if source_kw == "AcquisitionTime":
            times = times - times[0]
        dt = float(np.median(np.diff(times)))
    meta = dict(volumes[0].meta)
    meta.pop("files")
    meta.update(
        n_phases=n_phases,
        n_files=len(slices),
        time_source=source_kw,
        time_spread_ms=float(np.max(keys_arr.max(0) - keys_arr.min(0))) if times is not None else None,
        files=[[v.meta["files"][z] for v in volumes] for z in range(len(groups))],  # [slice][phase]
    )
    return DicomCine(
        array=array, affine=volumes[0].affine, spacing=volumes[0].spacing, dt_ms=dt, times_ms=times, meta=meta
    )
