"""Preprocessing as docs/METHOD.md ("Data") describes it, over MONAI transforms.

Order used by the loaders (documented choice): clip HU (CT only) -> min-max per frame
to [0, 1] -> centre crop / zero-pad to ``volume_shape``. Normalising before padding
makes the zero padding equal the normalised minimum for CT as well as MRI.
Cropping moves the grid, so :func:`center_crop_or_pad` also returns the voxel offset
of the new grid, which :func:`shift_affine` turns into the new affine and which the
true fields of phantoms are cropped with (displacements in voxels are unchanged by a
translation of the grid).
"""

from __future__ import annotations

import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from monai.transforms import ResizeWithPadOrCrop
    from monai.utils import convert_to_numpy

__all__ = ["center_crop_or_pad", "crop_offset", "shift_affine", "minmax_per_frame", "clip_hu", "HU_CLIP"]

HU_CLIP = (-1400.0, 200.0)


def crop_offset(in_shape, out_shape) -> np.ndarray:
    """Voxel index, in the input grid, of voxel (0, 0, 0) of MONAI's centre crop/pad output
    (negative where padding comes first). Found by running the same transform on three
    1-D index ramps, so it follows MONAI's rounding exactly."""
    offset = []
    for a in range(3):
        n_in, n_out = int(in_shape[a]), int(out_shape[a])
        ramp = np.arange(1, n_in + 1, dtype=np.float32).reshape(1, n_in, 1, 1)  # 1-based, 0 = padding
        out = convert_to_numpy(ResizeWithPadOrCrop((n_out, 1, 1))(ramp)).reshape(-1)
        first = int(np.flatnonzero(out)[0])
        offset.append(int(out[first]) - 1 - first)
    return np.asarray(offset)


def center_crop_or_pad(array: np.ndarray, volume_shape):
    """Centre-crop or zero-pad the last three (spatial) axes of ``array`` to ``volume_shape``.

    ``array``: ``(X, Y, Z)``, ``(C, X, Y, Z)`` or ``(K, C, X, Y, Z)`` (e.g. fields
    ``(K, 3, X, Y, Z)``). Returns ``(cropped, offset)`` with ``offset (3,)`` the input voxel
    index of the output's voxel 0 per axis."""
    volume_shape = tuple(int(s) for s in volume_shape)
    spatial = array.shape[-3:]
    offset = crop_offset(spatial, volume_shape)
    if tuple(spatial) == volume_shape:
        return array, offset
    lead = array.shape[:-3]
    flat = array.reshape(-1, *spatial)  # (C', X, Y, Z): MONAI is channel-first
    out = convert_to_numpy(ResizeWithPadOrCrop(volume_shape, mode="constant")(flat))
    return out.reshape(*lead, *volume_shape).astype(array.dtype, copy=False), offset


def shift_affine(affine: np.ndarray, offset) -> np.ndarray:
    """Affine of a grid whose voxel 0 sits at voxel ``offset`` of the grid of ``affine``."""
    out = np.array(affine, dtype=np.float64, copy=True)
    out[:3, 3] = affine[:3, :3] @ np.asarray(offset, dtype=np.float64) + affine[:3, 3]
    return out


def minmax_per_frame(frames: np.ndarray) -> np.ndarray:
    """``(T, X, Y, Z)`` -> each frame rescaled to [0, 1]; a constant frame becomes all zeros.

    Same result as MONAI ``ScaleIntensity(0, 1, channel_wise=True)`` (tested), written in
    numpy because MONAI's per-channel loop alone can take the whole 1 s load budget of
    benchmarks/bench_data.py for a 128x128x32x20 cine."""
    frames = np.asarray(frames, dtype=np.float32)
    lo = frames.min(axis=(1, 2, 3), keepdims=True)  # (T, 1, 1, 1)
    span = frames.max(axis=(1, 2, 3), keepdims=True) - lo
    return ((frames - lo) / np.where(span > 0, span, 1.0)).astype(np.float32, copy=False)


def clip_hu(volume: np.ndarray, lo: float = HU_CLIP[0], hi: float = HU_CLIP[1]) -> np.ndarray:
    """Clip CT intensities to the HU window ``[lo, hi]`` (UVI-Net's [-1400, 200])."""
    return np.clip(volume, lo, hi).astype(np.float32, copy=False)
