"""The privileged teacher: sees I0, I1 **and the true I_t** (training only).

Same family as the student, so its decoder features match the student's level by
level (same ``decoder_channels``) and feature distillation is a plain MSE:
the shared encoder runs on I0, I1 and I_t; at each level the generator sees the
warped features of I0 and I1 *and* the features of I_t (already on the grid of time
t, no warp), so it can find the true, non-linear deformation instead of guessing it
from t. No FiLM: it needs no timestamp. The blend mask starts at 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import Encoder, pad_to_multiple
from .config import JSONConfig
from .fusion import DeformationFusion, synthesize
from .generator import DeformationFeatureGenerator
from .student import decoded_encoder_channels
from .warp import Warper


@dataclass
class TeacherConfig(JSONConfig):
    in_channels: int = 1
    encoder_channels: tuple[int, ...] = (8, 16, 32, 64)
    decoder_channels: tuple[int, ...] = (32, 16, 8)  # must equal the student's for feature distillation
    fused_channels: int = 8


class Teacher(nn.Module):
    def __init__(self, config: TeacherConfig | None = None):
        super().__init__()
        self.config = config = config or TeacherConfig()
        enc = decoded_encoder_channels(config.encoder_channels, config.decoder_channels)
        self.multiple = 2 ** (len(config.encoder_channels) - 1)
        self.n_decoded = len(config.decoder_channels)
        self.encoder = Encoder(config.in_channels, config.encoder_channels)
        self.generator = DeformationFeatureGenerator(enc, config.decoder_channels, context=True)
        self.fusion = DeformationFusion(config.decoder_channels, config.fused_channels)
        self.warp = Warper()

    def forward(self, I0: torch.Tensor, I1: torch.Tensor, It: torch.Tensor) -> dict:
        """All ``(B, 1, X, Y, Z)``; returns the interpolator dict (with ``features`` and
        ``scale_weights``) whose ``image`` reconstructs ``It``."""
        if not (I0.shape == I1.shape == It.shape) or I0.dim() != 5:
            raise ValueError(f"I0, I1, It must share a (B, C, X, Y, Z) shape; got {tuple(I0.shape)}, {tuple(I1.shape)}, {tuple(It.shape)}")
        b = I0.shape[0]
        x = pad_to_multiple(torch.cat([I0, I1, It]), self.multiple)  # (3B, 1, X', Y', Z')
        pyramid = self.generator.lateral(self.encoder(x)[::-1][: self.n_decoded])  # coarse -> fine
        f0, f1, ft = ([f[i * b : (i + 1) * b] for f in pyramid] for i in range(3))
        features, fields = self.generator(f0, f1, ctx=ft)
        delta, mask_logit, weights = self.fusion(features)
        out = synthesize(I0, I1, fields[-1] + delta, mask_logit, weights, x.shape[2:], I0.shape[2:], self.warp)
        out["features"] = features
        return out
