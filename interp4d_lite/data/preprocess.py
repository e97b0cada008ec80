"""Preprocessing as docs/METHOD.md ("Data") describes it, over MONAI transforms.

**One normalisation of a scan**, :func:`normalize_scan`: a CT-like scan is clipped to the HU
window (:data:`HU_WINDOW`), then every frame is min-max normalised to [0, 1]; an MRI-like scan
is min-max normalised only. Which one a scan is, when nothing says so, is guessed once, by
:func:`guess_data_kind` (air near -1000 HU: a minimum below :data:`CT_BELOW_HU`). Training
(the loaders), ``evaluate``, ``adapt``, ``interpolate`` and the notebooks all call it, so a
scan reaches the model as the same input on every route.

Order used by the loaders (documented choice): normalise (clip HU for CT, min-max per frame
to [0, 1]) -> centre crop / zero-pad to ``volume_shape``. Normalising before padding
makes the zero padding equal the normalised minimum for CT as well as MRI.
Cropping moves the grid, so :func:`center_crop_or_pad` also returns the voxel offset
of the new grid, which :func:`shift_affine` turns into the new affine and which the
true fields of phantoms are cropped with (displacements in voxels are unchanged by a
translation of the grid).
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "center_crop_or_pad",
    "crop_offset",
    "shift_affine",
    "minmax_per_frame",
    "clip_hu",
    "normalize_scan",
    "guess_data_kind",
    "HU_WINDOW",
    "HU_CLIP",
    "CT_BELOW_HU",
]

#: The CT intensity window in HU (UVI-Net's lung window): the one HU window of the package.
HU_WINDOW = (-1400.0, 200.0)
HU_CLIP = HU_WINDOW  # the name the loaders used first
#: A scan whose minimum lies below this is CT-like (air near -1000 HU).
CT_BELOW_HU = -500.0


def _monai():
    """MONAI's crop/pad transform and array converter, imported on first use (slow to import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from monai.transforms import ResizeWithPadOrCrop
        from monai.utils import convert_to_numpy
    return ResizeWithPadOrCrop, convert_to_numpy


def crop_offset(in_shape, out_shape) -> np.ndarray:
    """Voxel index, in the input grid, of voxel (0, 0, 0) of MONAI's centre crop/pad output
    (negative where padding comes first). Found by running the same transform on three
    1-D index ramps, so it follows MONAI's rounding exactly."""
    ResizeWithPadOrCrop, convert_to_numpy = _monai()
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
    ResizeWithPadOrCrop, convert_to_numpy = _monai()
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


def clip_hu(volume: np.ndarray, lo: float = HU_WINDOW[0], hi: float = HU_WINDOW[1]) -> np.ndarray:
    """Clip CT intensities to the HU window ``[lo, hi]`` (UVI-Net's [-1400, 200])."""
    return np.clip(volume, lo, hi).astype(np.float32, copy=False)


def guess_data_kind(frames) -> str:
    """``"lung"`` for CT-like intensities (a minimum below :data:`CT_BELOW_HU`: air near -1000
    HU), else ``"cardiac"``: the one guess of a scan's kind (its normalisation, and which
    pretrained student fits it) when nothing names it. ``frames``: an array, or several."""
    lo = min(float(np.min(f)) for f in frames) if isinstance(frames, (list, tuple)) else float(np.min(frames))
    return "lung" if lo < CT_BELOW_HU else "cardiac"


def normalize_scan(frames: np.ndarray, ct: bool | None = None, return_range: bool = False):
    """The one normalisation of a scan ``(T, X, Y, Z)``: CT-like frames clipped to
    :data:`HU_WINDOW`, then every frame min-max normalised to [0, 1] (:func:`minmax_per_frame`).

    ``ct``: whether the scan is CT (``None``: :func:`guess_data_kind` on ``frames``). With
    ``return_range``, also the ``(lo, hi)`` ``(T,)`` float32 range each frame was mapped from
    (after the clip), to map model outputs back to the scan's intensities."""
    frames = np.asarray(frames, dtype=np.float32)
    if ct is None:
        ct = guess_data_kind(frames) == "lung"
    if ct:
        frames = clip_hu(frames)
    out = minmax_per_frame(frames)
    if not return_range:
        return out
    return out, frames.min(axis=(1, 2, 3)), frames.max(axis=(1, 2, 3))
