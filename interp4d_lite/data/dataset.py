"""Patients on disk -> preprocessed :class:`Patient4D` -> (I0, I1, It, t) triplets.

* :func:`discover_patients` finds patient folders (ACDC layout or our 4D-Lung layout);
* :func:`load_patient` detects the layout and loads one patient;
* :func:`split_patients` / :func:`acdc_uvi_split` split at the patient level;
* :class:`TripletDataset` serves every target frame as a dict that the default
  ``torch.utils.data.DataLoader`` collation batches;
* :class:`CineTriplets` serves triplets of cines whose every phase is known (real cines):
  any two phases as inputs, over short and long spans, wrapping around the beat;
* :class:`MixedTriplets` mixes datasets (real cines and phantoms) at given shares of the samples.
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
    "CineTriplets",
    "MixedTriplets",
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


class CineTriplets(Dataset):
    """Triplets of cines whose every phase is known (a real cine is one beat, every phase a real
    frame): for each window of frames ``a`` and ``b = a + gap`` (:func:`~interp4d_lite.data.windows.cine_windows`;
    ``cyclic``: a window may wrap from the last phase to the first), every frame ``k`` strictly
    between is a target with ``t = (k - a) / gap``, its fractional position. Short and long
    spans, ED -> ES among them, and the rest of the beat (ES -> ED and across ED).

    Items as :class:`TripletDataset`'s: ``I0`` (frame a), ``I1`` (frame b), ``It`` (frame k)
    ``(1, X, Y, Z)`` float32, ``t`` 0-d float32, ``patient``, ``frame`` (k), ``spacing``; no true
    fields (training targets come from registration to the real frame ``It``).
    ``self.triplets`` lists ``(patient number, a, k, b, t)``.

    Args:
        patients: :class:`Patient4D` of one volume shape (frames ``(T, X, Y, Z)``, all used).
        gaps: the spans in frames (default ``2 .. T // 2``); the patient's own ``i1 - i0``
            (ED -> ES) is always added.
        cyclic: windows may wrap around the cycle.
        per_patient: at most this many triplets of each patient (0: all). The ED -> ES window's
            come first, then the others in turn over the gaps (every span kept), in an order
            drawn by ``seed``.
        seed: the draw of ``per_patient``.
        transform: applied to each item dict, if given.
    """

    def __init__(self, patients, gaps=None, cyclic: bool = True, per_patient: int = 0, seed: int = 0, transform=None):
        from .windows import cine_windows

        self.patients = list(patients)
        if not self.patients:
            raise DataError("CineTriplets: no patients given")
        shapes = {p.shape for p in self.patients}
        if len(shapes) > 1:
            raise DataError(
                f"CineTriplets: patients have different volume shapes {sorted(shapes)}; load them with one volume_shape"
            )
        self.transform = transform
        self.triplets = []  # (patient number, a, k, b, t)
        rng = np.random.default_rng(seed)
        for n, p in enumerate(self.patients):
            frames = len(p.frames)
            ed_es = p.i1 - p.i0
            want = set(range(2, frames // 2 + 1) if gaps is None else gaps) | ({ed_es} if ed_es >= 2 else set())
            windows = cine_windows(frames, [g for g in want if g < frames], cyclic=cyclic)
            first = [w for w in windows if w.a == p.i0 and w.gap == ed_es]
            by_gap: dict[int, list] = {}
            for w in windows:
                if w not in first:
                    by_gap.setdefault(w.gap, []).extend(w.triplets())
            for trips in by_gap.values():
                rng.shuffle(trips)
            rest = [t for round_ in _interleave(list(by_gap.values())) for t in round_]
            chosen = [t for w in first for t in w.triplets()] + rest
            if per_patient > 0:
                chosen = chosen[:per_patient]
            self.triplets += [(n, a, k, b, float(t)) for a, k, b, t in chosen]

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, i: int) -> dict:
        n, a, k, b, t = self.triplets[i]
        p = self.patients[n]
        item = {
            "I0": torch.from_numpy(p.frames[a][None].copy()),
            "I1": torch.from_numpy(p.frames[b][None].copy()),
            "It": torch.from_numpy(p.frames[k][None].copy()),
            "t": torch.tensor(t, dtype=torch.float32),
            "patient": p.patient_id,
            "frame": int(k),
            "spacing": torch.tensor(p.spacing, dtype=torch.float32),
        }
        return self.transform(item) if self.transform is not None else item


def _interleave(lists):
    """``[[l0[0], l1[0], ...], [l0[1], l1[1], ...], ...]``: one element of each list per round."""
    for r in range(max((len(x) for x in lists), default=0)):
        yield [x[r] for x in lists if r < len(x)]


class MixedTriplets(Dataset):
    """Several triplet datasets as one, each giving a set share of the samples (e.g. real cines
    and phantoms, half and half): ``round(share * len(self))`` positions go to each part, cycling
    through its items, so a uniformly shuffled epoch draws from the parts at those shares. Items
    keep only the keys every part has (a phantom's true fields are dropped beside a real cine,
    which has none); the parts must share one volume shape.

    ``with_parts(fn)`` is the same mixture of ``fn(part)`` for each part: the training loop
    caches targets once per item of each part that way, not once per repeat."""

    def __init__(self, parts, shares):
        self.parts, self.shares = list(parts), [float(s) for s in shares]
        if len(self.parts) != len(self.shares) or not self.parts:
            raise ValueError(f"MixedTriplets: {len(self.parts)} parts and {len(self.shares)} shares")
        if any(s < 0 for s in self.shares) or sum(self.shares) <= 0:
            raise ValueError(f"MixedTriplets: shares must be >= 0 with a positive sum, got {self.shares}")
        total = sum(self.shares)
        used = [(i, s / total) for i, s in enumerate(self.shares) if s > 0]
        if any(len(self.parts[i]) == 0 for i, _ in used):
            raise DataError("MixedTriplets: a part with a share > 0 has no items")
        length = max(int(np.ceil(len(self.parts[i]) / s - 1e-9)) for i, s in used)
        self.index = []  # (part, item)
        for i, s in used:
            self.index += [(i, j % len(self.parts[i])) for j in range(int(round(s * length)))]
        firsts = [self.parts[i][0] for i, _ in used]
        shapes = {tuple(f["I0"].shape) for f in firsts}
        if len(shapes) > 1:
            raise DataError(f"MixedTriplets: the parts have different volume shapes {sorted(shapes)}")
        self.keys = [k for k in firsts[0] if all(k in f for f in firsts)]
        self.has_targets = all(getattr(self.parts[i], "has_targets", False) for i, _ in used)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict:
        i, j = self.index[k]
        item = self.parts[i][j]
        return {key: item[key] for key in self.keys}

    def part_of(self, k: int) -> int:
        """The part item ``k`` comes from."""
        return self.index[k][0]

    def with_parts(self, fn) -> MixedTriplets:
        """The same mixture of ``fn(part)`` for every part with a share (the others as they are)."""
        return MixedTriplets([fn(p) if s > 0 else p for p, s in zip(self.parts, self.shares)], self.shares)
