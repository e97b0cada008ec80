"""Patients on disk -> preprocessed :class:`Patient4D` -> (I0, I1, It, t) triplets.

* :func:`discover_patients` finds patient folders (ACDC layout or our 4D-Lung layout);
* :func:`load_patient` detects the layout and loads one patient;
* :func:`split_patients` / :func:`acdc_uvi_split` split at the patient level;
* :class:`TripletDataset` serves every target frame as a dict that the default
  ``torch.utils.data.DataLoader`` collation batches.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .io import Patient4D, find_4d_image, load_acdc_patient, load_lung_patient

__all__ = [
    "Patient4D",
    "discover_patients",
    "load_patient",
    "load_patients",
    "split_patients",
    "acdc_uvi_split",
    "TripletDataset",
    "detect_layout",
]


def detect_layout(folder) -> str:
    """``"lung4d"`` when the folder has ``phases.json``, else ``"acdc"``."""
    return "lung4d" if (Path(folder) / "phases.json").is_file() else "acdc"


def _is_patient_dir(folder: Path) -> bool:
    return folder.is_dir() and (any(folder.glob("*_4d.nii.gz")) or any(folder.glob("*_4d.nii")))


def discover_patients(root) -> list:
    """Sorted patient folders under ``root``.

    If ``root/dataset.json`` (written by the phantom command) lists patients, exactly those
    are returned (each must exist). Otherwise every folder holding a ``*_4d.nii[.gz]``
    directly under ``root`` or one level deeper (ACDC ships ``training/`` and ``testing/``)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found")
    manifest = root / "dataset.json"
    if manifest.is_file():
        try:
            ids = json.loads(manifest.read_text()).get("patients")
        except ValueError:
            raise DataError(f"{manifest}: not valid JSON") from None
        if ids:
            missing = [i for i in ids if not (root / i).is_dir()]
            if missing:
                raise DataError(f"{manifest}: lists patients missing on disk: {', '.join(missing)}")
            return [root / i for i in sorted(ids)]
    found = [p for p in sorted(root.iterdir()) if _is_patient_dir(p)]
    if not found:
        found = [
            p for sub in sorted(root.iterdir()) if sub.is_dir() for p in sorted(sub.iterdir()) if _is_patient_dir(p)
        ]
    if not found:
        raise DataError(
            f"{root}: no patients found (expected folders like patient001/ holding "
            "patient001_4d.nii.gz, or 4D-Lung folders with <id>_4d.nii.gz and phases.json)"
        )
    return found


