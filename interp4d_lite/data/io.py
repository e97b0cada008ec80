"""Readers for 4D/3D NIfTI, ACDC's ``Info.cfg``, our 4D-Lung layout and phantom truth.

Every failure becomes a :class:`~interp4d_lite.errors.DataError` naming the file and the
problem (missing, not NIfTI, truncated, wrong dimensionality, NaN/inf voxels, bad
``Info.cfg``/``phases.json``), never a bare traceback from inside nibabel. Readers only
read: nothing on disk is created, modified or deleted.

``Patient4D`` (the loaded, preprocessed patient of docs/ARCHITECTURE.md) is defined here
beside its two loaders and re-exported by :mod:`interp4d_lite.data.dataset`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from ..errors import DataError
from .preprocess import center_crop_or_pad, guess_data_kind, normalize_scan, shift_affine

__all__ = [
    "Patient4D",
    "read_nifti",
    "read_nifti_frames",
    "load_series",
    "read_nifti_4d",
    "read_nifti_3d",
    "read_info_cfg",
    "read_phases_json",
    "read_truth",
    "find_4d_image",
    "load_acdc_patient",
    "load_lung_patient",
    "default_volume_shape",
    "DEFAULT_VOLUME_SHAPES",
]

DEFAULT_VOLUME_SHAPES = {"cardiac": (128, 128, 32), "linear": (128, 128, 32), "lung": (128, 128, 128)}


@dataclass
class Patient4D:
    """One patient after preprocessing (docs/ARCHITECTURE.md, "Loading")."""

    patient_id: str
    data_kind: str  # "cardiac" | "lung" | "linear"
    frames: np.ndarray  # (T, X, Y, Z) float32 in [0, 1]
    affine: np.ndarray  # (4, 4) voxel -> world of the preprocessed grid
    spacing: tuple  # (sx, sy, sz) mm
    i0: int  # 0-based input frame 0 (ED / 0 %)
    i1: int  # 0-based input frame 1 (ES / 50 %)
    times: np.ndarray  # (T,) float32, (i - i0) / (i1 - i0) inside [i0, i1], NaN outside
    source: Path  # the 4D file it came from
    u_t0: np.ndarray | None = None  # (K, 3, X, Y, Z) voxels for frames i0..i1 (phantoms only)
    u_t1: np.ndarray | None = None

    @property
    def target_indices(self) -> list:
        """Frames strictly between the two inputs (the ones to interpolate)."""
        return list(range(self.i0 + 1, self.i1))

    @property
    def shape(self) -> tuple:
        return tuple(self.frames.shape[1:])

    @property
    def has_truth(self) -> bool:
        return self.u_t0 is not None


# --------------------------------------------------------------------------- NIfTI
def _open_nifti(path):
    """The nibabel image of ``path`` (data not read yet), or a DataError naming the file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: is not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        img = nib.load(str(path))
    except Exception as exc:  # ImageFileError, gzip/zlib errors, header errors, ...
        raise DataError(f"{path}: cannot be read as NIfTI ({type(exc).__name__}: {exc})") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise DataError(f"{path}: is a {type(img).__name__}, not a NIfTI image")
    return img


def read_nifti_frames(path, indices) -> tuple:
    """``({index: (X, Y, Z) float32}, image, n_frames)`` of a 4D NIfTI, reading only the frames
    ``indices`` (each checked for NaN/inf; the other frames are never read). Errors as
    :func:`read_nifti`'s: one line naming the file."""
    img = _open_nifti(path)
    shape = img.shape
    if len(shape) == 5 and shape[3] == 1:
        shape = shape[:3] + shape[4:]
    if len(shape) != 4:
        raise DataError(f"{path}: is {len(shape)}D of shape {tuple(img.shape)}; a 4D (X, Y, Z, T) image is needed")
    n = int(shape[3])
    out = {}
    for k in indices:
        if not 0 <= int(k) < n:
            raise DataError(f"{path}: has {n} frames; frame {k} does not exist")
        try:
            v = np.asarray(img.dataobj[..., int(k)] if len(img.shape) == 4 else img.dataobj[:, :, :, 0, int(k)])
        except Exception as exc:
            raise DataError(f"{path}: truncated or corrupt image data ({type(exc).__name__}: {exc})") from None
        v = v.astype(np.float32)
        if not np.isfinite(v).all():
            raise DataError(f"{path}: frame {k} has non-finite voxels (NaN or infinite)")
        out[int(k)] = v
    return out, img, n


