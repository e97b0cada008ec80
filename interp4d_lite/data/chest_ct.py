"""Real chest CTs (static, HU) kept in the repository, and the 4D breathing series built from them.

The folder ``chest_ct/`` at the root of the source repository holds compact copies of public
chest CTs whose licences allow redistribution (each folder: ``<name>_ct.nii.gz``, int16 HU on a
RAS grid of 2.5 mm voxels cropped to the body, ``README.md`` with the source and attribution,
``LICENSE``). They live beside the package, not inside it (the wheel stays small): the
scripts that train and score the lung student read them from a checkout.
:data:`CHEST_CTS` lists them with the role each plays: ``train`` scans make the lung
student's training series, ``heldout`` scans only its scoring series (another chest, other
breathing draws).

:func:`make_chest_series` turns one scan into a 4D series with exact fields
(:func:`interp4d_lite.data.phantoms.breathing.make_breathing_series`); :func:`write_chest_dataset`
writes many, reproducibly by seed, in the lung layout (``<id>_4d.nii.gz``, ``phases.json``,
``<id>_truth.npz``, ``phantom.json``, ``dataset.json``), which :func:`~interp4d_lite.data.load_patient`
reads like any 4D-CT. ``scripts/make_chest_ct.py`` rebuilds the compact copies from the original
files.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = [
    "CHEST_CTS",
    "CHEST_CT_SPACING",
    "SERIES_DEFAULTS",
    "chest_ct_dir",
    "chest_ct_path",
    "load_chest_ct",
    "resample_ct",
    "scan_masks",
    "make_chest_series",
    "write_chest_dataset",
]

#: the shipped scans: role (``train`` / ``heldout``), the in-plane axes whose field-of-view edges cut
#: through the body (``closed_edges``, :func:`~interp4d_lite.data.phantoms.breathing.chest_masks`) and a
#: one-line description (README.md has the rest)
CHEST_CTS = {
    "popi_chest": dict(
        role="train",
        closed_edges=(0,),
        what="end-inhale phase (0 %) of the POPI-model 4D CT: whole thorax, radiotherapy planning scan, lung tumour",
    ),
    "ts_chest": dict(
        role="heldout",
        closed_edges=(0, 1),  # cropped through the chest wall on all four sides
        what="contrast-enhanced chest CT (CT angiography) cropped around the heart and aorta, adult",
    ),
}
#: voxel size of the shipped copies, mm
CHEST_CT_SPACING = (2.5, 2.5, 2.5)
#: how a series is drawn: grid, voxel-size range (mm, per axis), crop jitter (fraction of the lungs'
#: extent), noise (HU), phases
SERIES_DEFAULTS = dict(shape=(48, 48, 48), spacing_range=(3.5, 5.5), jitter=0.2, noise_hu=15.0, n_frames=10)


def chest_ct_dir() -> Path:
    """The ``chest_ct/`` folder of the source repository (DataError when absent)."""
    folder = Path(__file__).resolve().parents[2] / "chest_ct"
    if not folder.is_dir():
        raise DataError(
            f"{folder}: the real chest CTs are kept in the source repository (folder chest_ct/), "
            "not in the installed package; run from a checkout"
        )
    return folder


def chest_ct_path(name: str) -> Path:
    """The NIfTI of the shipped chest CT ``name`` (a key of :data:`CHEST_CTS`)."""
    if name not in CHEST_CTS:
        raise DataError(f"no chest CT called {name!r}; choose one of {', '.join(CHEST_CTS)}")
    path = chest_ct_dir() / name / f"{name}_ct.nii.gz"
    if not path.is_file():
        raise DataError(f"{path}: missing; rebuild it with scripts/make_chest_ct.py")
    return path


def load_chest_ct(name_or_path) -> tuple[np.ndarray, np.ndarray]:
    """``(hu (X, Y, Z) float32, affine (4, 4))`` of a shipped chest CT (name) or a 3D NIfTI (path),
    reoriented to RAS with a diagonal affine. DataError for a file that is not such a scan."""
    import nibabel as nib

    path = chest_ct_path(name_or_path) if str(name_or_path) in CHEST_CTS else Path(name_or_path)
    try:
        img = nib.as_closest_canonical(nib.load(str(path)))
    except Exception as e:  # noqa: BLE001 - nibabel raises many types
        raise DataError(f"{path}: not a readable NIfTI ({e})") from e
    if img.ndim != 3:
        raise DataError(f"{path}: a chest CT must be 3D, got shape {img.shape}")
    aff = np.asarray(img.affine, dtype=np.float64)
    if np.abs(aff[:3, :3] - np.diag(np.diag(aff)[:3])).max() > 1e-3:
        raise DataError(f"{path}: the grid is oblique; resample it to an axis-aligned grid (scripts/make_chest_ct.py)")
    hu = np.asarray(img.dataobj, dtype=np.float32)
    if float(hu.min()) > -500:
        raise DataError(f"{path}: values do not look like HU (minimum {hu.min():.0f}); a chest CT has air near -1000")
    return hu, aff


def resample_ct(hu: np.ndarray, affine: np.ndarray, spacing=CHEST_CT_SPACING, crop_hu: float | None = -500.0):
    """A CT on a RAS grid of ``spacing`` mm (Gaussian anti-aliasing, trilinear), cropped to the
    box of the body (the largest component above ``crop_hu``) plus 5 mm (``crop_hu=None``: no
    crop).
    ``hu``/``affine`` of any axis-aligned orientation. Returns ``(hu float32, affine)``."""
    import nibabel as nib
    from scipy import ndimage

    img = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(hu, np.float32), np.asarray(affine, np.float64)))
    data, aff = np.asarray(img.dataobj, np.float32), np.asarray(img.affine, np.float64)
    src = np.abs(np.diag(aff)[:3])
    new = np.asarray(spacing, np.float64)
    ratio = new / src
    data = ndimage.gaussian_filter(data, 0.5 * np.sqrt(np.clip(ratio**2 - 1.0, 0.0, None)))
    shape = np.maximum(np.floor((np.asarray(data.shape) - 1) / ratio).astype(int) + 1, 1)
    coords = np.meshgrid(*[np.arange(n) * r for n, r in zip(shape, ratio)], indexing="ij")
    out = ndimage.map_coordinates(data, coords, order=1, mode="nearest").astype(np.float32)
    out_aff = np.eye(4)
    out_aff[:3, :3] = np.diag(new)
    out_aff[:3, 3] = aff[:3, 3]
    if crop_hu is not None:
        from .phantoms.breathing import _fill_slices, _largest

        body = _fill_slices(_largest(ndimage.binary_opening(out > crop_hu, iterations=1)))
        idx = np.nonzero(body)
        m = int(np.ceil(5.0 / new.min()))
        lo = [max(int(i.min()) - m, 0) for i in idx]
        hi = [min(int(i.max()) + m + 1, n) for i, n in zip(idx, out.shape)]
        out = out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        out_aff[:3, 3] += np.asarray(lo) * new
    return out, out_aff


def scan_masks(name_or_path, scan):
    """:func:`~interp4d_lite.data.phantoms.breathing.chest_masks` of a loaded scan ``(hu, affine)``
    with the settings :data:`CHEST_CTS` gives its name (defaults for a path)."""
    from .phantoms.breathing import chest_masks

    edges = CHEST_CTS.get(str(name_or_path), {}).get("closed_edges", (0,))
    return chest_masks(scan[0], np.diag(scan[1])[:3], closed_edges=edges)


def _draw_grid(rng: np.random.Generator, motion, shape, spacing_range, jitter):
    """Voxel size and centre of one series: the lung base in view (the region that moves most)."""
    extent = np.asarray(motion.masks.lungs.shape) * motion.spacing  # mm
    sp = tuple(min(float(rng.uniform(*spacing_range)), e / n) for e, n in zip(extent, shape))
    m = motion.masks
    idx = np.array(np.nonzero(m.lungs), dtype=np.float64)
    lo, hi = np.percentile(idx, 2, axis=1), np.percentile(idx, 98, axis=1)
    fov = np.asarray(shape) * np.asarray(sp) / motion.spacing  # in scan voxels
    c = (lo + hi) / 2
    # Z: low enough that the diaphragm is in view, the field of view permitting
    c[2] = min(c[2], m.z_base + 0.4 * fov[2])
    c = c + rng.uniform(-jitter, jitter, 3) * (hi - lo)
    n = np.asarray(m.lungs.shape, dtype=np.float64)
    c = np.clip(c, np.minimum(fov / 2, n / 2), np.maximum(n - fov / 2, n / 2))  # the grid inside the scan
    return sp, motion.origin + c * motion.spacing


def make_chest_series(
    name_or_path,
    seed: int = 0,
    patient_id: str = "chest001",
    shape=SERIES_DEFAULTS["shape"],
    spacing_range=SERIES_DEFAULTS["spacing_range"],
    jitter: float = SERIES_DEFAULTS["jitter"],
    noise_hu: float = SERIES_DEFAULTS["noise_hu"],
    n_frames: int = SERIES_DEFAULTS["n_frames"],
    breathing: dict | None = None,
    scan=None,
    masks=None,
):
    """One 4D breathing series of a chest CT (a name of :data:`CHEST_CTS` or a 3D NIfTI path):
    breathing parameters drawn by ``seed`` (:meth:`BreathingParams.sample`, ``breathing`` pins
    or re-ranges them: ``{"si_mm": (24, 32)}`` a range, ``{"si_mm": 20}`` a value), a grid of
    ``shape`` voxels with a voxel size drawn from ``spacing_range`` and its centre near the lung
    base. ``scan``: an already loaded ``(hu, affine)``; ``masks``: its
    :func:`~interp4d_lite.data.phantoms.breathing.chest_masks` (computed when ``None``). Returns a lung
    :class:`~interp4d_lite.data.phantoms.Phantom4D`."""
    from .phantoms.breathing import BreathingMotion, BreathingParams, make_breathing_series

    hu, affine = scan if scan is not None else load_chest_ct(name_or_path)
    rng = np.random.default_rng(seed)
    ranges = {k: v for k, v in (breathing or {}).items() if isinstance(v, (tuple, list))}
    fixed = {k: v for k, v in (breathing or {}).items() if not isinstance(v, (tuple, list))}
    params = BreathingParams.sample(rng, ranges, **fixed)
    motion = BreathingMotion(
        hu, affine, params, masks=masks if masks is not None else scan_masks(name_or_path, (hu, affine))
    )
    sp, centre = _draw_grid(rng, motion, shape, spacing_range, jitter)
    source = f"chest CT {name_or_path}" if str(name_or_path) in CHEST_CTS else f"chest CT {Path(name_or_path).name}"
    return make_breathing_series(
        hu,
        affine,
        shape=shape,
        spacing=sp,
        centre_mm=centre,
        params=params,
        n_frames=n_frames,
        noise_hu=noise_hu,
        seed=int(rng.integers(2**31)),
        patient_id=patient_id,
        source=source,
        motion=motion,
    )


def write_chest_dataset(root, scans, n_series: int = 4, seed: int = 0, verbose: bool = False, **options) -> dict:
    """``n_series`` breathing series per scan of ``scans`` (names of :data:`CHEST_CTS` or NIfTI
    paths), written in the lung layout with their true fields, plus ``root/dataset.json``.
    Series ``k`` of scan ``s`` uses the seed ``patient_seed(seed, 1000 * s + k)``; ids are
    ``<scan>_<k>`` (3 digits). ``options``: :func:`make_chest_series`'s. The same arguments give
    the same files. Returns the dataset.json content (plus ``seconds``)."""
    from .phantoms import patient_seed, write_lung_layout

    if isinstance(scans, (str, Path)):
        scans = [scans]
    if int(n_series) < 1:
        raise ValueError(f"n_series must be >= 1, got {n_series}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    ids, frames = [], []
    for s, scan in enumerate(scans):
        name = str(scan) if str(scan) in CHEST_CTS else Path(scan).name.split(".")[0]
        loaded = load_chest_ct(scan)
        masks = scan_masks(scan, loaded)
        for k in range(int(n_series)):
            pid = f"{name}_{k + 1:03d}"
            ph = make_chest_series(
                scan, seed=patient_seed(seed, 1000 * s + k), patient_id=pid, scan=loaded, masks=masks, **options
            )
            write_lung_layout(root, ph)
            ids.append(pid)
            frames.append({"patient": pid, "i0": ph.i0, "i1": ph.i1, "n_frames": ph.n_frames, "source": name})
            if verbose:
                b = ph.params["breathing"]
                print(f"  {pid}: SI {b['si_mm']:.1f} mm, voxels {ph.spacing}, min Jacobian "
                      f"{ph.params['min_jacobian']:.2f}", flush=True)  # fmt: skip
    manifest = {
        "kind": "lung",
        "layout": "lung4d",
        "generator": "breathing",
        "scans": [str(s) for s in scans],
        "patients": ids,
        "n_series": int(n_series),
        "seed": int(seed),
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()},
        "frames": frames,
    }
    (root / "dataset.json").write_text(json.dumps(manifest, indent=1, default=str))
    return {**manifest, "seconds": time.perf_counter() - start}