def load_patient(path, data_kind=None, volume_shape=None) -> Patient4D:
    """Load one patient folder (or its ``*_4d.nii.gz``), detecting the layout.

    ``data_kind``: ``"cardiac"``/``"linear"`` (ACDC layout) or ``"lung"`` (4D-Lung layout); by
    default from ``phantom.json``, else from the layout. ``volume_shape``: ``(X, Y, Z)`` to
    centre-crop/pad to; ``None`` = the data kind's default ((128, 128, 32) cardiac/linear,
    128^3 lung); ``"native"`` = keep the file's grid."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        raise DataError(f"{path}: patient folder not found")
    find_4d_image(path)  # clear error for a folder without image
    layout = "lung4d" if data_kind == "lung" else detect_layout(path)
    loader = load_lung_patient if layout == "lung4d" else load_acdc_patient
    return loader(path, volume_shape=volume_shape, data_kind=data_kind)


def load_patients(root_or_paths, data_kind=None, volume_shape=None) -> list:
    """Load every patient of a data folder (or a list of patient folders)."""
    paths = discover_patients(root_or_paths) if isinstance(root_or_paths, (str, Path)) else list(root_or_paths)
    return [load_patient(p, data_kind=data_kind, volume_shape=volume_shape) for p in paths]


def split_patients(ids, fractions=(0.7, 0.15, 0.15), seed=0) -> dict:
    """Patient-level split ``{"train", "val", "test"}``: deterministic by ``seed``, disjoint,
    every id in exactly one split (ids are sorted first, so input order does not matter).

    Rule: shuffle; val and test get ``round(n * fraction)`` each, but at least one patient
    each when their fraction is > 0 and there are enough patients to leave one for training
    (3 patients -> 1/1/1; 2 -> 1 train, 0 val, 1 test; 1 -> train only); train gets the rest."""
    ids = [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise DataError(f"split_patients: duplicate patient ids {dup}")
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise DataError(f"split_patients: fractions must be three non-negative numbers, got {fractions}")
    f_train, f_val, f_test = (f / sum(fractions) for f in fractions)
    order = sorted(ids)
    np.random.default_rng(seed).shuffle(order)
    n = len(order)
    n_test = int(round(n * f_test))
    n_val = int(round(n * f_val))
    if f_test > 0 and n_test == 0 and n >= 2:
        n_test = 1
    if f_val > 0 and n_val == 0 and n - n_test >= 2:
        n_val = 1
    while n_val + n_test > n - (1 if f_train > 0 else 0) and n_val + n_test > 0:  # keep one for training
        if n_val >= n_test and n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    test = sorted(order[:n_test])
    val = sorted(order[n_test : n_test + n_val])
    train = sorted(order[n_test + n_val :])
    return {"train": train, "val": val, "test": test}


def acdc_uvi_split(ids, train_last=90, n_val=0) -> dict:
    """UVI-Net's ACDC split by patient number: ``patient001``..``patient090`` train, the rest
    (091..100, and 101..150 if present) test. ``n_val`` > 0 moves the last ``n_val`` training
    patients to validation."""
    split = {"train": [], "val": [], "test": []}
    for pid in sorted(str(i) for i in ids):
        m = re.fullmatch(r"patient(\d+)", Path(pid).name)
        if not m:
            raise DataError(f"acdc_uvi_split: {pid!r} is not an ACDC id like patient001")
        split["train" if int(m.group(1)) <= train_last else "test"].append(pid)
    if n_val > 0:
        split["train"], split["val"] = split["train"][:-n_val], split["train"][-n_val:]
    return split


class TripletDataset(Dataset):
    """Every target frame of every patient as one item (frames kept in memory).

    Item (dict): ``I0``, ``I1``, ``It`` ``(1, X, Y, Z)`` float32; ``t`` float32 0-d tensor;
    ``patient`` str; ``frame`` int (0-based); ``spacing`` ``(3,)`` float32; for patients
    with truth also ``u_t0``, ``u_t1`` ``(3, X, Y, Z)`` voxels. ``include_endpoints=True``
    adds the two input frames themselves (t = 0 and t = 1). ``transform``, if given, is
    applied to each item dict."""

    def __init__(self, patients, include_endpoints: bool = False, transform=None):
        self.patients = list(patients)
        if not self.patients:
            raise DataError("TripletDataset: no patients given")
        self.transform = transform
        self.index = []  # (patient number, frame index)
        for n, p in enumerate(self.patients):
            frames = range(p.i0, p.i1 + 1) if include_endpoints else p.target_indices
            self.index.extend((n, i) for i in frames)
        shapes = {p.shape for p in self.patients}
        if len(shapes) > 1:
            raise DataError(
                f"TripletDataset: patients have different volume shapes {sorted(shapes)}; "
                "load them with one volume_shape"
            )

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict:
        n, i = self.index[k]
        p = self.patients[n]
        item = {
            "I0": torch.from_numpy(p.frames[p.i0][None].copy()),  # (1, X, Y, Z); copies, so a
            "I1": torch.from_numpy(p.frames[p.i1][None].copy()),  # transform editing in place
            "It": torch.from_numpy(p.frames[i][None].copy()),  # cannot alter the patient
            "t": torch.tensor(float(p.times[i]), dtype=torch.float32),
            "patient": p.patient_id,
            "frame": int(i),
            "spacing": torch.tensor(p.spacing, dtype=torch.float32),
        }
        if p.u_t0 is not None:
            item["u_t0"] = torch.from_numpy(p.u_t0[i - p.i0].copy())  # (3, X, Y, Z) voxels
            item["u_t1"] = torch.from_numpy(p.u_t1[i - p.i0].copy())
        return self.transform(item) if self.transform is not None else item
