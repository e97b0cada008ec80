"""Data order and augmentation derived from ``(seed, step)`` alone.

Nothing about which samples step ``s`` sees, or how they are cropped and flipped,
depends on what happened before step ``s``; so a run resumed from a checkpoint at
step ``s`` continues exactly as the uninterrupted run would have.
The order within an epoch comes from :class:`torch.utils.data.DistributedSampler`
(``set_epoch(epoch)``), which also shards the data across ranks under DDP.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DistributedSampler

__all__ = ["StepSampler", "step_rng", "augment_sample", "collate"]

IMAGE_KEYS = ("I0", "I1", "It", "target_image")
FIELD_KEYS = ("u_t0", "u_t1", "target_u_t0", "target_u_t1")  # true fields; cached training targets


class StepSampler:
    """Dataset indices of the batch at any step, for one rank."""

    def __init__(self, n_items: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if n_items < 1:
            raise ValueError("StepSampler: the dataset is empty")
        self.batch_size = int(batch_size)
        self.sampler = DistributedSampler(
            range(n_items), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=False
        )
        self.steps_per_epoch = max(1, len(self.sampler) // self.batch_size)
        self._epoch, self._order = None, None

    def indices(self, step: int) -> list[int]:
        epoch, k = divmod(int(step), self.steps_per_epoch)
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._epoch, self._order = epoch, list(self.sampler)
        order = self._order
        return [order[(k * self.batch_size + j) % len(order)] for j in range(self.batch_size)]


def step_rng(seed: int, step: int, rank: int = 0, j: int = 0) -> np.random.Generator:
    """Independent generator for sample ``j`` of ``rank`` at ``step``."""
    return np.random.default_rng([int(seed), int(step), int(rank), int(j), 0x1D4D])


def augment_sample(sample: dict, rng: np.random.Generator, crop_shape=None, flip_axes=(0, 1, 2)) -> dict:
    """Random crop and flips applied identically to every volume of a sample.

    Images ``(1, X, Y, Z)`` and fields ``(3, X, Y, Z)`` are cropped at the same place
    (displacements in voxels do not change under a crop). Flipping spatial axis ``a``
    mirrors every volume and **negates channel a of the fields**: if
    ``I_t(x) = I_0(x + u(x))`` and ``J(y) = I(F y)`` with ``F`` the mirror, then
    ``J_t(y) = J_0(y + S u(F y))`` where ``S`` negates component ``a``.
    Uses MONAI's ``SpatialCrop`` and ``Flip`` with our own (step-derived) randomness, once on
    the sample's volumes stacked along the channels (one call per transform, not one per volume).
    """
    from monai.transforms import Flip, SpatialCrop

    out = dict(sample)
    keys = [k for k in IMAGE_KEYS + FIELD_KEYS if k in out]
    shape = tuple(out[keys[0]].shape[1:])
    window = None
    if crop_shape is not None:
        crop = [min(int(c), s) for c, s in zip(crop_shape, shape)]
        start = [int(rng.integers(0, s - c + 1)) for c, s in zip(crop, shape)]
        window = (start, [a + c for a, c in zip(start, crop)])
    flips = [a for a in flip_axes if rng.random() < 0.5]
    if window is not None or flips:
        volumes = {k: torch.as_tensor(out[k]) for k in keys}
        for dtype in dict.fromkeys(v.dtype for v in volumes.values()):  # one stack per dtype
            group = [k for k in keys if volumes[k].dtype == dtype]
            stacked = torch.cat([volumes[k] for k in group])  # a new tensor: the sample's are not touched
            if window is not None:
                stacked = _plain(SpatialCrop(roi_start=window[0], roi_end=window[1])(stacked))
            for a in flips:
                stacked = _plain(Flip(spatial_axis=a)(stacked))
            for k, v in zip(group, stacked.split([volumes[k].shape[0] for k in group])):
                if k in FIELD_KEYS:
                    for a in flips:
                        v[a] = -v[a]
                out[k] = v
    for k in keys:  # drop MONAI MetaTensor wrappers: plain tensors collate and save cleanly
        out[k] = _plain(out[k])
    return out


def _plain(x):
    """A MONAI MetaTensor as a plain tensor (anything else as is)."""
    return x.as_tensor() if hasattr(x, "as_tensor") else x


def collate(samples: list[dict]) -> dict:
    """Stack tensors, keep lists of everything else."""
    out = {}
    for k in samples[0]:
        vals = [s[k] for s in samples]
        if isinstance(vals[0], torch.Tensor):
            out[k] = torch.stack([torch.as_tensor(v) for v in vals])
        elif isinstance(vals[0], (int, float)):
            out[k] = torch.tensor(vals)
        else:
            out[k] = vals
    return out


def to_device(batch: dict, device) -> dict:
    """Every tensor of ``batch`` on ``device`` (non-blocking); everything else as is."""
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
