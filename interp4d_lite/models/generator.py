"""The deformation feature generator: a coarse-to-fine, bidirectional decoder.

The encoder features of each decoded level are first narrowed to that level's width
by a 1x1 "lateral" conv (:meth:`DeformationFeatureGenerator.lateral`, run once per pair
in ``encode``, so the per-t warps move few channels). Then at each decoded level
(coarse -> fine) it warps the features of I0 with the
current ``u_t0`` and those of I1 with ``u_t1``, concatenates them with the previous
level's deformation feature (projected, then upsampled) and the current fields,
convolves, applies FiLM from t (student) and predicts a residual update of
``(u_t0, u_t1)``. The teacher uses the same module without FiLM but with a context:
the encoder features of the true I_t, which live on the grid of time t and need no warp.
The student's ablation without FiLM (``StudentConfig.time_conditioning="channel"``)
instead appends t as one constant input channel to every level's input (``time_channel``).
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvBlock, expand_batch, flow_head, resize, upsample_field
from .temporal import film
from .warp import Warper


class DeformationLevel(nn.Module):
    """One decoder level: (warped F0, warped F1, [context], previous feature, fields)
    -> deformation feature ``h (N, C, ...)`` and field update ``(N, 6, ...)``."""

    def __init__(self, feat_ch: int, prev_ch: int, context: bool, mix_kernel: int = 3, time_channel: bool = False):
        super().__init__()
        in_ch = feat_ch * (3 if context else 2) + (feat_ch if prev_ch else 0) + 6 + int(time_channel)
        self.project_prev = nn.Conv3d(prev_ch, feat_ch, 1) if prev_ch else None
        # conv1 mixes the concatenated inputs: 3x3x3 at the coarsest level, 1x1x1 at the finer
        # ones (they run once per t at 1/4 and 1/2 resolution: "decode coarse, refine light";
        # conv2 and the flow head still see a 3x3x3 neighbourhood)
        self.conv1 = nn.Sequential(nn.Conv3d(in_ch, feat_ch, mix_kernel, padding=mix_kernel // 2), nn.LeakyReLU(0.2))
        self.conv2 = ConvBlock(feat_ch, feat_ch)
        self.flow = flow_head(feat_ch, 6)
        self.warp = Warper()  # one per level (each caches its reference grid per shape)

    def forward(self, f0, f1, ctx, prev, fields, modulation=None, time=None):
        """Update the fields of one decoder level and return its deformation feature.

        Args:
            f0: lateral encoder features of ``I0`` at this level, ``(B, C, x, y, z)`` with B == N,
                or B == 1 for one pair shared by N timestamps.
            f1: the same of ``I1``.
            ctx: the teacher's lateral features of the true ``I_t``, ``(B, C, x, y, z)`` on the grid of
                time t (not warped); None for the student.
            prev: the previous (coarser) level's deformation feature ``(N, C_prev, x', y', z')``;
                None at the coarsest level, whose fields are still zero (nothing is warped there).
            fields: the current ``[u_t0, u_t1]``, ``(N, 6, x, y, z)`` in voxels of this level's grid.
            modulation: FiLM ``(gamma, beta)`` of this level, each ``(N, C, 1, 1, 1)``
                (:class:`~interp4d_lite.models.temporal.TemporalModulation`); None for the teacher.
            time: the timestamps ``(N,)``, appended as one constant input channel (a level built with
                ``time_channel``); None otherwise.

        Returns:
            ``(h, fields)``: the deformation feature ``h`` ``(N, C, x, y, z)`` and the updated fields
            ``(N, 6, x, y, z)`` in voxels of this level's grid (the input fields plus a residual).
        """
        n = fields.shape[0]
        size = f0.shape[2:]
        if prev is not None:  # at the coarsest level the fields are still zero: nothing to warp
            f0 = self.warp(f0, fields[:, :3])
            f1 = self.warp(f1, fields[:, 3:])
        x = [expand_batch(f0, n), expand_batch(f1, n)]
        if ctx is not None:
            x.append(expand_batch(ctx, n))
        if prev is not None:
            # a 1x1 conv commutes with trilinear upsampling: project at the coarse grid (cheaper)
            x.append(resize(self.project_prev(prev), size))
        x.append(fields)
        if time is not None:
            x.append(time.to(fields.dtype).view(-1, 1, 1, 1, 1).expand(n, 1, *size))
        h = self.conv1(torch.cat(x, dim=1))
        if modulation is not None:
            h = film(h, *modulation)
        h = self.conv2(h)
        return h, fields + self.flow(h)


class DeformationFeatureGenerator(nn.Module):
    """Coarse-to-fine bidirectional decoder.

    ``enc_channels``: encoder channels of the decoded levels, coarse -> fine
    (default student: 64, 32, 16 at 1/8, 1/4, 1/2 resolution);
    ``feat_channels``: deformation-feature channels per level (same order; default
    32, 16, 8: the fine levels are deliberately light, they run once per t; with
    ``light_refinement`` their input-mixing conv is 1x1x1); ``time_channel``: every level's
    input gets t as one more constant channel (the student without FiLM).
    ``forward`` returns ``(features, fields)``: two lists, coarse -> fine, of
    ``(N, C_l, ...)`` deformation features and ``(N, 6, ...)`` fields ``[u_t0, u_t1]``
    in voxels of that level's grid.
    """

    def __init__(
        self,
        enc_channels: tuple[int, ...],
        feat_channels: tuple[int, ...],
        context: bool = False,
        light_refinement: bool = True,
        time_channel: bool = False,
    ):
        super().__init__()
        if len(enc_channels) != len(feat_channels):
            raise ValueError(f"enc_channels {enc_channels} and feat_channels {feat_channels} need the same length")
        self.time_channel = time_channel
        prev = (0,) + tuple(feat_channels[:-1])
        kernels = [3] + [1 if light_refinement else 3] * (len(feat_channels) - 1)
        self.laterals = nn.ModuleList([nn.Conv3d(e, f, 1) for e, f in zip(enc_channels, feat_channels)])
        self.levels = nn.ModuleList(
            [DeformationLevel(f, p, context, k, time_channel) for f, p, k in zip(feat_channels, prev, kernels)]
        )

    def lateral(self, pyramid: list[torch.Tensor]) -> list[torch.Tensor]:
        """Encoder features of the decoded levels (coarse -> fine) narrowed to the
        decoder's widths; once per pair (and once per I_t for the teacher)."""
        return [conv(f) for conv, f in zip(self.laterals, pyramid)]

    def forward(self, enc0, enc1, ctx=None, modulation=None, batch: int | None = None, time=None):
        """``enc0``, ``enc1`` (and ``ctx``): lists coarse -> fine of :meth:`lateral`
        features ``(B, C_l, ...)``; ``modulation``: list of FiLM ``(gamma, beta)`` or None;
        ``batch``: N, the number of outputs (B, or N timestamps when B == 1); ``time``: the
        ``(N,)`` timestamps for a generator built with ``time_channel`` (else None)."""
        if self.time_channel != (time is not None):
            raise ValueError("pass time= exactly when the generator was built with time_channel=True")
        n = batch or enc0[0].shape[0]
        coarsest = enc0[0].shape[2:]
        fields = enc0[0].new_zeros((n, 6, *coarsest))  # (N, 6, ...) [u_t0, u_t1] voxels
        prev, features, all_fields = None, [], []
        for i, level in enumerate(self.levels):
            size = enc0[i].shape[2:]
            fields = upsample_field(fields, size)
            prev, fields = level(
                enc0[i],
                enc1[i],
                None if ctx is None else ctx[i],
                prev,
                fields,
                None if modulation is None else modulation[i],
                time,
            )
            features.append(prev)
            all_fields.append(fields)
        return features, all_fields
