"""A real cine MRI shipped inside the package: a pig heart, long-axis stack, one heartbeat.

``interp4d_lite/data/real/pig_cine_lax/`` is laid out like an ACDC patient, so the normal
loader reads it (:func:`load_real_cine`):

* ``pig_cine_lax_4d.nii.gz``: ``(128, 128, 14, 20)`` int16, 1.64 x 1.64 x 5 mm, 20 phases over
  one beat (time step in ``pixdim[4]``, ms). It is the original 256 x 256 series (0.82 mm
  pixels) brought 2x down in plane by 2 x 2 area averaging (:func:`downsample_in_plane`);
* ``Info.cfg``: ``ED: 1`` (phase 0 is end-diastole, the first after the ECG trigger) and ``ES``,
  the phase farthest from ED in mean absolute difference (:func:`end_systole_frame`), 1-based;
* ``LICENSE`` (CC0 1.0) and ``README.md`` (source and attribution).

It has no true displacement fields: the real in-between phases are the ground truth of an
interpolation from ED to ES. ``scripts/make_real_cine.py`` rebuilds the folder from the DICOM
series with :func:`write_real_cine`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = [
    "REAL_CINE_ID",
    "real_cine_path",
    "load_real_cine",
    "downsample_in_plane",
    "end_systole_frame",
    "write_real_cine",
    "shipped_real_cines",
    "write_real_cine_dataset",
]

REAL_CINE_ID = "pig_cine_lax"


def real_cine_path() -> Path:
    """The folder of the shipped real cine (ACDC layout: ``pig_cine_lax_4d.nii.gz``, ``Info.cfg``)."""
    folder = Path(__file__).resolve().parent / "real" / REAL_CINE_ID
    if not (folder / f"{REAL_CINE_ID}_4d.nii.gz").is_file():
        raise DataError(f"{folder}: the shipped real cine is missing (reinstall interp4d_lite)")
    return folder


def load_real_cine(volume_shape=None):
    """The shipped real cine as a :class:`~interp4d_lite.data.Patient4D`, read by
    :func:`~interp4d_lite.data.io.load_acdc_patient` (min-max per frame; inputs ED = frame 0
    and ES from ``Info.cfg``; the target frames lie strictly between).

    ``volume_shape``: ``None`` keeps the file's grid ``(128, 128, 14)``; ``(X, Y, Z)``
    centre-crops/pads like the other loaders."""
    from .io import load_acdc_patient

    return load_acdc_patient(real_cine_path(), volume_shape="native" if volume_shape is None else volume_shape)


def downsample_in_plane(array: np.ndarray, affine: np.ndarray, factor: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``factor x factor`` area averaging along X and Y of ``(X, Y, ...)``, and the affine of the
    coarser grid: its voxel ``(i, j)`` is the mean of the fine voxels ``factor*i .. factor*i +
    factor - 1``, so its centre sits at fine index ``factor*i + (factor - 1) / 2``; world
    coordinates of the voxel centres stay right. X and Y must be multiples of ``factor``."""
    nx, ny = array.shape[:2]
    if nx % factor or ny % factor:
        raise ValueError(f"downsample_in_plane: {nx} x {ny} is not a multiple of {factor}")
    a = np.asarray(array, dtype=np.float64)
    a = a.reshape(nx // factor, factor, ny // factor, factor, *a.shape[2:]).mean(axis=(1, 3))
    scale = np.eye(4)
    scale[0, 0] = scale[1, 1] = factor
    scale[0, 3] = scale[1, 3] = (factor - 1) / 2.0
    return a.astype(np.float32), np.asarray(affine, dtype=np.float64) @ scale


def end_systole_frame(frames: np.ndarray, ed: int = 0) -> tuple[int, np.ndarray]:
    """The frame farthest from frame ``ed`` of ``frames (T, X, Y, Z)`` in mean absolute
    difference, and that difference for every frame ``(T,)``."""
    f = np.asarray(frames, dtype=np.float64)
    diff = np.abs(f - f[ed]).reshape(f.shape[0], -1).mean(axis=1)
    return int(np.argmax(diff)), diff


def write_real_cine(cine, folder, license_text: str, factor: int = 2) -> dict:
    """Write ``folder`` in ACDC layout (files named after the folder) from a
    :class:`~interp4d_lite.data.dicom.DicomCine` ``(X, Y, Z, T)``: the 4D image ``factor``
    x down in plane (:func:`downsample_in_plane`, rounded to int16, gzip), ``Info.cfg`` with
    ``ED: 1`` and ``ES`` from :func:`end_systole_frame`, and ``LICENSE``. Returns what it
    wrote: ``shape``, ``spacing``, ``dt_ms``, ``es`` (0-based) and ``mad`` (each frame's mean
    absolute difference from ED), for the README the caller writes."""
    import dataclasses

    from ..io_utils import atomic_write_text
    from .convert import cine_to_nifti, save_nifti

    folder = Path(folder)
    array, affine = downsample_in_plane(cine.array, cine.affine, factor)
    array = np.round(array)
    spacing = (cine.spacing[0] * factor, cine.spacing[1] * factor, cine.spacing[2])
    small = dataclasses.replace(cine, array=array, affine=affine, spacing=spacing)
    es, mad = end_systole_frame(np.moveaxis(array, -1, 0), ed=0)
    if es == 0:
        raise DataError(f"{folder}: every frame equals the first; no end-systole to find")
    folder.mkdir(parents=True, exist_ok=True)
    save_nifti(cine_to_nifti(small), folder / f"{folder.name}_4d.nii.gz")
    atomic_write_text(folder / "Info.cfg", f"ED: 1\nES: {es + 1}\nNbFrame: {array.shape[-1]}\n")
    atomic_write_text(folder / "LICENSE", license_text)
    return {"shape": tuple(array.shape), "spacing": spacing, "dt_ms": cine.dt_ms, "es": es, "mad": mad}


def shipped_real_cines() -> list[Path]:
    """Every real cine shipped with the package, sorted by name: the folders under
    ``interp4d_lite/data/real/`` that hold ``<folder>_4d.nii.gz`` (ACDC layout)."""
    real = Path(__file__).resolve().parent / "real"
    return sorted(d for d in real.iterdir() if d.is_dir() and (d / f"{d.name}_4d.nii.gz").is_file())


def write_real_cine_dataset(root, in_plane: int | None = None, cines=None) -> list[str]:
    """A data folder in ACDC layout of every shipped real cine (:func:`shipped_real_cines`, or
    the folders ``cines``): ``root/<name>/<name>_4d.nii.gz`` and its ``Info.cfg`` and
    ``LICENSE``, read by :func:`~interp4d_lite.data.discover_patients` like any data folder.

    ``in_plane``: the in-plane size (voxels) the loaders will crop or pad to. Each cine is
    brought down in plane by the smallest integer factor that makes its whole field of view fit
    (area averaging, :func:`downsample_in_plane`, after trimming X and Y centrally to a multiple
    of the factor), so a small ``volume_shape`` still sees the whole heart rather than a crop of
    its middle; ``None`` copies the cines as they are. Returns the patient ids written."""
    import nibabel as nib

    from ..io_utils import atomic_write_text
    from .convert import save_nifti
    from .io import read_info_cfg

    root = Path(root)
    written = []
    for src in shipped_real_cines() if cines is None else [Path(c) for c in cines]:
        name = src.name
        image = nib.load(str(src / f"{name}_4d.nii.gz"))
        data = np.asarray(image.dataobj, dtype=np.float32)  # (X, Y, Z, T)
        affine = image.affine
        nx, ny = data.shape[:2]
        factor = 1 if in_plane is None else max(1, -(-max(nx, ny) // int(in_plane)))
        if factor > 1:
            cx, cy = nx - nx % factor, ny - ny % factor
            ox, oy = (nx - cx) // 2, (ny - cy) // 2
            shift = np.eye(4)
            shift[:2, 3] = (ox, oy)
            data, affine = downsample_in_plane(data[ox : ox + cx, oy : oy + cy], affine @ shift, factor)
        out = nib.Nifti1Image(data.astype(np.float32), affine)
        zooms = image.header.get_zooms()
        out.header.set_zooms((*(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(0))), *zooms[3:4]))
        out.header.set_xyzt_units(*image.header.get_xyzt_units())
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        save_nifti(out, folder / f"{name}_4d.nii.gz")
        read_info_cfg(src / "Info.cfg")  # a clear error for a broken shipped copy
        atomic_write_text(folder / "Info.cfg", (src / "Info.cfg").read_text())
        if (src / "LICENSE").is_file():
            atomic_write_text(folder / "LICENSE", (src / "LICENSE").read_text())
        written.append(name)
    return written
