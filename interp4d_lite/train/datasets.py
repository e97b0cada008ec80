"""What the training loops train on: the patients of a run (a list, or the training part of
a data root's split), (I0, I1) pairs for the registration baseline, and fields cached once per
sample before the first step (:class:`CachedTargets`, filled by :func:`compute_targets`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from .sampling import collate, to_device

__all__ = ["resolve_patients", "real_and_phantom_triplets", "PairDataset", "CachedTargets", "compute_targets"]


def resolve_patients(
    patients: Sequence | None = None,
    data_root: str | os.PathLike | None = None,
    data_kind: str | None = None,
    volume_shape: Sequence[int] | None = None,
    split_fractions: Sequence[float] = (0.7, 0.15, 0.15),
    split_seed: int = 0,
    part: str = "train",
) -> tuple[list, dict | None]:
    """``(patients of `part`, split)``: the given list as is, or the ``part`` of the
    deterministic patient-level split of ``data_root``."""
    if patients is not None:
        patients = list(patients)
        return patients, {"train": [p.patient_id for p in patients]}
    if data_root is None:
        raise ValueError("give either patients=[Patient4D, ...] or data_root=DIR")
    from ..data import discover_patients, load_patient, split_patients

    dirs = discover_patients(data_root)
    by_id = {Path(d).name: d for d in dirs}
    split = split_patients(sorted(by_id), fractions=tuple(split_fractions), seed=split_seed)
    split = {k: [str(i) for i in v] for k, v in split.items()}
    vs = tuple(volume_shape) if volume_shape is not None else None
    chosen = [load_patient(by_id[i], data_kind=data_kind, volume_shape=vs) for i in split[part]]
    return chosen, split


def real_and_phantom_triplets(
    real: Sequence = (),
    phantoms: Sequence = (),
    real_share: float = 0.5,
    per_cine: int = 96,
    gaps: Sequence[int] | None = None,
    seed: int = 0,
):
    """One training dataset of real cines and phantom patients (one volume shape): the cines'
    triplets over every span and around the beat (:class:`~interp4d_lite.data.CineTriplets`, at
    most ``per_cine`` of each, ED -> ES first; ``gaps``: the spans) and the phantoms' target frames
    (:class:`~interp4d_lite.data.TripletDataset`), mixed so that ``real_share`` of the samples
    come from the cines (:class:`~interp4d_lite.data.MixedTriplets`). ``real_share`` 1 or no
    phantoms: the cines alone; 0 or no cines: the phantoms alone (as ``fit`` builds them)."""
    from ..data import CineTriplets, MixedTriplets, TripletDataset

    real, phantoms = list(real), list(phantoms)
    if not 0 <= real_share <= 1:
        raise ValueError(f"real_share must be in [0, 1], got {real_share}")
    use_real, use_phantoms = bool(real) and real_share > 0, bool(phantoms) and real_share < 1
    if not (use_real or use_phantoms):
        raise ValueError("no training data: give real cines (real_share > 0) or phantoms (real_share < 1)")
    cines = CineTriplets(real, gaps=gaps, per_patient=per_cine, seed=seed) if use_real else None
    if not use_phantoms:
        return cines
    if not use_real:
        return TripletDataset(phantoms)
    return MixedTriplets([cines, TripletDataset(phantoms)], [real_share, 1 - real_share])


class CachedTargets(torch.utils.data.Dataset):
    """The items of ``dataset`` plus fixed targets per item, computed once before training on
    the un-augmented item: ``target_u_t0``, ``target_u_t1`` ``(3, X, Y, Z)`` voxels, and, when
    ``targets`` has 7 channels, the teacher's frame ``target_image`` ``(1, X, Y, Z)``.
    :func:`~interp4d_lite.train.sampling.augment_sample` then crops and flips them with the
    sample (a flip negates the matching field channel, as for any field)."""

    has_targets = True  # fit() computes no targets for a dataset that brings them

    def __init__(self, dataset: torch.utils.data.Dataset, targets: torch.Tensor):
        if len(targets) != len(dataset):
            raise ValueError(f"{len(targets)} cached targets for a dataset of {len(dataset)} items")
        if targets.shape[1] not in (6, 7):
            raise ValueError(f"cached targets need 6 (fields) or 7 (fields, image) channels, got {targets.shape[1]}")
        self.dataset, self.targets = dataset, targets  # targets: (N, 6 or 7, X, Y, Z)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.dataset[i])
        u = self.targets[i].float()
        item["target_u_t0"], item["target_u_t1"] = u[:3].clone(), u[3:6].clone()
        if u.shape[0] == 7:
            item["target_image"] = u[6:7].clone()
        return item


@torch.no_grad()
def compute_targets(
    fn: Callable[[dict], tuple[torch.Tensor, ...]],
    dataset,
    device,
    batch_size: int = 4,
    desc: str = "targets",
    progress: bool = True,
    channels: int = 6,
    deadline: float | None = None,
) -> torch.Tensor:
    """``(N, C, X, Y, Z)`` CPU tensor of ``torch.cat(fn(batch), dim=1)`` over every item of
    ``dataset`` (un-augmented, in order, ``batch_size`` items at a time on ``device``):
    ``channels`` = 6 for ``fn(batch) -> (u_t0, u_t1)``, 7 for ``(u_t0, u_t1, image)``.
    Stored as float16 when float32 would take more than 2 GB. ``deadline`` (a
    ``time.perf_counter()`` value): stop after the batch that passes it and return the items
    done so far (the first ``len(result)`` items of ``dataset``)."""
    import time

    n = len(dataset)
    first = dataset[0]
    nbytes = n * channels * first["I0"][0].numel() * 4
    dtype = torch.float16 if nbytes > 2 * 1024**3 else torch.float32
    out = torch.empty((n, channels, *first["I0"].shape[1:]), dtype=dtype)
    it = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=desc, leave=False, dynamic_ncols=True)
    for k in it:
        batch = to_device(collate([dataset[i] for i in range(k, min(n, k + batch_size))]), device)
        parts = fn(batch)
        out[k : k + parts[0].shape[0]] = torch.cat(parts, dim=1).float().cpu().to(dtype)
        if deadline is not None and time.perf_counter() >= deadline:
            return out[: k + parts[0].shape[0]].clone()
    return out


class PairDataset(torch.utils.data.Dataset):
    """(I0, I1) of every patient: what the linear-motion baseline trains on (no
    intermediate frames). Items: ``I0, I1 (1, X, Y, Z)``, ``patient``."""

    def __init__(self, patients: Sequence):
        self.patients = list(patients)

    def __len__(self) -> int:
        return len(self.patients)

    def __getitem__(self, i: int) -> dict:
        p = self.patients[i]
        f = torch.as_tensor(p.frames)
        return {"I0": f[p.i0][None].float().clone(), "I1": f[p.i1][None].float().clone(), "patient": p.patient_id}
