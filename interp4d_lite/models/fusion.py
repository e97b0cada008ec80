"""Deformation fusion: per-voxel learned weights over the decoder's scales.

The deformation features of every level are projected to a common channel count
(1x1 conv, done on the coarse grid since it commutes with upsampling), upsampled to
the finest decoded grid (1/2 resolution by default), weighted by a per-voxel
softmax over the L scales and summed. A small head turns the fused feature into a
residual on the finest level's fields and the blend-mask logit. ``synthesize`` then
brings fields and mask to full resolution (the only full-resolution work: one
upsample, two warps and the blend).

The scale weights are a softmax of a 1x1 convolution of the projected features at each
voxel, so they can follow the content; the deformation features are small beside the
convolutions' biases, though, and with short CPU trainings the weights stay close to a
fixed mix of the scales, nearly the same at every voxel (docs/METHOD.md, sections 10 and
11). :class:`FinestLevelHead` is the ablation without fusion (``StudentConfig.fusion="finest"``):
the same head on the finest level's feature alone. :class:`FieldSpaceFusion`
(``fusion="fields"``) is an option that fuses the scales' fields themselves, with weights
scored from normalised features and t.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import crop, flow_head, resize, upsample_field
from .warp import Warper


class DeformationFusion(nn.Module):
    """``forward(features) -> (delta_fields (N,6,...), mask_logit (N,1,...), weights (N,L,...))``
    on the grid of the finest feature map; ``features`` coarse -> fine."""

    def __init__(self, feat_channels: tuple[int, ...], fused_channels: int = 16):
        super().__init__()
        n_scales = len(feat_channels)
        self.project = nn.ModuleList([nn.Conv3d(c, fused_channels, 1) for c in feat_channels])
        self.score = nn.Conv3d(n_scales * fused_channels, n_scales, 1)  # per-voxel scale logits
        self.head = flow_head(fused_channels, 7)  # one 3x3x3 conv: fields residual (6) + mask logit (1)

    def forward(self, features: list[torch.Tensor]):
        """Fuse the decoder's deformation features of every scale with per-voxel weights.

        Args:
            features: L deformation features, coarse -> fine, ``(N, C_l, x_l, y_l, z_l)``
                (:class:`~interp4d_lite.models.generator.DeformationFeatureGenerator`).

        Returns:
            ``(delta_fields, mask_logit, weights)`` on the grid ``(x, y, z)`` of the finest feature:
            ``delta_fields`` ``(N, 6, x, y, z)`` a residual on the finest level's ``[u_t0, u_t1]``, in
            voxels of that grid; ``mask_logit`` ``(N, 1, x, y, z)`` the blend-mask logit (before the
            prior); ``weights`` ``(N, L, x, y, z)`` the softmax weights over the L scales (sum 1 over L).
        """
        size = features[-1].shape[2:]
        projected = [resize(p(f), size) for p, f in zip(self.project, features)]  # L x (N, C, ...)
        weights = torch.softmax(self.score(torch.cat(projected, dim=1)), dim=1)  # (N, L, ...)
        fused = sum(weights[:, i : i + 1] * p for i, p in enumerate(projected))  # (N, C, ...)
        out = self.head(fused)  # (N, 7, ...)
        return out[:, :6], out[:, 6:], weights


class FinestLevelHead(nn.Module):
    """The ablation of :class:`DeformationFusion`: no fusion over the scales. The same head (one
    3x3x3 conv: fields residual + mask logit) on the finest level's deformation feature alone;
    ``forward`` returns what :meth:`DeformationFusion.forward` does, with ``weights`` all on the
    finest scale (one-hot over the L scales)."""

    def __init__(self, feat_channels: tuple[int, ...]):
        super().__init__()
        self.n_scales = len(feat_channels)
        self.head = flow_head(feat_channels[-1], 7)

    def forward(self, features: list[torch.Tensor]):
        """``features`` coarse -> fine (only the last is read) -> ``(delta_fields, mask_logit, weights)``
        on the finest feature's grid, as :meth:`DeformationFusion.forward`."""
        finest = features[-1]
        out = self.head(finest)  # (N, 7, ...)
        weights = finest.new_zeros((finest.shape[0], self.n_scales, *finest.shape[2:]))
        weights[:, -1] = 1
        return out[:, :6], out[:, 6:], weights


