"""Phantoms on disk: the ACDC layout (cardiac, linear), our 4D-Lung layout (lung), the true
fields (``<id>_truth.npz``, ``phantom.json``) and whole datasets (``dataset.json``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..io import nifti_4d, write_nifti
from .common import PHANTOMS, Phantom4D, patient_seed
from .make import make_phantom


def _save_4d(path: Path, frames: np.ndarray, affine: np.ndarray, scale: float = 1.0):
    """``frames`` ``(T, X, Y, Z)`` x ``scale`` as an int16 4D NIfTI (the one writer, atomic)."""
    write_nifti(nifti_4d(frames * scale, affine, dtype=np.int16, xyzt_units=("mm", "sec")), path, compresslevel=1)


def _save_truth(folder: Path, ph: Phantom4D):
    idx = np.arange(ph.i0, ph.i1 + 1)
    np.savez(
        folder / f"{ph.patient_id}_truth.npz",
        u_t0=ph.u_t0.astype(np.float32),
        u_t1=ph.u_t1.astype(np.float32),
        frame_indices=idx,
        times=ph.times[idx],
    )
    (folder / "phantom.json").write_text(json.dumps(ph.params, indent=1))


def write_acdc_layout(root, phantom: Phantom4D, truth: bool = True) -> Path:
    """``root/<id>/<id>_4d.nii.gz`` (int16, intensities 0..1000) and ``Info.cfg`` with 1-based
    ED/ES, as ACDC; plus ``<id>_truth.npz`` and ``phantom.json``. Returns the patient folder."""
    folder = Path(root) / phantom.patient_id
    folder.mkdir(parents=True, exist_ok=True)
    _save_4d(folder / f"{phantom.patient_id}_4d.nii.gz", phantom.unit_frames(), phantom.affine, scale=1000.0)
    (folder / "Info.cfg").write_text(
        f"ED: {phantom.i0 + 1}\nES: {phantom.i1 + 1}\nGroup: PHANTOM\nHeight: 170.0\n"
        f"NbFrame: {phantom.n_frames}\nWeight: 70.0\n"
    )
    if truth:
        _save_truth(folder, phantom)
    return folder


def write_lung_layout(root, phantom: Phantom4D, truth: bool = True) -> Path:
    """``root/<id>/<id>_4d.nii.gz`` (int16 HU, phases in order) and ``phases.json``; plus truth."""
    if phantom.phantom != "lung":
        raise ValueError(f"write_lung_layout needs a lung phantom, got a {phantom.phantom} phantom")
    folder = Path(root) / phantom.patient_id
    folder.mkdir(parents=True, exist_ok=True)
    _save_4d(folder / f"{phantom.patient_id}_4d.nii.gz", phantom.frames, phantom.affine)
    phases = phantom.params["phases"]
    (folder / "phases.json").write_text(
        json.dumps(
            {
                "phases": phases,
                "input_phases": [phases[phantom.i0], phases[phantom.i1]],
                "units": "HU",
                "source": phantom.params.get("source", "interp4d_lite lung phantom"),
            },
            indent=1,
        )
    )
    if truth:
        _save_truth(folder, phantom)
    return folder


def write_phantom_dataset(
    root,
    phantom="cardiac",
    n_patients=3,
    shape=None,
    spacing=None,
    n_frames=None,
    noise=None,
    amplitude=1.0,
    seed=0,
    truth=True,
    verbose=False,
    **options,
) -> dict:
    """Generate ``n_patients`` phantoms (patient ``k`` uses ``patient_seed(seed, k)``) and write
    them in the layout of their data kind (cardiac/linear: ACDC, lung: our 4D-Lung layout), plus
    ``root/dataset.json`` listing the patients. Existing files of the same names are overwritten;
    nothing else in ``root`` is touched. Returns the dataset.json content (plus ``seconds``)."""
    if phantom not in PHANTOMS:
        raise ValueError(f"unknown phantom {phantom!r}; choose one of {', '.join(PHANTOMS)}")
    if int(n_patients) < 1:
        raise ValueError(f"n_patients must be >= 1, got {n_patients}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    ids, summary = [], []
    for k in range(int(n_patients)):
        pid = f"lung{k + 1:03d}" if phantom == "lung" else f"patient{k + 1:03d}"
        ph = make_phantom(
            phantom,
            shape=shape,
            spacing=spacing,
            n_frames=n_frames,
            noise=noise,
            amplitude=amplitude,
            seed=patient_seed(seed, k),
            patient_id=pid,
            **options,
        )
        (write_lung_layout if phantom == "lung" else write_acdc_layout)(root, ph, truth=truth)
        ids.append(pid)
        summary.append({"patient": pid, "i0": ph.i0, "i1": ph.i1, "n_frames": ph.n_frames})
        if verbose:
            print(f"  {pid}: {ph.n_frames} frames, i0={ph.i0} i1={ph.i1} (0-based)", flush=True)
    manifest = {
        "kind": phantom,  # the file key of dataset.json (as the download tools write it)
        "layout": "lung4d" if phantom == "lung" else "acdc",
        "patients": ids,
        "shape": list(ph.shape),
        "spacing": list(ph.spacing),
        "n_frames": ph.n_frames,
        "seed": int(seed),
        "noise": float(ph.params["noise"]),
        "amplitude": float(amplitude),
        **options,
        "frames": summary,
    }
    (root / "dataset.json").write_text(json.dumps(manifest, indent=1))
    return {**manifest, "seconds": time.perf_counter() - start}
