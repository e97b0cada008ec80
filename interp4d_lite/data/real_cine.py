"""Real cine MRIs shipped inside the package: four hearts, one beat each, every phase known.

``interp4d_lite/data/real/<id>/`` holds each in ACDC layout, so the normal loader reads it
(:func:`load_real_cine`, :func:`load_real_cines`):

* ``pig_cine_lax``: a pig heart, long-axis stack, ``(128, 128, 14, 20)``, 1.64 x 1.64 x 5 mm
  (the Sunnybrook Preclinical Simulated Cardiac EP Dataset);
* ``scd101``, ``scd201``, ``scd301``: three human hearts, short-axis stacks from base to apex,
  ``(128, 128, 10..13, 20)``, 2.6-2.7 mm in plane, 8-10 mm slices (the Sunnybrook Cardiac Data).

In each folder:

* ``<id>_4d.nii.gz``: int16, 20 phases over one beat (time step in ``pixdim[4]``, ms). It is
  the original 256 x 256 series brought 2x down in plane by 2 x 2 area averaging
  (:func:`downsample_in_plane`);
* ``Info.cfg``: ``ED: 1`` (phase 0 is end-diastole, the first after the ECG trigger) and ``ES``
  (1-based): the phase farthest from ED in mean absolute difference (:func:`end_systole_frame`)
  for the pig, the original collection's end-systole for the human cines;
* ``LICENSE`` (CC0 1.0) and ``README.md`` (source, attribution, citation).

They have no true displacement fields: the real in-between phases are the ground truth of an
interpolation from ED to ES, and of any other pair of phases (:class:`~interp4d_lite.data.CineTriplets`).
``scripts/make_real_cine.py`` rebuilds a folder from the DICOM series or from an ACDC-layout
4D NIfTI with :func:`write_real_cine`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = [
    "REAL_CINE_ID",
    "REAL_CINE_IDS",
    "real_cine_path",
    "real_cine_paths",
    "load_real_cine",
    "load_real_cines",
    "read_cine_nifti",
    "downsample_in_plane",
    "end_systole_frame",
    "write_real_cine",
    "shipped_real_cines",
    "write_real_cine_dataset",
]

REAL_CINE_ID = "pig_cine_lax"
#: every real cine the package ships: the pig (long axis) and three human short-axis cines
REAL_CINE_IDS = ("pig_cine_lax", "scd101", "scd201", "scd301")
_REAL_DIR = Path(__file__).resolve().parent / "real"


def real_cine_path(cine_id: str = REAL_CINE_ID) -> Path:
    """The folder of a shipped real cine (ACDC layout: ``<id>_4d.nii.gz``, ``Info.cfg``);
    default the pig cine."""
    if cine_id not in REAL_CINE_IDS:
        raise DataError(f"no real cine {cine_id!r} ships with the package; choose one of {', '.join(REAL_CINE_IDS)}")
    folder = _REAL_DIR / cine_id
    if not (folder / f"{cine_id}_4d.nii.gz").is_file():
        raise DataError(f"{folder}: the shipped real cine is missing (reinstall interp4d_lite)")
    return folder


def real_cine_paths(ids=None) -> dict[str, Path]:
    """``{id: folder}`` of the shipped real cines (``ids``: those, in that order; default all of
    :data:`REAL_CINE_IDS`)."""
    return {i: real_cine_path(i) for i in (REAL_CINE_IDS if ids is None else ids)}


def load_real_cine(volume_shape=None, cine_id: str = REAL_CINE_ID):
    """A shipped real cine (default the pig cine) as a :class:`~interp4d_lite.data.Patient4D`,
    read by :func:`~interp4d_lite.data.io.load_acdc_patient` (min-max per frame; inputs ED =
    frame 0 and ES from ``Info.cfg``; the target frames lie strictly between).

    ``volume_shape``: ``None`` keeps the file's grid (the pig's ``(128, 128, 14)``); ``(X, Y, Z)``
    centre-crops/pads like the other loaders."""
    from .io import load_acdc_patient

    return load_acdc_patient(real_cine_path(cine_id), volume_shape="native" if volume_shape is None else volume_shape)


def load_real_cines(ids=None, volume_shape=None) -> list:
    """The shipped real cines (``ids``, default all of :data:`REAL_CINE_IDS`) as a list of
    :class:`~interp4d_lite.data.Patient4D`, each as :func:`load_real_cine` loads it; one
    ``volume_shape`` for all of them puts them on one grid (their native grids differ)."""
    return [load_real_cine(volume_shape, cine_id=i) for i in real_cine_paths(ids)]


def read_cine_nifti(path):
    """A 4D NIfTI cine ``(X, Y, Z, T)`` as a :class:`~interp4d_lite.data.dicom.DicomCine`
    (values as stored, affine, spacing, ``dt_ms`` from ``pixdim[4]`` when its time unit is ms
    or s), so :func:`write_real_cine` takes a converted series as it takes the DICOM files."""
    from .dicom import DicomCine
    from .io import read_nifti

    data, img = read_nifti(path, ndim=4)
    zooms = img.header.get_zooms()
    unit = img.header.get_xyzt_units()[1]
    dt = float(zooms[3]) * {"msec": 1.0, "sec": 1000.0}.get(unit, float("nan")) if len(zooms) > 3 else float("nan")
    descrip = bytes(img.header["descrip"]).decode(errors="replace").strip("\x00 ")
    source = descrip.rsplit("phases by ", 1)[1] if "phases by " in descrip else None
    return DicomCine(
        array=data,
        affine=np.asarray(img.affine, dtype=np.float64),
        spacing=tuple(float(z) for z in zooms[:3]),
        dt_ms=dt if dt == dt and dt > 0 else None,
        meta={"time_source": source, "n_files": 1},
    )


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


def write_real_cine(cine, folder, license_text: str, factor: int = 2, es: int | None = None) -> dict:
    """Write ``folder`` in ACDC layout (files named after the folder) from a
    :class:`~interp4d_lite.data.dicom.DicomCine` ``(X, Y, Z, T)``: the 4D image ``factor``
    x down in plane (:func:`downsample_in_plane`, rounded to int16, gzip), ``Info.cfg`` with
    ``ED: 1`` and ``ES`` (``es``, 0-based, when given, e.g. the original's; else from
    :func:`end_systole_frame`), and ``LICENSE``. Returns what it wrote: ``shape``, ``spacing``,
    ``dt_ms``, ``es`` (0-based) and ``mad`` (each frame's mean absolute difference from ED),
    for the README the caller writes."""
    import dataclasses

    from ..io_utils import atomic_write_text
    from .convert import cine_to_nifti, save_nifti

    folder = Path(folder)
    array, affine = downsample_in_plane(cine.array, cine.affine, factor)
    array = np.round(array)
    spacing = (cine.spacing[0] * factor, cine.spacing[1] * factor, cine.spacing[2])
    small = dataclasses.replace(cine, array=array, affine=affine, spacing=spacing)
    far, mad = end_systole_frame(np.moveaxis(array, -1, 0), ed=0)
    if far == 0:
        raise DataError(f"{folder}: every frame equals the first; no end-systole to find")
    es = far if es is None else int(es)
    if not 0 < es < array.shape[-1]:
        raise DataError(f"{folder}: end-systole {es} must be a phase after ED (1..{array.shape[-1] - 1}, 0-based)")
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