def read_nifti(path, ndim: int | None = None, hint: str = "") -> tuple:
    """The package's one NIfTI reader: ``(data, image)`` with ``data`` float32 as stored on
    disk ``(X, Y, Z[, T])`` (``scl_slope``/``scl_inter`` applied) and the nibabel image
    (affine, header).

    ``ndim=3`` asks for a volume (a 4D file with one frame is accepted), ``ndim=4`` for a
    4D image (``(X, Y, Z, 1, T)`` as written by some tools is accepted); ``hint`` is
    appended to the wrong-dimensionality message. Every failure -- missing, empty, not
    NIfTI, truncated, NaN/inf voxels, wrong dimensionality -- is a
    :class:`~interp4d_lite.errors.DataError` naming the file."""
    img = _open_nifti(path)
    path = Path(path)
    try:
        data = np.asarray(img.get_fdata(dtype=np.float32))  # applies scl_slope / scl_inter
    except Exception as exc:  # truncated gzip stream, short data block, ...
        raise DataError(f"{path}: truncated or corrupt image data ({type(exc).__name__}: {exc})") from None
    bad = ~np.isfinite(data)
    if bad.any():
        n_nan = int(np.isnan(data).sum())
        raise DataError(f"{path}: {int(bad.sum())} non-finite voxels ({n_nan} NaN, {int(bad.sum()) - n_nan} infinite)")
    if ndim == 4:
        if data.ndim == 5 and data.shape[3] == 1:  # (X, Y, Z, 1, T) written by some tools
            data = data[:, :, :, 0, :]
        if data.ndim != 4:
            what = "a 3D volume" if data.ndim == 3 else f"{data.ndim}D"
            raise DataError(f"{path}: is {what} of shape {data.shape}; a 4D (X, Y, Z, T) image is needed{hint}")
    elif ndim == 3:
        if data.ndim == 4 and data.shape[3] == 1:
            data = data[..., 0]
        if data.ndim != 3:
            extra = f" with {data.shape[3]} frames" if data.ndim == 4 else ""
            raise DataError(
                f"{path}: is {data.ndim}D{extra} (shape {data.shape}); a 3D (X, Y, Z) volume is needed{hint}"
            )
    elif ndim is not None:
        raise ValueError(f"read_nifti: ndim must be 3, 4 or None, not {ndim!r}")
    return data, img


def nifti_4d(frames: np.ndarray, affine: np.ndarray, *, dtype=np.float32, zooms=None, xyzt_units=None, descrip=None):
    """A ``nibabel.Nifti1Image`` ``(X, Y, Z, T)`` of ``frames`` ``(T, X, Y, Z)`` (cast to
    ``dtype``; int16 is rounded first), with ``affine`` as sform and qform (code 1, scanner);
    optionally the voxel sizes ``zooms`` (spatial, or with the time step), the units
    (``("mm", "sec")``) and the header's description (79 bytes at most)."""
    data = np.moveaxis(np.asarray(frames), 0, -1)  # (T, X, Y, Z) -> (X, Y, Z, T)
    data = np.round(data).astype(dtype) if np.dtype(dtype) == np.int16 else data.astype(dtype)
    affine = np.asarray(affine, dtype=np.float64)
    img = nib.Nifti1Image(data, affine)
    if zooms is not None:
        zooms = tuple(float(z) for z in zooms)
        img.header.set_zooms(zooms if len(zooms) == 4 else zooms + (1.0,))
    if xyzt_units is not None:
        img.header.set_xyzt_units(*xyzt_units)
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    if descrip is not None:
        img.header["descrip"] = str(descrip)[:79].encode()
    return img


