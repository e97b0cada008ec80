"""The package's one registration: pairwise instance optimisation, no network, unbiased under noise.

:func:`register_images` fits, for every pair ``k``, a field ``u_k`` with ``warp(moving_k, u_k) ~
fixed_k``; :func:`register_to_frame` is its privileged case (``I0`` and ``I1`` both registered
to the real frame ``It``). The teacher's registration targets and its refinement
(:class:`~interp4d_lite.models.Teacher`), the classical baseline
(:class:`~interp4d_lite.models.RegisteredLinearMotion`) and adaptation's per-scan targets
(:mod:`interp4d_lite.adapt`) all call it.

**Why a noise correction.** Trilinear sampling at a fraction ``f`` of a voxel averages
neighbouring voxels, so the sampled image carries less noise: per axis the noise variance is
multiplied by ``(1 - f)^2 + f^2`` (1 on the grid, 1/2 half-way). An image loss between a noisy
moving image and an independent noisy fixed image is therefore lowest, on average, for a shift
of half a voxel wherever the image is flat -- the drift of a plain registration in static tissue
(0.35 voxels on a static noisy phantom). :func:`register_images` adds the loss that sampling
removes back in: with ``sigma_m``, ``sigma_f`` the noise levels of the two images (estimated by
:func:`noise_std`) and ``V(u)`` the product of the three per-axis factors at the field ``u``,
the Charbonnier term gets ``sqrt(2/pi) * (sqrt(sigma_m^2 + sigma_f^2) - sqrt(sigma_m^2 V(u) +
sigma_f^2))`` per voxel (the mean absolute value of the noise difference lost to sampling), so
its expectation no longer depends on where between voxels the field samples. Unlike a blur of
both images (the earlier remedy) it leaves the images' detail, and with it the precision where
tissue moves, alone. docs/METHOD.md ("Registration") has the measured table.
"""

from __future__ import annotations

import math

import torch

from .warp import Warper

__all__ = [
    "register_images",
    "register_to_frame",
    "noise_std",
    "sampling_noise_gain",
    "REGISTRATION_SETTINGS",
    "TARGET_STEPS",
    "teacher_settings",
]

#: the settings that differ by kind of data (measured by benchmarks/bench_targets.py), as keyword
#: arguments of :func:`register_images`: cardiac MRI (tissue that moves together, displacements of
#: a few voxels) takes the defaults, smoothness 1 and Adam steps of 0.1 voxel; breathing CT (lungs
#: that slide along the chest wall, which a smooth field cannot follow, and larger displacements)
#: a smoothness of 0.1 and steps of 0.2 voxel.
REGISTRATION_SETTINGS = {"cardiac": {"smooth": 1.0, "lr": 0.1}, "lung": {"smooth": 0.1, "lr": 0.2}}

#: Adam steps of the privileged teacher's targets and of its refinement, by kind of data: the
#: breathing CT's targets need 60 (at 20 their ``epe_moving`` is above the linear-motion
#: oracle's: 0.598 against 0.531 on the lung phantoms, 0.487 at 60; a lung student distilled
#: from 60-step targets reached 0.520 on a held-out real chest, from 20-step ones 0.582, the
#: oracle 0.566); cardiac ones gain little past 20 (0.398 at 20, 0.380 at 60) for 3x the time.
TARGET_STEPS = {"cardiac": 20, "lung": 60}


def teacher_settings(data_kind: str, steps: int | None = None) -> dict:
    """Keyword arguments of ``train.TeacherTrainConfig`` for ``data_kind``: its registration
    settings (:data:`REGISTRATION_SETTINGS`) for the privileged targets and the teacher's
    refinement, and ``steps`` Adam steps for both (default :data:`TARGET_STEPS`). Kinds without
    an entry (the linear phantom) take the cardiac ones."""
    reg = REGISTRATION_SETTINGS.get(data_kind, REGISTRATION_SETTINGS["cardiac"])
    n = TARGET_STEPS.get(data_kind, TARGET_STEPS["cardiac"]) if steps is None else int(steps)
    return {
        "target_steps": n,
        "target_smooth": reg["smooth"],
        "target_lr": reg["lr"],
        "model": {"refine_steps": n, "refine_smooth": reg["smooth"], "refine_lr": reg["lr"]},
    }


