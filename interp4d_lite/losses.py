"""Training losses (docs/METHOD.md, "Losses"), MONAI where it is the field's standard.

* image similarity: :func:`charbonnier`, :class:`LocalNCCLoss` / :func:`local_ncc_loss`
  (window 9, squared local NCC, MONAI's ``LocalNormalizedCrossCorrelationLoss``);
* smoothness of fields ``(B, 3, X, Y, Z)``: :func:`gradient_smoothness` (L2 of forward
  differences), :func:`bending_energy` (MONAI ``BendingEnergyLoss``);
* distillation: :func:`field_distillation_loss` (Charbonnier on student - teacher
  fields, teacher detached, optional per-voxel weights), :func:`motion_balanced_weights`
  (moving and static voxels weighted alike), :func:`teacher_better_weights`
  (RIFE: distil only where the teacher's frame is better), :func:`feature_distillation_loss`
  (MSE between decoder features, level by level).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from monai.losses import BendingEnergyLoss, LocalNormalizedCrossCorrelationLoss


def charbonnier(
    pred: torch.Tensor, target: torch.Tensor | None = None, eps: float = 1e-3, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean of ``sqrt((pred - target)^2 + eps^2)`` (a smooth L1); ``target=None`` means 0.
    ``weights`` (broadcastable to ``pred``) give a weighted mean."""
    diff = pred if target is None else pred - target
    loss = torch.sqrt(diff * diff + eps * eps)
    if weights is None:
        return loss.mean()
    weights = weights.expand_as(loss)
    return (loss * weights).sum() / weights.sum().clamp_min(1e-8)


class LocalNCCLoss(nn.Module):
    """``1 - mean(local NCC^2)`` over windows of ``window^3`` voxels (rectangular, zero
    padded at the border as VoxelMorph/UVI-Net do). 0 for identical volumes,
    1 for no local correlation. Inputs ``(B, 1, X, Y, Z)``.

    The formula is MONAI's ``LocalNormalizedCrossCorrelationLoss`` (rectangular kernel,
    ``smooth_dr = 1e-5``), which ``reference=True`` runs as is. By default the window sums
    are box sums of shifted slices (``window - 1`` additions per axis) instead of MONAI's
    separable convolutions: the same sums up to float rounding (tests/test_losses.py), and
    on a CPU the training step's loss with its gradient is several times faster (a 1-channel
    convolution's backward is slow there; ``benchmarks/bench_models.py --compare``)."""

    def __init__(self, window: int = 9, reference: bool = False):
        super().__init__()
        if window < 1 or window % 2 == 0:
            raise ValueError(f"local NCC window must be a positive odd number, got {window}")
        self.window = int(window)
        self.smooth_dr = 1e-5  # MONAI's default
        self.ncc = (
            LocalNormalizedCrossCorrelationLoss(spatial_dims=3, kernel_size=window, kernel_type="rectangular")
            if reference
            else None
        )

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.ncc is not None:
            return 1 + self.ncc(pred, target)  # MONAI returns -mean(NCC^2)
        if pred.dim() != 5 or pred.shape != target.shape:
            raise ValueError(f"local NCC needs two (B, C, X, Y, Z) volumes of one shape, got {tuple(pred.shape)} "
                             f"and {tuple(target.shape)}")  # fmt: skip
        box = lambda v: _box_sum(v, self.window)  # noqa: E731
        t_sum, p_sum = box(target), box(pred)
        t2_sum, p2_sum, tp_sum = box(target * target), box(pred * pred), box(target * pred)
        vol = float(self.window**3)
        t_avg, p_avg = t_sum / vol, p_sum / vol
        cross = tp_sum - p_avg * t_sum
        t_var = torch.clamp_min(t2_sum - t_avg * t_sum, self.smooth_dr)
        p_var = torch.clamp_min(p2_sum - p_avg * p_sum, self.smooth_dr)
        return 1 - torch.mean(cross * cross / (t_var * p_var))


def _box_sum(x: torch.Tensor, window: int) -> torch.Tensor:
    """Sum of ``x`` over the ``window^3`` box around each voxel, zero outside the volume:
    along each spatial axis, ``window`` shifted slices of the zero-padded volume added up."""
    r = window // 2
    for axis in (2, 3, 4):
        n = x.shape[axis]
        pad = [0, 0] * (4 - axis) + [r, r]  # F.pad lists the last axis first
        xp = torch.nn.functional.pad(x, pad)
        acc = xp.narrow(axis, 0, n)
        for k in range(1, window):
            acc = acc + xp.narrow(axis, k, n)
        x = acc
    return x


_NCC = {}


def local_ncc_loss(pred: torch.Tensor, target: torch.Tensor, window: int = 9, reference: bool = False) -> torch.Tensor:
    """Functional :class:`LocalNCCLoss` (``reference=True``: MONAI's loss itself)."""
    key = (window, bool(reference))
    if key not in _NCC:
        _NCC[key] = LocalNCCLoss(window, reference=reference)
    return _NCC[key](pred, target)