def write_nifti(img, out, compresslevel: int = 9) -> Path:
    """The package's one NIfTI writer: ``img`` (a nibabel image) to ``out`` atomically
    (:func:`interp4d_lite.io_utils.atomic_write_bytes`: a crash never leaves half a file under
    the real name), gzip for ``.nii.gz`` with no time stamp in its header (the same image gives
    the same bytes). A failed write is a :class:`~interp4d_lite.errors.DataError` naming ``out``."""
    import errno
    import gzip

    from ..io_utils import atomic_write_bytes

    out = Path(out)
    blob = img.to_bytes()
    if out.name.lower().endswith(".gz"):
        blob = gzip.compress(blob, compresslevel=compresslevel, mtime=0)
    try:
        atomic_write_bytes(out, blob)
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        raise DataError(f"{out}: cannot write ({'disk full: ' if full else ''}{exc.strerror or exc})") from None
    return out


def _spacing(img) -> tuple:
    return tuple(float(z) for z in img.header.get_zooms()[:3])


def read_nifti_4d(path) -> tuple:
    """Read a 4D NIfTI ``(X, Y, Z, T)``.

    Returns ``(frames (T, X, Y, Z) float32, affine (4, 4), spacing (sx, sy, sz) mm)``; stored
    integers are scaled by the header's slope/intercept (nibabel ``get_fdata``)."""
    data, img = read_nifti(path, ndim=4)
    return np.ascontiguousarray(np.moveaxis(data, -1, 0)), np.asarray(img.affine, dtype=np.float64), _spacing(img)


def read_nifti_3d(path) -> tuple:
    """Read a 3D NIfTI ``(X, Y, Z)`` (a 4D file with one frame is accepted).

    Returns ``(volume (X, Y, Z) float32, affine (4, 4), spacing (sx, sy, sz) mm)``."""
    data, img = read_nifti(path, ndim=3)
    return data, np.asarray(img.affine, dtype=np.float64), _spacing(img)


# --------------------------------------------------------------------------- side files
def read_info_cfg(path) -> dict:
    """Parse ACDC's ``Info.cfg`` (``key: value`` lines). ``ED``, ``ES`` (1-based) and
    ``NbFrame`` become ints (ED and ES are required), ``Height``/``Weight`` floats."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: missing Info.cfg (an ACDC patient needs ED and ES frames there)")
    info = {}
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        if ":" not in line:
            raise DataError(f"{path}: line {n} is not 'key: value': {line.strip()!r}")
        key, value = (s.strip() for s in line.split(":", 1))
        info[key] = value
    for key in ("ED", "ES"):
        if key not in info:
            raise DataError(f"{path}: no '{key}:' line (keys found: {', '.join(info) or 'none'})")
    for key in ("ED", "ES", "NbFrame"):
        if key in info:
            try:
                info[key] = int(float(info[key]))
            except ValueError:
                raise DataError(f"{path}: {key} must be a frame number, got {info[key]!r}") from None
    for key in ("Height", "Weight"):
        if key in info:
            try:
                info[key] = float(info[key])
            except ValueError:
                pass
    return info


def read_phases_json(path) -> dict:
    """Read ``phases.json`` of our 4D-Lung layout and check its fields."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: missing phases.json (a 4D-Lung patient lists its phases there)")
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    phases, inputs = meta.get("phases"), meta.get("input_phases", [0, 50])
    if not isinstance(phases, list) or not phases:
        raise DataError(f"{path}: 'phases' must be a non-empty list of percentages")
    if not isinstance(inputs, list) or len(inputs) != 2 or any(p not in phases for p in inputs):
        raise DataError(f"{path}: 'input_phases' {inputs} must be two of the phases {phases}")
    if inputs[0] == inputs[1]:
        raise DataError(f"{path}: the two input phases are the same ({inputs[0]})")
    return meta