def noise_std(image: torch.Tensor) -> torch.Tensor:
    """Robust estimate of the noise standard deviation of each item of ``image (B, 1, X, Y, Z)``,
    ``(B,)`` float32, in the image's units: the median absolute deviation of the in-plane second
    difference ``d2/dx2 d2/dy2`` (which removes any image linear along x or y; 36 times the noise
    variance for white noise), times 1.4826 (a Gaussian's MAD). Edges move the median little;
    an image smaller than 3 x 3 in plane gives 0 (no estimate)."""
    x = image.detach().float()
    if x.shape[2] < 3 or x.shape[3] < 3:
        return x.new_zeros(x.shape[0])
    d = x[:, :, 2:] - 2 * x[:, :, 1:-1] + x[:, :, :-2]
    d = (d[:, :, :, 2:] - 2 * d[:, :, :, 1:-1] + d[:, :, :, :-2]).flatten(1)
    mad = (d - d.median(1, keepdim=True).values).abs().median(1).values
    return 1.4826 * mad / 6.0


def sampling_noise_gain(u: torch.Tensor) -> torch.Tensor:
    """``(B, 1, X, Y, Z)``: the factor by which trilinear sampling at ``x + u(x)`` multiplies the
    variance of white noise, ``prod_axes ((1 - f)^2 + f^2)`` with ``f`` the fraction of a voxel of
    each component of ``u (B, 3, X, Y, Z)`` (1 on the grid, 1/8 at the centre of a voxel cube)."""
    f = u - torch.floor(u)
    return (1 - 2 * f * (1 - f)).prod(1, keepdim=True)


