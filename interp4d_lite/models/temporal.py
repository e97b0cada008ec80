"""Temporal modulation: the timestamp t becomes per-level FiLM parameters.

t -> sinusoidal embedding -> MLP -> for every decoder level (gamma, beta), applied as
``feat * (1 + gamma) + beta`` so a freshly initialised network is near the identity
and one network serves every t (the paper's "temporal modulated deformation feature
generator").
"""

from __future__ import annotations

import math

import torch
from torch import nn


class TimeEmbedding(nn.Module):
    """``t (N,)`` -> ``(N, 1 + 2 * n_freqs)``: [t, sin(2^k pi t), cos(2^k pi t)], k < n_freqs."""

    def __init__(self, n_freqs: int = 6):
        super().__init__()
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(n_freqs, dtype=torch.float32), persistent=False)
        self.dim = 1 + 2 * n_freqs

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        x = t.reshape(-1, 1) * self.freqs  # (N, n_freqs)
        return torch.cat([t.reshape(-1, 1), torch.sin(x), torch.cos(x)], dim=1)


class TemporalModulation(nn.Module):
    """FiLM from t: ``forward(t) -> [(gamma, beta), ...]`` one pair per decoder level,
    each ``(N, C_l, 1, 1, 1)``. Use :func:`film` to apply."""

    def __init__(self, channels: tuple[int, ...], n_freqs: int = 6, hidden: int = 64):
        super().__init__()
        self.embed = TimeEmbedding(n_freqs)
        self.mlp = nn.Sequential(nn.Linear(self.embed.dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.heads = nn.ModuleList([nn.Linear(hidden, 2 * c) for c in channels])
        for head in self.heads:  # small, not zero: near-identity start, gradients still flow
            nn.init.normal_(head.weight, std=1e-2)
            nn.init.zeros_(head.bias)

    def forward(self, t: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        h = self.mlp(self.embed(t))  # (N, hidden)
        out = []
        for head in self.heads:
            gamma, beta = head(h)[:, :, None, None, None].chunk(2, dim=1)  # (N, C, 1, 1, 1) each
            out.append((gamma, beta))
        return out


def film(feat: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Feature-wise linear modulation, identity when gamma = beta = 0."""
    return feat * (1 + gamma) + beta
