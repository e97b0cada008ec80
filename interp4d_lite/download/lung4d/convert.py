"""4D-Lung DICOM -> our lung layout: couch removal, resampling of every phase onto one
grid, the NIfTI and ``phases.json`` of a patient (written atomically), and the check of a
converted patient folder against the layout."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...data.dicom import read_dicom_series
from ..errors import DownloadError
from .plan import INPUT_PHASES, PHASES

__all__ = [
    "AIR_HU",
    "BODY_THRESHOLD_HU",
    "axial_axis",
    "remove_couch",
    "grid_from",
    "resample_to_grid",
    "convert_session",
    "write_patient",
    "check_patient",
    "verify",
]

AIR_HU = -1024
BODY_THRESHOLD_HU = -500


def axial_axis(affine: np.ndarray) -> int:
    """The voxel axis closest to the superior-inferior world axis."""
    cols = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    return int(np.argmax(np.abs(cols[2])))


def remove_couch(
    vol: np.ndarray, affine: np.ndarray, threshold: float = BODY_THRESHOLD_HU, erode: int = 2, air: float = AIR_HU
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the patient's body, set everything else (couch, blanket, air) to ``air``.

    Returns (volume, body mask). If nothing exceeds the threshold the volume is returned unchanged."""
    from scipy import ndimage as ndi

    mask = vol > threshold
    if not mask.any():
        return vol, np.ones_like(mask)
    ax = axial_axis(affine)

    def fill_slices(m):
        m = np.moveaxis(m, ax, 0).copy()
        for k in range(m.shape[0]):
            m[k] = ndi.binary_fill_holes(m[k])
        return np.moveaxis(m, 0, ax)

    # Fill the lungs/airways first (per axial slice) so that the body is one solid blob
    # which the erosion cannot split; thin couch parts and contacts do not survive it.
    solid = fill_slices(mask)
    st = ndi.generate_binary_structure(3, 1)
    core = ndi.binary_erosion(solid, st, iterations=erode) if erode else solid
    if not core.any():
        core = solid
    lab, n = ndi.label(core, st)
    if n == 0:
        return vol, np.ones_like(mask)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    body = lab == int(np.argmax(sizes))
    if erode:
        body = ndi.binary_dilation(body, st, iterations=erode) & solid
    body = fill_slices(body)
    return np.where(body, vol, np.float32(air)).astype(np.float32), body


def grid_from(affine: np.ndarray, shape: Sequence[int], out_shape: Sequence[int]) -> np.ndarray:
    """The affine of an ``out_shape`` grid covering the same field of view as (affine, shape)."""
    s = np.asarray(shape, float) / np.asarray(out_shape, float)
    m = np.eye(4)
    m[:3, :3] = np.diag(s)
    m[:3, 3] = -0.5 + 0.5 * s
    return affine @ m


def resample_to_grid(
    vol: np.ndarray,
    affine: np.ndarray,
    ref_affine: np.ndarray,
    ref_shape: Sequence[int],
    cval: float = AIR_HU,
    order: int = 1,
) -> np.ndarray:
    """Resample ``vol`` (with ``affine``) onto the grid (ref_affine, ref_shape), world-coordinate
    exact; a Gaussian (sigma = (f - 1) / 2 per axis shrunk by factor f) avoids aliasing."""
    from scipy import ndimage as ndi

    m = np.linalg.inv(affine) @ ref_affine  # ref voxel -> input voxel
    f = np.abs(m[:3, :3]).max(axis=1)
    sigma = np.maximum(0.0, (f - 1.0) / 2.0)
    src = ndi.gaussian_filter(vol.astype(np.float32), sigma, mode="nearest") if np.any(sigma > 0.1) else vol
    return ndi.affine_transform(
        src.astype(np.float32),
        m[:3, :3],
        offset=m[:3, 3],
        output_shape=tuple(int(x) for x in ref_shape),
        order=order,
        mode="constant",
        cval=cval,
    ).astype(np.float32)