def _blurred(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``x`` detached, float32, smoothed by a Gaussian of ``sigma`` voxels (MONAI's GaussianFilter)."""
    x = x.detach().float()
    if not sigma:
        return x
    from monai.networks.layers import GaussianFilter

    with torch.no_grad():
        return GaussianFilter(x.dim() - 2, sigma=float(sigma)).to(x.device)(x)


def _noise_level(x: torch.Tensor, noise) -> torch.Tensor:
    """``(B, 1, 1, 1, 1)`` noise standard deviation of ``x``: estimated (``"auto"``) or given."""
    if isinstance(noise, str):
        if noise != "auto":
            raise ValueError(f"register_images: noise must be 'auto' or a number >= 0, got {noise!r}")
        return noise_std(x).view(-1, 1, 1, 1, 1)
    if not math.isfinite(float(noise)) or float(noise) < 0:
        raise ValueError(f"register_images: noise must be 'auto' or a number >= 0, got {noise!r}")
    return x.new_full((x.shape[0], 1, 1, 1, 1), float(noise))


def register_images(
    moving,
    fixed,
    init=None,
    steps: int = 60,
    lr: float = 0.1,
    smooth: float = 1.0,
    scale: int = 4,
    warper: Warper | None = None,
    noise="auto",
    blur: float = 0.0,
) -> list[torch.Tensor]:
    """Pairwise registration by instance optimisation (no network): a field ``u_k`` on the
    grid of ``fixed[k]`` with ``warp(moving[k], u_k) ~ fixed[k]`` for every pair ``k``.

    All pairs are fitted together: a residual on a coarse grid (1/``scale`` of the image,
    trilinearly upsampled) to ``sum_k [Charbonnier(warp(moving_k, u_k), fixed_k) + noise
    correction_k] + smooth * sum_k gradient_smoothness(u_k)``, ``steps`` Adam steps of ``lr``
    voxels, from ``init`` (one field per pair, default zero). The noise correction (module
    docstring) removes the half-voxel drift that noise causes in static tissue without blurring
    the images. No randomness: the same images give the same fields. (Two identical images give
    exactly zero fields with :class:`~interp4d_lite.models.baselines.ExactIdentityWarper` as
    ``warper``: a pair whose images are equal shares its noise, so it gets no correction.)

    Args:
        moving, fixed: sequences of ``(B, 1, X, Y, Z)`` images (B == 1 is broadcast).
        init: optional sequence of ``(B, 3, X, Y, Z)`` fields, voxels.
        steps, lr: Adam steps and step size (voxels); ``lr`` differs by modality
            (:data:`REGISTRATION_SETTINGS`).
        smooth: weight of the gradient smoothness of the fields; differs by modality
            (:data:`REGISTRATION_SETTINGS`: 1 for cardiac MRI, 0.1 for breathing CT).
        scale: the residual lives on a grid 1/``scale`` of the image.
        noise: the images' noise standard deviation in their intensity units for the correction:
            ``"auto"`` estimates it per image (:func:`noise_std`), 0 switches the correction off.
        blur: Gaussian sigma (voxels) both images are smoothed by before the comparison (0 = none;
            the earlier remedy for the drift, which costs precision where tissue moves).
    Returns:
        a list of ``(B, 3, X, Y, Z)`` float32 fields in voxels, detached.
    """
    from ..losses import charbonnier, gradient_smoothness
    from .blocks import resize

    moving, fixed = list(moving), list(fixed)
    if len(moving) != len(fixed) or not moving:
        raise ValueError(f"register_images: {len(moving)} moving and {len(fixed)} fixed images; give pairs")
    warper = warper or Warper()
    shape = fixed[0].shape[2:]
    b = max(x.shape[0] for x in moving + fixed)
    n = len(moving)
    if init is None:
        u = fixed[0].new_zeros((b, 3 * n, *shape), dtype=torch.float32)
    else:
        u = torch.cat(list(init), dim=1).detach().float()
    mov = [_blurred(x, blur).expand(b, *x.shape[1:]) for x in moving]
    fix = [_blurred(x, blur).expand(b, *x.shape[1:]) for x in fixed]
    # per pair: (var_moving, var_fixed) of independent noise, or None (no correction)
    var = []
    for m, x in zip(mov, fix):
        if (not isinstance(noise, str) and float(noise) == 0) or torch.equal(m, x):
            var.append(None)
        else:
            var.append((_noise_level(m, noise).pow(2), _noise_level(x, noise).pow(2)))
    small = tuple(max(2, s // max(1, scale)) for s in shape)
    r = torch.zeros((b, 3 * n, *small), device=u.device)
    if steps > 0:
        with torch.enable_grad():
            r.requires_grad_(True)
            opt = torch.optim.Adam([r], lr=lr)
            for _ in range(steps):
                v = u + resize(r, shape)
                loss = 0.0
                for k in range(n):
                    f = v[:, 3 * k : 3 * k + 3]
                    loss = loss + charbonnier(warper(mov[k], f), fix[k]) + smooth * gradient_smoothness(f)
                    if var[k] is not None:
                        vm, vf = var[k]
                        lost = torch.sqrt(vm + vf) - torch.sqrt(vm * sampling_noise_gain(f) + vf)
                        loss = loss + math.sqrt(2 / math.pi) * lost.mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    with torch.no_grad():
        v = u + resize(r.detach(), shape)
    return [v[:, 3 * k : 3 * k + 3].contiguous() for k in range(n)]


def register_to_frame(I0: torch.Tensor, I1: torch.Tensor, It: torch.Tensor, init=None, **kwargs):
    """Register both inputs to the frame at t: ``(u_t0, u_t1)`` with ``warp(I0, u_t0) ~ It`` and
    ``warp(I1, u_t1) ~ It`` (:func:`register_images` with ``moving = (I0, I1)``, ``fixed = (It,
    It)``; keyword arguments as there). It needs the real ``It``, so it is the privileged
    teacher's: its registration targets (from zero) and its refinement (from the network's
    fields), and adaptation's per-scan targets.

    Args:
        I0, I1, It: ``(B, 1, X, Y, Z)`` images (I0/I1 may have B == 1).
        init: optional ``(u_t0, u_t1)``, each ``(B, 3, X, Y, Z)`` voxels.
    Returns:
        ``(u_t0, u_t1)``, each ``(B, 3, X, Y, Z)`` float32 voxels, detached.
    """
    u_t0, u_t1 = register_images((I0, I1), (It, It), init=init, **kwargs)
    return u_t0, u_t1
