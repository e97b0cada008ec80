"""Baselines: linear blend, and linear motion (UVI-Net's assumption) with the endpoint
fields from a registration network (:class:`LinearMotionBaseline`) or from instance
optimisation, no network (:class:`RegisteredLinearMotion`).

Linear motion: a bidirectional registration network R gives the endpoint fields
``u_01`` (grid of frame 0 -> frame 1, ``warp(I1, u_01) ~ I0``) and ``u_10``
(grid of frame 1 -> frame 0, ``warp(I0, u_10) ~ I1``), scaled by t:

    u_t0 = t * u_10,        u_t1 = (1 - t) * u_01,
    I_t  = m * warp(I0, u_t0) + (1 - m) * warp(I1, u_t1),   m = 1 - t (fixed).

For a uniform translation d per unit time, u_10 = -d, u_01 = d and the true fields
are u_t0 = -t d, u_t1 = (1 - t) d: exact. For anything else (non-linear timing,
rotation along an arc, spatially varying motion, where t * u_10 sampled on the
grid of time t is not the field on that grid) it is an approximation: the gap the
student closes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvBlock, as_timestamps, crop, expand_batch, flow_head, pad_to_multiple
from .config import JSONConfig
from .warp import Warper, warp


def _t5(t: torch.Tensor) -> torch.Tensor:
    return t.view(-1, 1, 1, 1, 1)


def linear_blend(I0: torch.Tensor, I1: torch.Tensor, t) -> dict:
    """``I_t = (1 - t) I0 + t I1`` (zero fields, mask 1 - t). ``t``: ``(N,)``, B == N or B == 1."""
    t = _t5(as_timestamps(t, I0.shape[0], I0.device)).to(I0.dtype)
    n = max(I0.shape[0], t.shape[0])
    I0, I1 = expand_batch(I0, n), expand_batch(I1, n)
    mask = (1 - t).expand(n, 1, *I0.shape[2:])
    zeros = I0.new_zeros((n, 3, *I0.shape[2:]))
    return {
        "image": mask * I0 + (1 - mask) * I1,
        "u_t0": zeros,
        "u_t1": zeros,
        "mask": mask,
        "warped0": I0,
        "warped1": I1,
    }


def linear_motion_fields(u_01: torch.Tensor, u_10: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
    """``u_t0 = t * u_10``, ``u_t1 = (1 - t) * u_01``; fields ``(B, 3, ...)``, ``t (N,)``."""
    t = _t5(as_timestamps(t, u_01.shape[0], u_01.device)).to(u_01.dtype)
    return t * u_10, (1 - t) * u_01


def linear_motion_interpolate(I0, I1, u_01, u_10, t) -> dict:
    """Linear-motion interpolation from given endpoint fields (e.g. a phantom's true
    ones, or a registration network's). Returns the interpolator dict."""
    u_t0, u_t1 = linear_motion_fields(u_01, u_10, t)
    n = u_t0.shape[0]
    t = as_timestamps(t, u_01.shape[0], u_01.device)
    mask = _t5(1 - t).to(I0.dtype).expand(n, 1, *I0.shape[2:])
    warped0, warped1 = warp(I0, u_t0), warp(I1, u_t1)
    return {
        "image": mask * warped0 + (1 - mask) * warped1,
        "u_t0": u_t0,
        "u_t1": u_t1,
        "mask": mask,
        "warped0": warped0,
        "warped1": warped1,
    }


@dataclass
class RegistrationConfig(JSONConfig):
    """Sizes of the linear-motion baseline's registration U-Net."""

    in_channels: int = 1
    encoder_channels: tuple[int, ...] = (16, 32, 32, 32)  # VoxelMorph-sized: 1/2 .. 1/16 resolution
    decoder_channels: tuple[int, ...] = (32, 32, 32, 32)  # 1/8 .. full resolution (with skips)
    final_channels: tuple[int, ...] = (16, 16)  # extra full-resolution convs


class RegistrationNet(nn.Module):
    """VoxelMorph-style U-Net on concat(fixed, moving) predicting the field on the fixed
    grid into the moving image. Bidirectional by running both orders in one batch:
    ``u_01 = R(I0, I1)``, ``u_10 = R(I1, I0)``. Full-resolution output."""

    def __init__(self, config: RegistrationConfig | None = None):
        super().__init__()
        self.config = c = config or RegistrationConfig()
        if len(c.decoder_channels) != len(c.encoder_channels):
            raise ValueError("RegistrationConfig: decoder_channels needs one entry per encoder level")
        self.multiple = 2 ** len(c.encoder_channels)
        self.down = nn.ModuleList()
        skips, ch = [2 * c.in_channels], 2 * c.in_channels
        for out in c.encoder_channels:
            self.down.append(ConvBlock(ch, out, stride=2))
            ch = out
            skips.append(out)
        skips = skips[:-1][::-1]  # skip channels, 1/8 ... full resolution
        self.up = nn.ModuleList()
        for out, skip in zip(c.decoder_channels, skips):
            self.up.append(ConvBlock(ch + skip, out))
            ch = out
        self.final = nn.Sequential(
            *[ConvBlock(a, b) for a, b in zip((ch,) + tuple(c.final_channels), c.final_channels)]
        )
        self.flow = flow_head(c.final_channels[-1] if c.final_channels else ch, 3, std=1e-5)

    def register(self, fixed: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
        """Field on ``fixed``'s grid into ``moving``: ``warp(moving, u) ~ fixed``, ``(B, 3, X, Y, Z)``."""
        shape = fixed.shape[2:]
        x = pad_to_multiple(torch.cat([fixed, moving], dim=1), self.multiple)
        skips = []
        for down in self.down:
            skips.append(x)
            x = down(x)
        for up, skip in zip(self.up, reversed(skips)):
            x = F.interpolate(x, size=skip.shape[2:], mode="trilinear", align_corners=False)
            x = up(torch.cat([x, skip], dim=1))
        return crop(self.flow(self.final(x)), shape)

    def forward(self, I0: torch.Tensor, I1: torch.Tensor) -> dict:
        """Register ``I0`` and ``I1`` in both directions (one batch of both orders).

        Args:
            I0: the frame at t = 0, ``(B, 1, X, Y, Z)``, normalised intensity in [0, 1] (any X, Y, Z).
            I1: the frame at t = 1, same shape as ``I0``.

        Returns:
            ``{"u_01", "u_10"}``, each ``(B, 3, X, Y, Z)`` in voxels: ``u_01`` on the grid of ``I0`` into
            ``I1`` (``warp(I1, u_01) ~ I0``), ``u_10`` on the grid of ``I1`` into ``I0``
            (``warp(I0, u_10) ~ I1``).
        """
        b = I0.shape[0]
        u = self.register(torch.cat([I0, I1]), torch.cat([I1, I0]))  # (2B, 3, X, Y, Z)
        return {"u_01": u[:b], "u_10": u[b:]}


class LinearMotionBaseline(nn.Module):
    """UVI-Net-style linear motion around a registration network (see module docstring)."""

    def __init__(self, reg: RegistrationNet):
        super().__init__()
        self.reg = reg

    def interpolate(self, I0: torch.Tensor, I1: torch.Tensor, t) -> dict:
        f = self.reg(I0, I1)
        out = linear_motion_interpolate(I0, I1, f["u_01"], f["u_10"], t)
        out.update(f)
        return out

    forward = interpolate


class ExactIdentityWarper(Warper):
    """:class:`~interp4d_lite.models.Warper` minus its rounding error at zero displacement:
    ``warp(I, u) - (warp(I, 0) - I)``. Grid sampling at the identity grid is off by about
    1e-6 (float rounding of the normalised grid); Adam scales its steps to the gradient's size,
    so that noise alone would move a registration of two identical images. Same gradient."""

    def forward(self, image: torch.Tensor, disp: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            offset = super().forward(image, torch.zeros_like(disp)) - image
        return super().forward(image, disp) - offset


class InstanceRegistration(nn.Module):
    """Bidirectional registration of two images by instance optimisation, no network and no
    training: ``u_01`` (``warp(I1, u_01) ~ I0``) and ``u_10`` (``warp(I0, u_10) ~ I1``), each
    input the other's target, fitted together by the package's registration,
    :func:`~interp4d_lite.models.registration.register_images` (``steps`` Adam steps of ``lr``
    voxels on a 1/``scale`` grid, Charbonnier + its noise correction + ``smooth`` * gradient
    smoothness, warping with :class:`ExactIdentityWarper`; ``noise`` and ``blur`` as there). The
    same inputs give the same fields (nothing random); identical inputs give exactly zero fields."""

    def __init__(
        self, steps: int = 60, lr: float = 0.1, smooth: float = 1.0, scale: int = 4, noise="auto", blur: float = 0.0
    ):
        super().__init__()
        if int(steps) < 0:
            raise ValueError(f"InstanceRegistration: steps must be >= 0, got {steps}")
        self.steps, self.lr, self.smooth, self.scale = int(steps), float(lr), float(smooth), int(scale)
        self.noise, self.blur = noise, float(blur)
        self.warper = ExactIdentityWarper()

    def forward(self, I0: torch.Tensor, I1: torch.Tensor) -> dict:
        from .registration import register_images

        u_01, u_10 = register_images(
            (I1, I0), (I0, I1), steps=self.steps, lr=self.lr, smooth=self.smooth, scale=self.scale, warper=self.warper,
            noise=self.noise, blur=self.blur,
        )  # fmt: skip
        return {"u_01": u_01, "u_10": u_10}

    def extra_repr(self) -> str:
        return (
            f"steps={self.steps}, lr={self.lr}, smooth={self.smooth}, scale={self.scale}, noise={self.noise!r}, "
            f"blur={self.blur}"
        )


class RegisteredLinearMotion(LinearMotionBaseline):
    """The classical baseline: the two inputs registered to each other by instance
    optimisation (:class:`InstanceRegistration`, ``steps`` Adam steps at 1/``scale``
    resolution), the fields scaled by t as linear motion (module docstring). No network, no
    training. ``interpolate(I0, I1, t)`` registers once for all the timestamps ``t``;
    :func:`~interp4d_lite.train.evaluate.predict_patient` registers once per patient."""

    def __init__(
        self, steps: int = 60, lr: float = 0.1, smooth: float = 1.0, scale: int = 4, noise="auto", blur: float = 0.0
    ):
        super().__init__(InstanceRegistration(steps=steps, lr=lr, smooth=smooth, scale=scale, noise=noise, blur=blur))
