"""Building blocks shared by every network: a conv block, the shared (siamese)
encoder pyramid, and the grid helpers (pad to the pyramid's multiple, upsample a
displacement field, broadcast timestamps).

Axes follow docs/ARCHITECTURE.md: volumes ``(B, C, X, Y, Z)``, fields ``(B, 3, X, Y, Z)``
in voxel units of the grid they live on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBlock(nn.Sequential):
    """3x3x3 convolution (optionally strided) followed by LeakyReLU(0.2). No
    normalisation: volumes are already in [0, 1] and batches are tiny."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__(nn.Conv3d(in_ch, out_ch, 3, stride=stride, padding=1), nn.LeakyReLU(0.2))


def flow_head(in_ch: int, out_ch: int, std: float = 1e-3) -> nn.Conv3d:
    """Last conv that predicts displacements: small weights so fields start near
    zero (as VoxelMorph does), but not zero, so gradients reach every layer."""
    conv = nn.Conv3d(in_ch, out_ch, 3, padding=1)
    nn.init.normal_(conv.weight, std=std)
    nn.init.zeros_(conv.bias)
    return conv


class Encoder(nn.Module):
    """Shared feature pyramid: level 0 at full resolution, level l at 1/2**l.

    ``channels=(8, 16, 32, 64)`` gives levels at 1, 1/2, 1/4, 1/8 resolution. Level 0
    is a single cheap conv (full-resolution work is kept minimal); every coarser level is
    a strided conv plus two convs. Run on I0 and I1 with shared weights (siamese). The
    encoder runs once per pair while the decoder runs once per t, so capacity goes here.
    """

    def __init__(self, in_channels: int = 1, channels: tuple[int, ...] = (8, 16, 32, 64)):
        super().__init__()
        self.levels = nn.ModuleList([ConvBlock(in_channels, channels[0])])
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            self.levels.append(
                nn.Sequential(ConvBlock(c_in, c_out, stride=2), ConvBlock(c_out, c_out), ConvBlock(c_out, c_out))
            )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []  # fine -> coarse: (B, c_l, X/2**l, Y/2**l, Z/2**l)
        for level in self.levels:
            x = level(x)
            feats.append(x)
        return feats


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the high end of every spatial axis up to a multiple of ``multiple``
    (so cropping back is ``[..., :X, :Y, :Z]``)."""
    pads = []
    for s in reversed(x.shape[2:]):  # F.pad wants the last axis first
        pads += [0, (-s) % multiple]
    if not any(pads):
        return x
    return F.pad(x, pads, mode="replicate")


def crop(x: torch.Tensor, shape) -> torch.Tensor:
    """Crop the spatial axes of ``x (B, C, ...)`` back to ``shape``."""
    return x[..., : shape[0], : shape[1], : shape[2]]


def resize(x: torch.Tensor, size) -> torch.Tensor:
    """Trilinear resize of a feature map / weight map (no value scaling)."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="trilinear", align_corners=False)


def upsample_field(u: torch.Tensor, size) -> torch.Tensor:
    """Resize a displacement field ``(B, 3k, ...)`` to ``size`` and rescale it so it
    stays in voxel units of the new grid (channel c along axis c, k fields stacked)."""
    if tuple(u.shape[2:]) == tuple(size):
        return u
    scale = torch.tensor([n / o for n, o in zip(size, u.shape[2:])], dtype=u.dtype, device=u.device)
    scale = scale.repeat(u.shape[1] // 3).view(1, -1, 1, 1, 1)
    return resize(u, size) * scale


def as_timestamps(t, batch: int, device=None) -> torch.Tensor:
    """Timestamps as a float32 ``(N,)`` tensor. ``t`` may be a float, a 0-d or 1-d
    tensor/sequence; a single value is broadcast to ``batch``. ``N`` must equal
    ``batch`` or ``batch`` must be 1 (then inputs are broadcast to N)."""
    t = torch.as_tensor(t, dtype=torch.float32, device=device).reshape(-1)
    if t.numel() == 1 and batch > 1:
        t = t.expand(batch)
    if t.numel() != batch and batch != 1:
        raise ValueError(f"got {t.numel()} timestamps for a batch of {batch}; need N == B, or B == 1")
    return t


def expand_batch(x: torch.Tensor, n: int) -> torch.Tensor:
    """Broadcast a batch of 1 to ``n`` (a view, no copy)."""
    return x if x.shape[0] == n else x.expand(n, *x.shape[1:])