def gradient_smoothness(u: torch.Tensor) -> torch.Tensor:
    """Mean squared forward difference of a field ``(B, C, X, Y, Z)`` along the three
    axes (VoxelMorph's ``Grad('l2')``)."""
    dx = u[:, :, 1:] - u[:, :, :-1]
    dy = u[:, :, :, 1:] - u[:, :, :, :-1]
    dz = u[:, :, :, :, 1:] - u[:, :, :, :, :-1]
    return (dx.pow(2).mean() + dy.pow(2).mean() + dz.pow(2).mean()) / 3


_BENDING = BendingEnergyLoss(normalize=False)


def bending_energy(u: torch.Tensor) -> torch.Tensor:
    """MONAI bending energy of ``(B, 3, X, Y, Z)``: mean over voxels and channels of
    ``sum_ij (d2u/dx_i dx_j)^2`` (central differences, voxel units); every spatial size
    must be > 4. (MONAI 1.6 indexes with a list, which torch >= 2.9 warns about; the
    value is checked against a quadratic field in tests/test_losses.py.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _BENDING(u)


def _stack_fields(u) -> torch.Tensor:
    return torch.cat(list(u), dim=1) if isinstance(u, (list, tuple)) else u


def field_distillation_loss(
    student_u, teacher_u, weights: torch.Tensor | None = None, eps: float = 1e-3
) -> torch.Tensor:
    """Charbonnier between student and (detached) teacher fields. Each argument is a
    tensor ``(B, 3k, X, Y, Z)`` or a sequence of fields, e.g. ``(u_t0, u_t1)``;
    ``weights (B, 1, X, Y, Z)`` (e.g. :func:`teacher_better_weights`) weight the voxels."""
    s, t = _stack_fields(student_u), _stack_fields(teacher_u).detach()
    return charbonnier(s, t, eps=eps, weights=weights)


@torch.no_grad()
def motion_balanced_weights(fields, threshold: float = 0.5) -> torch.Tensor:
    """Per-voxel weights ``(B, 1, X, Y, Z)`` that give the voxels where the target fields move
    (largest displacement over the fields > ``threshold`` voxels) and the static voxels half the
    weight each, per sample (the weights average 1). Where a sample has no moving (or no static)
    voxel, its weights are uniform. ``fields``: a tensor ``(B, 3k, X, Y, Z)`` or a sequence of
    fields, e.g. the teacher's ``(u_t0, u_t1)``; no gradient.

    Why: a beating heart or a breathing lung moves in a few per cent of a volume. Averaged over
    every voxel, a field loss is then nearly all static background, and a student that predicts
    no motion at all is close to its optimum; balanced, the moving tissue counts as much as the
    rest."""
    u = _stack_fields(fields).detach().float()
    b = u.shape[0]
    mag = u.reshape(b, -1, 3, *u.shape[2:]).norm(dim=2).amax(dim=1, keepdim=True)  # (B, 1, X, Y, Z)
    moving = (mag > threshold).float()
    n = moving[0].numel()
    frac = moving.flatten(1).mean(dim=1).view(b, 1, 1, 1, 1)
    both = (frac > 0) & (frac < 1)
    w = torch.where(moving > 0, 0.5 / frac.clamp_min(1.0 / n), 0.5 / (1 - frac).clamp_min(1.0 / n))
    return torch.where(both, w, torch.ones_like(w))


@torch.no_grad()
def teacher_better_weights(
    student_image: torch.Tensor, teacher_image: torch.Tensor, target: torch.Tensor, margin: float = 0.01
) -> torch.Tensor:
    """RIFE's mask: 1 where the teacher's frame error is smaller than the student's by
    more than ``margin`` (intensity units), else 0. ``(B, 1, X, Y, Z)``, no gradient."""
    err_s = (student_image - target).abs().mean(dim=1, keepdim=True)
    err_t = (teacher_image - target).abs().mean(dim=1, keepdim=True)
    return (err_s > err_t + margin).to(student_image.dtype)


def feature_distillation_loss(
    student_feats: Sequence[torch.Tensor], teacher_feats: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Mean over levels of the MSE between decoder features (teacher detached). Levels
    must have equal shapes (student and teacher share ``decoder_channels``)."""
    if len(student_feats) != len(teacher_feats):
        raise ValueError(f"{len(student_feats)} student feature levels vs {len(teacher_feats)} teacher levels")
    losses = []
    for i, (s, t) in enumerate(zip(student_feats, teacher_feats)):
        if s.shape != t.shape:
            raise ValueError(f"feature level {i}: student {tuple(s.shape)} vs teacher {tuple(t.shape)}")
        losses.append((s - t.detach()).pow(2).mean())
    return torch.stack(losses).mean()
