"""The student: the paper's model. Sees I0, I1 and a timestamp t only.

    I0, I1 --Encoder (shared)--> pyramids            (once per pair: ``encode``)
    t --TemporalModulation--> FiLM (gamma, beta) per decoder level
    DeformationFeatureGenerator: coarse-to-fine (1/8 -> 1/4 -> 1/2), bidirectional,
        FiLM-modulated, residual updates of (u_t0, u_t1)
    DeformationFusion: per-voxel softmax over the 3 scales -> final fields + mask logit
    synthesize: upsample to full resolution, I_t = m warp(I0, u_t0) + (1 - m) warp(I1, u_t1)

Two ablations of the paper's blocks (``StudentConfig``; docs/METHOD.md, "Ablations of the
paper's blocks"): ``time_conditioning="channel"`` drops TemporalModulation and appends t as
one constant input channel to every decoder level; ``fusion="finest"`` drops
DeformationFusion for a head on the finest level's feature alone
(:class:`~interp4d_lite.models.fusion.FinestLevelHead`). ``fusion="fields"`` is an option, not
an ablation: :class:`~interp4d_lite.models.fusion.FieldSpaceFusion` mixes the scales' fields.

Every additional t costs only ``decode`` (decoder + fusion at <= 1/2 resolution, then
one upsample, two warps and the blend at full resolution). The blend mask starts at
the linear-blend prior ``m = 1 - t`` (its logit is added to the predicted logit), so
the network only learns the correction (e.g. occlusions); the fields have no
linear-motion prior: FiLM lets them follow any monotone or non-monotone course in t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import Encoder, as_timestamps, pad_to_multiple
from .config import JSONConfig
from .fusion import DeformationFusion, FieldSpaceFusion, FinestLevelHead, synthesize
from .generator import DeformationFeatureGenerator
from .temporal import TemporalModulation
from .warp import Warper

TIME_CONDITIONINGS = ("film", "channel")  # StudentConfig.time_conditioning: the paper's FiLM, or the ablation
FUSIONS = ("multiscale", "finest", "fields")  # StudentConfig.fusion: the paper's fusion, the ablation, the option


@dataclass
class StudentConfig(JSONConfig):
    """Sizes of the student (channels per level, FiLM embedding, decode chunking) and which of the
    paper's blocks it has (``time_conditioning``, ``fusion``: the defaults are the paper's model)."""

    in_channels: int = 1
    encoder_channels: tuple[int, ...] = (8, 16, 32, 64)  # levels at 1, 1/2, 1/4, 1/8 resolution
    decoder_channels: tuple[int, ...] = (32, 16, 8)  # decoded levels coarse -> fine: 1/8, 1/4, 1/2
    fused_channels: int = 8
    time_freqs: int = 2  # sinusoidal embedding: t, sin/cos(2^k pi t), k < time_freqs; 2 keeps the course of
    # motion smooth in t (with 6, up to sin(32 pi t), the trained FiLM parameters jumped between nearby t)
    time_hidden: int = 64
    decode_chunk: int = 2  # on CPU, decode at most this many timestamps at once (0: all): keeps a
    # sweep's working set in cache; results are the same either way; GPUs decode all at once
    time_conditioning: str = "film"  # how t enters the decoder: "film" (TemporalModulation: FiLM at every
    # level) or "channel" (the ablation: t as one more constant input channel of every level, no FiLM)
    fusion: str = "multiscale"  # "multiscale" (DeformationFusion over the decoded levels), "finest" (the
    # ablation: fields residual and mask from the finest level's feature alone, no fusion) or "fields"
    # (FieldSpaceFusion: the scales' fields mixed per voxel, weights from normalised features and t)

    def __post_init__(self):
        for name, choices in (("time_conditioning", TIME_CONDITIONINGS), ("fusion", FUSIONS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"StudentConfig.{name} must be one of {choices}, not {getattr(self, name)!r}")


def decoded_encoder_channels(encoder_channels, decoder_channels) -> tuple[int, ...]:
    """Encoder channels of the decoded levels, coarse -> fine (the coarsest
    ``len(decoder_channels)`` encoder levels)."""
    n = len(decoder_channels)
    if not 1 <= n <= len(encoder_channels):
        raise ValueError(f"need 1 <= len(decoder_channels)={n} <= len(encoder_channels)={len(encoder_channels)}")
    return tuple(reversed(encoder_channels))[:n]


def log_prior_mask(t: torch.Tensor) -> torch.Tensor:
    """logit(1 - t) as ``(N, 1, 1, 1, 1)``: the linear-blend mask as a starting point."""
    return torch.logit((1 - t).clamp(1e-3, 1 - 1e-3)).view(-1, 1, 1, 1, 1)


class Student(nn.Module):
    """The student (the paper's model): sees I0, I1 and t only. ``encode(I0, I1)`` once per
    pair, ``decode(features, t)`` per timestamp, ``forward(I0, I1, t)`` = both; returns the
    interpolator dict (module docstring)."""

    def __init__(self, config: StudentConfig | None = None):
        super().__init__()
        self.config = config = config or StudentConfig()
        enc = decoded_encoder_channels(config.encoder_channels, config.decoder_channels)
        self.multiple = 2 ** (len(config.encoder_channels) - 1)  # inputs padded to this
        self.n_decoded = len(config.decoder_channels)
        self.encoder = Encoder(config.in_channels, config.encoder_channels)
        film = config.time_conditioning == "film"
        # built in this order (it fixes the initialisation of a seed); an ablated block is None
        self.temporal = (
            TemporalModulation(config.decoder_channels, config.time_freqs, config.time_hidden) if film else None
        )
        self.generator = DeformationFeatureGenerator(enc, config.decoder_channels, time_channel=not film)
        fusion = {"multiscale": DeformationFusion, "fields": FieldSpaceFusion}.get(config.fusion)
        self.fusion = fusion(config.decoder_channels, config.fused_channels) if fusion else None
        self.finest_head = FinestLevelHead(config.decoder_channels) if fusion is None else None
        self.warp = Warper()

    def encode(self, I0: torch.Tensor, I1: torch.Tensor) -> dict:
        """``I0``, ``I1``: ``(B, 1, X, Y, Z)`` -> opaque features for :meth:`decode`."""
        if I0.shape != I1.shape or I0.dim() != 5:
            raise ValueError(f"I0 and I1 must both be (B, C, X, Y, Z); got {tuple(I0.shape)} and {tuple(I1.shape)}")
        b = I0.shape[0]
        x = pad_to_multiple(torch.cat([I0, I1]), self.multiple)  # (2B, 1, X', Y', Z')
        pyramid = self.generator.lateral(self.encoder(x)[::-1][: self.n_decoded])  # coarse -> fine, decoded levels
        return {
            "I0": I0,
            "I1": I1,
            "shape": tuple(I0.shape[2:]),
            "padded_shape": tuple(x.shape[2:]),
            "f0": [f[:b] for f in pyramid],
            "f1": [f[b:] for f in pyramid],
        }

    def decode(self, feats: dict, t) -> dict:
        """``t``: ``(N,)`` timestamps in [0, 1] (a float is broadcast); B == N, or B == 1
        and the pair is shared by all N timestamps. Returns the interpolator dict with
        ``features`` (coarse -> fine deformation features) and ``scale_weights (N, L, X, Y, Z)``."""
        b = feats["I0"].shape[0]
        t = as_timestamps(t, b, device=feats["I0"].device)
        n, chunk = max(b, t.numel()), self.config.decode_chunk
        if chunk and n > chunk and feats["I0"].device.type == "cpu":
            parts = [self.decode(_slice_feats(feats, i, i + chunk), t[i : i + chunk]) for i in range(0, n, chunk)]
            return _cat_outputs(parts)
        if self.temporal is not None:
            features, fields = self.generator(feats["f0"], feats["f1"], modulation=self.temporal(t), batch=n)
        else:
            features, fields = self.generator(feats["f0"], feats["f1"], batch=n, time=t)
        if isinstance(self.fusion, FieldSpaceFusion):
            final, mask_logit, weights = self.fusion(features, fields, t)
        else:
            delta, mask_logit, weights = (self.fusion if self.fusion is not None else self.finest_head)(features)
            final = fields[-1] + delta
        out = synthesize(
            feats["I0"],
            feats["I1"],
            final,
            mask_logit + log_prior_mask(t),
            weights,
            feats["padded_shape"],
            feats["shape"],
            self.warp,
        )
        out["features"] = features
        return out

    def forward(self, I0: torch.Tensor, I1: torch.Tensor, t) -> dict:
        """Interpolate the frames at ``t`` between ``I0`` and ``I1`` (:meth:`encode`, then :meth:`decode`).

        Args:
            I0: the frame at t = 0, ``(B, 1, X, Y, Z)``, normalised intensity in [0, 1]. Any X, Y, Z:
                the network pads to its pyramid's multiple and crops its outputs back.
            I1: the frame at t = 1, same shape as ``I0``.
            t: timestamps in [0, 1], ``(N,)`` with N == B, or N timestamps of one pair (B == 1);
                a float is used for every item.

        Returns:
            The interpolator dict (docs/ARCHITECTURE.md), ``M = max(B, N)`` items, every map on
            the input grid:

            ``image``: ``(M, 1, X, Y, Z)`` the frame at ``t``, normalised intensity.
            ``u_t0``, ``u_t1``: ``(M, 3, X, Y, Z)`` displacements in voxels from the grid of time ``t``
            into ``I0`` and ``I1`` (``warp(I0, u_t0) ~ I_t``; channel ``c`` along axis ``c``).
            ``mask``: ``(M, 1, X, Y, Z)`` blend weight of ``warped0`` in [0, 1]
            (``image = mask * warped0 + (1 - mask) * warped1``).
            ``warped0``, ``warped1``: ``(M, 1, X, Y, Z)`` the inputs warped to time ``t``.
            ``scale_weights``: ``(M, L, X, Y, Z)`` the fusion's per-voxel weights over the L decoded
            scales (they sum to 1 over L; all on the finest scale with ``fusion="finest"``).
            ``features``: L deformation features, coarse -> fine, ``(M, C_l, X_l, Y_l, Z_l)`` on the
            padded grid at 1/8, 1/4, 1/2 resolution (by default), for feature distillation.
        """
        return self.decode(self.encode(I0, I1), t)


def _slice_feats(feats: dict, start: int, stop: int) -> dict:
    """Features of items ``start:stop`` (unchanged when the pair is shared, B == 1)."""
    if feats["I0"].shape[0] == 1:
        return feats
    out = dict(feats)
    for k in ("I0", "I1"):
        out[k] = feats[k][start:stop]
    for k in ("f0", "f1"):
        out[k] = [f[start:stop] for f in feats[k]]
    return out


def _cat_outputs(parts: list[dict]) -> dict:
    out = {k: torch.cat([p[k] for p in parts]) for k in parts[0] if k != "features"}
    out["features"] = [torch.cat(level) for level in zip(*(p["features"] for p in parts))]
    return out
