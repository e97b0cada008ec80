"""Backward warping in the project's convention: MONAI's ``Warp``, computed once.

``warp(I, u)(x) = I(x + u(x))`` with ``u`` a displacement in **voxel units**,
``u`` of shape ``(B, 3, X, Y, Z)`` where channel ``c`` moves along spatial axis ``c``
(MONAI ``Warp`` semantics: bilinear, border padding). See docs/ARCHITECTURE.md.

:class:`Warper` does what MONAI's ``Warp`` does on its PyTorch path -- reference grid plus
displacement, scaled to grid_sample's [-1, 1] coordinates, axes reversed, ``grid_sample`` with
``align_corners=True`` -- with the same operations in the same order, so results and gradients
are bit-identical (tests/test_warp.py), but on whole tensors: MONAI scales each axis in place
through an indexed copy and reorders the axes by fancy indexing, which together cost about as
much as the sampling itself in a CPU training step. ``Warper(reference=True)`` (or ``.reference = True``)
runs MONAI's.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from monai.networks.blocks import Warp as _MonaiWarp


class Warper(nn.Module):
    """``Warper()(image, disp)``: image ``(B, C, X, Y, Z)``, disp ``(B, 3, X, Y, Z)`` voxels."""

    def __init__(self, mode: str = "bilinear", padding_mode: str = "border", reference: bool = False):
        super().__init__()
        if mode not in ("bilinear", "nearest") or padding_mode not in ("border", "zeros", "reflection"):
            raise ValueError(f"warp: unsupported mode {mode!r} / padding_mode {padding_mode!r}")
        self.mode, self.padding_mode = mode, padding_mode
        self.reference = bool(reference)  # True: MONAI's Warp itself (the same result, slower)
        self._grids: dict = {}  # (shape, dtype, device) -> (reference grid, grid_sample scale)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "using PyTorch native grid_sample" notice
            self._warp = _MonaiWarp(mode=mode, padding_mode=padding_mode)

    def _grid(self, disp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The voxel grid ``(1, 3, X, Y, Z)`` and ``max(n - 1, 1)`` per axis ``(1, 3, 1, 1, 1)``,
        cached per shape, dtype and device."""
        shape = tuple(disp.shape[2:])
        key = (shape, disp.dtype, disp.device)
        if key not in self._grids:
            axes = torch.meshgrid(*(torch.arange(0, n) for n in shape), indexing="ij")
            ref = torch.stack(axes, dim=0)[None].to(disp)
            den = torch.tensor([max(n - 1, 1) for n in shape], dtype=disp.dtype, device=disp.device)
            self._grids[key] = (ref, den.view(1, 3, 1, 1, 1))
        return self._grids[key]

    def forward(self, image: torch.Tensor, disp: torch.Tensor) -> torch.Tensor:
        """Backward-warp ``image`` by ``disp``: ``out(x) = image(x + disp(x))``.

        Args:
            image: ``(B, C, X, Y, Z)``, any intensity (a batch of 1 is shared by every field).
            disp: displacements ``(B, 3, X, Y, Z)`` in voxels, channel ``c`` along axis ``c``.

        Returns:
            ``(B, C, X, Y, Z)``, ``image``'s dtype, float32 for a half-precision ``image`` with a
            float32/64 ``disp`` (under autocast a bfloat16 feature map is so sampled at float32
            positions: bfloat16 holds a coordinate of 64 voxels only to 0.25 voxel); samples
            outside the grid follow ``padding_mode`` (``"border"``: the nearest edge value).
        """
        if image.dim() != 5 or disp.dim() != 5 or disp.shape[1] != 3:
            raise ValueError(
                f"warp expects image (B,C,X,Y,Z) and disp (B,3,X,Y,Z), got {tuple(image.shape)} and {tuple(disp.shape)}"
            )
        if image.shape[2:] != disp.shape[2:]:
            raise ValueError(f"image grid {tuple(image.shape[2:])} and field grid {tuple(disp.shape[2:])} differ")
        if disp.shape[0] != image.shape[0]:
            image = image.expand(disp.shape[0], *image.shape[1:])
        if image.dtype in (torch.bfloat16, torch.float16) and disp.dtype in (torch.float32, torch.float64):
            image = image.float()  # a half-precision feature map (autocast) sampled at float32 positions
        disp = disp.to(image.dtype)
        if self.reference:
            # MONAI caches its reference grid by shape only; a model moved to another
            # device (or dtype) with the same shapes would otherwise reuse a stale grid.
            grid = self._warp.ref_grid
            if grid is not None and (grid.device != disp.device or grid.dtype != disp.dtype):
                self._warp.ref_grid = None
            return self._warp(image, disp)
        ref, den = self._grid(disp)
        grid = (ref + disp) * 2 / den - 1  # MONAI's scaling: (x + u) * 2 / (n - 1) - 1 per axis
        grid = grid.flip(1).permute(0, 2, 3, 4, 1)  # (B, X, Y, Z, 3) with the last axis first
        return F.grid_sample(image, grid, mode=self.mode, padding_mode=self.padding_mode, align_corners=True)


_DEFAULT = {}


def warp(image, disp, mode: str = "bilinear", padding_mode: str = "border"):
    """Backward-warp ``image`` by ``disp`` (functional :class:`Warper`): ``out(x) = image(x + disp(x))``.

    Args:
        image: ``(B, C, X, Y, Z)`` tensor, or one volume ``(X, Y, Z)`` as a numpy array; any intensity.
        disp: displacements in voxels, channel ``c`` along axis ``c``: ``(B, 3, X, Y, Z)`` tensor, or
            ``(3, X, Y, Z)`` numpy array with a numpy ``image``.
        mode: interpolation, ``"bilinear"`` (trilinear in 3D) or ``"nearest"``.
        padding_mode: values outside the grid: ``"border"`` (nearest edge value), ``"zeros"``, ``"reflection"``.

    Returns:
        The warped image, of the type and shape of ``image`` (``(B, C, X, Y, Z)`` tensor or ``(X, Y, Z)``
        float32 numpy array).
    """
    key = (mode, padding_mode)
    if key not in _DEFAULT:
        _DEFAULT[key] = Warper(mode, padding_mode)
    if isinstance(image, np.ndarray):
        img = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
        u = torch.from_numpy(np.ascontiguousarray(disp, dtype=np.float32))[None]
        with torch.no_grad():
            return _DEFAULT[key](img, u)[0, 0].numpy()
    return _DEFAULT[key](image, disp)