def read_truth(path) -> dict:
    """Phantom truth ``<id>_truth.npz``: ``u_t0``, ``u_t1`` (K, 3, X, Y, Z), ``frame_indices``, ``times``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            truth = {k: np.asarray(z[k]) for k in ("u_t0", "u_t1", "frame_indices", "times")}
    except KeyError as exc:
        raise DataError(f"{path}: truth file lacks the array {exc}") from None
    except Exception as exc:
        raise DataError(f"{path}: cannot read truth fields ({type(exc).__name__}: {exc})") from None
    if truth["u_t0"].shape != truth["u_t1"].shape or truth["u_t0"].ndim != 5 or truth["u_t0"].shape[1] != 3:
        raise DataError(f"{path}: fields must be (K, 3, X, Y, Z), got {truth['u_t0'].shape} and {truth['u_t1'].shape}")
    return truth


def find_4d_image(folder) -> Path:
    """``folder/<name>_4d.nii.gz`` (or the only ``*_4d.nii[.gz]`` there)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: patient folder not found")
    for ext in (".nii.gz", ".nii"):
        cand = folder / f"{folder.name}_4d{ext}"
        if cand.is_file():
            return cand
    found = sorted(folder.glob("*_4d.nii.gz")) + sorted(folder.glob("*_4d.nii"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(f"{folder}: no 4D image ({folder.name}_4d.nii.gz) in this folder")
    raise DataError(f"{folder}: several 4D images ({', '.join(p.name for p in found)}); expected one")


def default_volume_shape(data_kind: str) -> tuple:
    return DEFAULT_VOLUME_SHAPES.get(data_kind, DEFAULT_VOLUME_SHAPES["cardiac"])


def _phantom_data_kind(folder: Path):
    meta = folder / "phantom.json"
    if meta.is_file():
        try:
            return json.loads(meta.read_text()).get("kind")  # the data kind, as the phantom writers record it
        except ValueError:
            raise DataError(f"{meta}: not valid JSON") from None
    return None


def _times(n, i0, i1, phases=None) -> np.ndarray:
    t = np.full(n, np.nan, dtype=np.float32)
    for i in range(i0, i1 + 1):
        t[i] = (i - i0) / (i1 - i0) if phases is None else (phases[i] - phases[i0]) / (phases[i1] - phases[i0])
    return t


def _finish(folder, pid, data_kind, frames, affine, spacing, i0, i1, times, source, volume_shape) -> Patient4D:
    """Crop/pad to ``volume_shape`` (``"native"``: keep), attach truth fields if present."""
    if volume_shape is None:
        volume_shape = default_volume_shape(data_kind)
    offset = np.zeros(3, dtype=int)
    raw_shape = frames.shape[1:]
    if not (isinstance(volume_shape, str) and volume_shape == "native"):
        if len(tuple(volume_shape)) != 3 or any(int(s) < 1 for s in volume_shape):
            raise DataError(f"volume_shape must be three positive sizes or 'native', got {volume_shape!r}")
        frames, offset = center_crop_or_pad(frames, volume_shape)  # (T, X', Y', Z')
        affine = shift_affine(affine, offset)
    u_t0 = u_t1 = None
    truth_path = folder / f"{pid}_truth.npz"
    if truth_path.is_file():
        truth = read_truth(truth_path)
        want = np.arange(i0, i1 + 1)
        if not np.array_equal(truth["frame_indices"], want):
            raise DataError(
                f"{truth_path}: fields are for frames {truth['frame_indices'].tolist()}, "
                f"but the inputs are frames {i0}..{i1} (0-based)"
            )
        if tuple(truth["u_t0"].shape[2:]) != tuple(raw_shape):
            raise DataError(
                f"{truth_path}: field grid {truth['u_t0'].shape[2:]} differs from the image grid {raw_shape}"
            )
        u_t0, u_t1 = truth["u_t0"].astype(np.float32, copy=False), truth["u_t1"].astype(np.float32, copy=False)
        if not (isinstance(volume_shape, str) and volume_shape == "native"):
            u_t0, _ = center_crop_or_pad(u_t0, volume_shape)  # (K, 3, X', Y', Z')
            u_t1, _ = center_crop_or_pad(u_t1, volume_shape)
    return Patient4D(
        patient_id=pid,
        data_kind=data_kind,
        frames=np.ascontiguousarray(frames, dtype=np.float32),
        affine=affine,
        spacing=tuple(spacing),
        i0=int(i0),
        i1=int(i1),
        times=times,
        source=source,
        u_t0=u_t0,
        u_t1=u_t1,
    )


# --------------------------------------------------------------------------- patients
def load_acdc_patient(folder, volume_shape=None, data_kind=None) -> Patient4D:
    """Load ``folder/<id>_4d.nii.gz`` + ``Info.cfg`` (ACDC layout): inputs ED and ES, min-max
    per frame, centre crop/pad to ``volume_shape`` (default (128, 128, 32); ``"native"`` keeps
    the file's grid). ``data_kind`` defaults to ``phantom.json``'s kind, else ``"cardiac"``."""
    folder = Path(folder)
    image = find_4d_image(folder)
    cfg = folder / "Info.cfg"
    info = read_info_cfg(cfg)
    frames, affine, spacing = read_nifti_4d(image)  # (T, X, Y, Z)
    n = frames.shape[0]
    ed, es = info["ED"], info["ES"]
    for key, value in (("ED", ed), ("ES", es)):
        if not 1 <= value <= n:
            raise DataError(f"{cfg}: {key} = {value} is outside 1..{n} (frames of {image.name}, 1-based)")
    if ed == es:
        raise DataError(f"{cfg}: ED and ES are the same frame ({ed}); two different input frames are needed")
    if es < ed:
        raise DataError(f"{cfg}: ES ({es}) comes before ED ({ed}); frames are interpolated from ED to ES")
    if "NbFrame" in info and info["NbFrame"] != n:
        warnings.warn(
            f"{cfg}: NbFrame is {info['NbFrame']} but {image.name} has {n} frames; using the file",
            UserWarning,
            stacklevel=2,
        )
    data_kind = data_kind or _phantom_data_kind(folder) or "cardiac"
    i0, i1 = ed - 1, es - 1
    frames = normalize_scan(frames, ct=False)
    return _finish(
        folder, folder.name, data_kind, frames, affine, spacing, i0, i1, _times(n, i0, i1), image, volume_shape
    )


def load_lung_patient(folder, volume_shape=None, data_kind=None) -> Patient4D:
    """Load our 4D-Lung layout: ``folder/<id>_4d.nii.gz`` (phases in order, HU) + ``phases.json``.
    HU clipped to [-1400, 200], min-max per frame, centre crop/pad to ``volume_shape``
    (default 128^3). ``t = (phase - p0) / (p1 - p0)`` between the two input phases."""
    folder = Path(folder)
    image = find_4d_image(folder)
    meta_path = folder / "phases.json"
    meta = read_phases_json(meta_path)
    frames, affine, spacing = read_nifti_4d(image)
    phases = meta["phases"]
    if len(phases) != frames.shape[0]:
        raise DataError(f"{meta_path}: lists {len(phases)} phases but {image.name} has {frames.shape[0]} frames")
    i0, i1 = phases.index(meta["input_phases"][0]), phases.index(meta["input_phases"][1])
    if i1 < i0:
        raise DataError(f"{meta_path}: input phase {phases[i1]} comes before {phases[i0]} in 'phases'")
    frames = normalize_scan(frames, ct=str(meta.get("units", "HU")).upper() == "HU")
    data_kind = data_kind or _phantom_data_kind(folder) or "lung"
    return _finish(
        folder,
        folder.name,
        data_kind,
        frames,
        affine,
        spacing,
        i0,
        i1,
        _times(len(phases), i0, i1, phases),
        image,
        volume_shape,
    )


def load_series(path, pair, data_kind: str | None = None, volume_shape="native") -> Patient4D:
    """One 4D NIfTI series as a :class:`Patient4D`: the inputs are the 0-based ``pair = (I, J)``
    (``I < J``), the targets every frame between them with ``t = (k - I) / (J - I)``. CT-like
    intensities (``data_kind="lung"``, or :func:`~interp4d_lite.data.preprocess.guess_data_kind`
    when ``data_kind`` is ``None``) are clipped to the HU window first; every frame is min-max
    normalised (:func:`~interp4d_lite.data.preprocess.normalize_scan`). Keeps the file's grid
    unless ``volume_shape`` is given."""
    path = Path(path)
    data, affine, spacing = read_nifti_4d(path)  # (T, X, Y, Z)
    n = data.shape[0]
    i, j = (int(f) for f in pair)
    if not (0 <= i < j < n):
        raise DataError(f"{path}: frames {i} {j} must be 0 <= I < J < {n} (it has {n} frames, 0-based)")
    data_kind = data_kind or guess_data_kind(data)
    name = path.name.removesuffix(".gz").removesuffix(".nii")
    return _finish(path.parent, name, data_kind, normalize_scan(data, ct=data_kind == "lung"), affine, spacing, i, j, _times(n, i, j), path,
                   volume_shape)  # fmt: skip