class FieldSpaceFusion(nn.Module):
    """A fusion that chooses among the scales' *fields*, not only their features
    (``StudentConfig.fusion="fields"``; docs/METHOD.md, "Ablations of the paper's blocks").

    Every decoded level's fields ``[u_t0, u_t1]`` are brought to the finest grid (in its voxel
    units) and mixed with per-voxel softmax weights over the L scales; the weights are scored from
    the projected deformation features *normalised per channel over the grid* (so their spatial
    pattern, not their small magnitude, drives the score) and from t (one constant channel). The
    fused feature (the same weights on the projected features) gives a residual on the fused
    fields and the blend-mask logit, as in :class:`DeformationFusion`.
    """

    def __init__(self, feat_channels: tuple[int, ...], fused_channels: int = 16):
        super().__init__()
        n_scales = len(feat_channels)
        self.project = nn.ModuleList([nn.Conv3d(c, fused_channels, 1) for c in feat_channels])
        self.norm = nn.ModuleList([nn.InstanceNorm3d(fused_channels, affine=True) for _ in feat_channels])
        self.score = nn.Conv3d(n_scales * fused_channels + 1, n_scales, 3, padding=1)  # + the t channel
        self.head = flow_head(fused_channels, 7)

    def forward(self, features: list[torch.Tensor], fields: list[torch.Tensor], t: torch.Tensor):
        """Fuse the scales' fields and features with per-voxel weights that depend on t.

        Args:
            features: L deformation features, coarse -> fine, ``(N, C_l, x_l, y_l, z_l)``.
            fields: the L levels' ``[u_t0, u_t1]``, coarse -> fine, ``(N, 6, x_l, y_l, z_l)`` in voxels
                of each level's grid (the generator's second output).
            t: ``(N,)`` timestamps in [0, 1].

        Returns:
            ``(fields, mask_logit, weights)`` on the finest grid ``(x, y, z)``: ``fields`` ``(N, 6, x, y,
            z)`` the fused fields plus the head's residual, in voxels of that grid; ``mask_logit``
            ``(N, 1, x, y, z)`` (before the prior); ``weights`` ``(N, L, x, y, z)`` (sum 1 over L).
        """
        size = features[-1].shape[2:]
        projected = [resize(p(f), size) for p, f in zip(self.project, features)]  # L x (N, C, ...)
        n = projected[0].shape[0]
        t_map = t.to(projected[0].dtype).view(-1, 1, 1, 1, 1).expand(n, 1, *size)
        normed = [norm(p) for norm, p in zip(self.norm, projected)]
        weights = torch.softmax(self.score(torch.cat([*normed, t_map], dim=1)), dim=1)  # (N, L, ...)
        fused = sum(weights[:, i : i + 1] * p for i, p in enumerate(projected))  # (N, C, ...)
        stacked = sum(weights[:, i : i + 1] * upsample_field(u, size) for i, u in enumerate(fields))
        out = self.head(fused)  # (N, 7, ...)
        return stacked + out[:, :6], out[:, 6:], weights


def synthesize(I0, I1, fields, mask_logit, weights, padded_shape, shape, warper: Warper) -> dict:
    """Full-resolution output from fields/mask/weights on a coarser (padded) grid.

    ``I0``, ``I1``: ``(B, 1, X, Y, Z)`` original inputs (B == N or 1); ``fields (N, 6, x, y, z)``
    in voxels of their grid; ``padded_shape``: the padded full-resolution grid the network
    saw; ``shape``: original ``(X, Y, Z)``. ``scale_weights`` are shown at full
    resolution by nearest-neighbour repetition of the fused-grid weights (they are for
    inspection, not used in the image; nearest is 5x cheaper per t than trilinear).
    Returns the interpolator dict of docs/ARCHITECTURE.md.
    """
    full = tuple(padded_shape)
    u = crop(upsample_field(fields, full), shape)  # (N, 6, X, Y, Z) voxels
    mask = torch.sigmoid(crop(resize(mask_logit, full), shape))  # (N, 1, X, Y, Z)
    u_t0, u_t1 = u[:, :3], u[:, 3:]
    warped0, warped1 = warper(I0, u_t0), warper(I1, u_t1)
    image = mask * warped0 + (1 - mask) * warped1
    return {
        "image": image,
        "u_t0": u_t0,
        "u_t1": u_t1,
        "mask": mask,
        "warped0": warped0,
        "warped1": warped1,
        "scale_weights": crop(F.interpolate(weights, size=full, mode="nearest"), shape),
    }