def convert_session(
    phase_dirs: dict[int, Path],
    out_shape=(128, 128, 128),
    counts: dict | None = None,
    couch: bool = True,
    label: str = "",
) -> tuple[np.ndarray, np.ndarray, dict]:
    """DICOM folders of the ten phases -> (X, Y, Z, 10) int16 HU, affine, info."""
    ref_affine = None
    frames, info = [], {"phases": {}}
    for phase in PHASES:
        d = phase_dirs[phase]
        vol = read_dicom_series(d, expected_count=(counts or {}).get(phase), name=f"{label} phase {phase}% ({d.name})")
        arr = vol.array
        if couch:
            arr, body = remove_couch(arr, vol.affine)
            info["phases"][str(phase)] = {"body_fraction": round(float(body.mean()), 4)}
        if ref_affine is None:
            ref_affine = grid_from(vol.affine, arr.shape, out_shape)
            info["source_shape"] = list(arr.shape)
            info["source_spacing_mm"] = [round(float(x), 4) for x in vol.spacing]
            ref_center = vol.affine @ np.append((np.asarray(arr.shape) - 1) / 2.0, 1)
            ref_extent = np.asarray(arr.shape) * np.asarray(vol.spacing)
        else:
            c = vol.affine @ np.append((np.asarray(arr.shape) - 1) / 2.0, 1)
            if np.linalg.norm((c - ref_center)[:3]) > 0.25 * float(np.min(ref_extent)):
                raise DownloadError(
                    f"{label} phase {phase}%: its volume is {np.linalg.norm((c - ref_center)[:3]):.0f} mm "
                    "away from the 0% phase; not one 4D-CT"
                )
        frames.append(resample_to_grid(arr, vol.affine, ref_affine, out_shape))
    data = np.stack(frames, axis=-1)
    data = np.clip(np.rint(data), -32768, 32767).astype(np.int16)
    return data, ref_affine, info


def write_patient(dest: Path, pid: str, data: np.ndarray, affine: np.ndarray, meta: dict) -> Path:
    """Write DEST/<pid>/ atomically: build DEST/.<pid>.part/ then rename."""
    import nibabel as nib

    from ...data.io import write_nifti

    final = Path(dest) / pid
    tmp = Path(dest) / f".{pid}.part"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        img = nib.Nifti1Image(data, affine)
        img.header.set_data_dtype(np.int16)
        img.header.set_xyzt_units("mm", "sec")
        img.header["descrip"] = b"4D-Lung phases 0-90%, HU"
        write_nifti(img, tmp / f"{pid}_4d.nii.gz", compresslevel=1)
        (tmp / "phases.json").write_text(json.dumps(meta, indent=2) + "\n")
        if final.exists():
            raise DownloadError(f"{final}: exists but is not a complete conversion; move it away and re-run")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def check_patient(pdir: Path) -> list[str]:
    """Problems of one converted patient folder against the lung layout (empty list: fine)."""
    import nibabel as nib

    pid = pdir.name
    f, pj = pdir / f"{pid}_4d.nii.gz", pdir / "phases.json"
    probs = [f"{p}: missing" for p in (f, pj) if not p.is_file()]
    if probs:
        return probs
    try:
        meta = json.loads(pj.read_text())
        shape = nib.load(str(f)).shape
    except Exception as exc:
        return [f"{pdir}: unreadable ({exc})"]
    if meta.get("phases") != PHASES or meta.get("units") != "HU" or meta.get("input_phases") != INPUT_PHASES:
        probs.append(f"{pj}: expected phases {PHASES}, input_phases {INPUT_PHASES}, units HU")
    if len(shape) != 4 or shape[3] != len(PHASES):
        probs.append(f"{f}: shape {shape}, expected (X, Y, Z, {len(PHASES)})")
    return probs


def verify(dest: Path) -> tuple[list[str], list[str]]:
    """Check every patient folder of ``dest``. Returns (good patient ids, problems)."""
    dest = Path(dest)
    if not dest.is_dir():
        return [], [f"{dest}: no such folder"]
    good, probs = [], []
    for p in sorted(dest.iterdir()):
        if not p.is_dir() or p.name.startswith("."):
            continue
        if (p / "phases.json").exists() or (p / f"{p.name}_4d.nii.gz").exists():
            pp = check_patient(p)
            (probs.extend(pp) if pp else good.append(p.name))
    if not good and not probs:
        probs.append(f"{dest}: no patient folders")
    return good, probs
