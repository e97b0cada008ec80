"""Losses against values computed by hand."""

import math

import pytest
import torch

from interp4d_lite.losses import (
    LocalNCCLoss,
    bending_energy,
    charbonnier,
    feature_distillation_loss,
    field_distillation_loss,
    gradient_smoothness,
    local_ncc_loss,
    motion_balanced_weights,
    teacher_better_weights,
)


def test_charbonnier_known_values():
    x = torch.zeros(2, 1, 4, 4, 4)
    assert charbonnier(x, x, eps=1e-3).item() == pytest.approx(1e-3)
    y = x + 0.5
    assert charbonnier(x, y, eps=1e-3).item() == pytest.approx(math.sqrt(0.25 + 1e-6), rel=1e-6)
    w = torch.zeros(2, 1, 4, 4, 4)
    w[0] = 1
    y[0] = 0.0  # weighted to the first item, where the difference is zero
    assert charbonnier(x, y, eps=1e-3, weights=w).item() == pytest.approx(1e-3)


def _direct_local_ncc2(p, t, win=9):
    """Squared local NCC by brute force over zero-padded win^3 windows, float64."""
    p, t = p.double(), t.double()
    r = win // 2
    pad = lambda v: torch.nn.functional.pad(v, [r] * 6)
    P = pad(p).unfold(2, win, 1).unfold(3, win, 1).unfold(4, win, 1).flatten(-3)
    T = pad(t).unfold(2, win, 1).unfold(3, win, 1).unfold(4, win, 1).flatten(-3)
    mp, mt = P.mean(-1), T.mean(-1)
    cov = (P * T).mean(-1) - mp * mt
    vp, vt = (P * P).mean(-1) - mp**2, (T * T).mean(-1) - mt**2
    return (cov**2 / (vp * vt)).mean()


def test_local_ncc_matches_direct_computation():
    g = torch.Generator().manual_seed(0)
    t = torch.rand(1, 1, 14, 12, 11, generator=g)
    p = 0.6 * t + 0.4 * torch.rand(1, 1, 14, 12, 11, generator=g)
    direct = _direct_local_ncc2(p, t).item()
    assert 0.2 < direct < 0.95  # partially correlated: a meaningful comparison
    assert (1 - local_ncc_loss(p, t, window=9)).item() == pytest.approx(direct, abs=1e-4)
    assert LocalNCCLoss(9)(t, t).item() == pytest.approx(0.0, abs=1e-4)
    # invariant to intensity scaling (an offset is not exact at the border: the zero padding
    # is not offset with the image)
    assert LocalNCCLoss(9)(2 * t, t).item() == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("shape", [(1, 1, 14, 12, 11), (2, 1, 20, 9, 7), (1, 1, 5, 6, 3)])
def test_local_ncc_box_sums_equal_monai(shape):
    """The default local NCC (box sums of shifted slices) is MONAI's loss up to float rounding:
    the same value and the same gradient, also for volumes smaller than the window."""
    g = torch.Generator().manual_seed(1)
    t = torch.rand(shape, generator=g)
    p0 = 0.6 * t + 0.4 * torch.rand(shape, generator=g)
    values, grads = [], []
    for reference in (False, True):
        p = p0.clone().requires_grad_(True)
        loss = LocalNCCLoss(9, reference=reference)(p, t)
        loss.backward()
        values.append(loss.detach())
        grads.append(p.grad)
    torch.testing.assert_close(values[0], values[1], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-5 * float(grads[1].abs().max()))


def test_gradient_smoothness_known_values():
    x = torch.arange(8.0).view(1, 1, 8, 1, 1).expand(1, 3, 8, 6, 5)
    assert gradient_smoothness(torch.zeros(1, 3, 8, 6, 5) + 3.0).item() == 0.0
    # u = a * x in every channel: d/dx = a, d/dy = d/dz = 0 -> (a^2 + 0 + 0) / 3
    assert gradient_smoothness(0.5 * x).item() == pytest.approx(0.25 / 3)


def test_bending_energy_quadratic_field():
    x = torch.arange(10.0).view(1, 10, 1, 1).expand(1, 10, 9, 8)
    u = torch.zeros(1, 3, 10, 9, 8)
    assert bending_energy(u + 0.3 * x[:, None]).item() == pytest.approx(0.0, abs=1e-6)  # affine: no bending
    u[:, 0] = 0.5 * x**2  # d2u0/dx2 = 1 everywhere, all else 0 -> mean over 3 channels = 1/3
    assert bending_energy(u).item() == pytest.approx(1 / 3, rel=1e-4)


def test_field_distillation_detaches_teacher_and_weights_voxels():
    s = torch.zeros(1, 3, 4, 4, 4, requires_grad=True)
    t = torch.ones(1, 3, 4, 4, 4, requires_grad=True)
    loss = field_distillation_loss((s, s), (t, t), eps=1e-3)
    assert loss.item() == pytest.approx(math.sqrt(1 + 1e-6), rel=1e-6)
    loss.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None
    w = torch.zeros(1, 1, 4, 4, 4)
    w[..., 0] = 1.0
    s2 = torch.ones(1, 6, 4, 4, 4)
    s2[..., 0] = 0.0  # differs from the teacher only where the weight is 1
    assert field_distillation_loss(s2, torch.ones(1, 6, 4, 4, 4), weights=w).item() == pytest.approx(1.0, abs=1e-5)


def test_teacher_better_weights():
    target = torch.zeros(1, 1, 2, 2, 1)
    student = torch.tensor([0.5, 0.0, 0.2, 0.005]).view(1, 1, 2, 2, 1)
    teacher = torch.tensor([0.0, 0.5, 0.2, 0.0]).view(1, 1, 2, 2, 1)
    w = teacher_better_weights(student, teacher, target, margin=0.01)
    assert w.flatten().tolist() == [1.0, 0.0, 0.0, 0.0]  # last: better, but within the margin


def test_motion_balanced_weights_give_moving_and_static_voxels_half_the_weight_each():
    u0 = torch.zeros(2, 3, 10, 10, 1)
    u1 = torch.zeros(2, 3, 10, 10, 1)
    u0[0, 2, :1] = 2.0  # sample 0: 10 of 100 voxels move 2 voxels (u_t0)
    u1[0, 0, 1, :5] = -0.7  # ... and 5 more move 0.7 voxel (u_t1): 15 moving
    u1[0, 0, 2, :5] = 0.3  # below the threshold: static
    w = motion_balanced_weights((u0, u1), threshold=0.5)  # sample 1 does not move at all
    assert w.shape == (2, 1, 10, 10, 1)
    moving = torch.zeros(10, 10, 1, dtype=torch.bool)
    moving[:1] = True
    moving[1, :5] = True
    assert w[0, 0][moving].sum().item() == pytest.approx(50.0) and w[0, 0][~moving].sum().item() == pytest.approx(50.0)
    assert w[0, 0][moving].unique().numel() == 1 and w[0, 0][~moving].unique().numel() == 1
    torch.testing.assert_close(w[1], torch.ones(1, 10, 10, 1))  # no moving voxel: uniform
    torch.testing.assert_close(motion_balanced_weights(torch.cat([u0, u1], 1), threshold=0.5), w)  # one tensor alike
    assert torch.equal(motion_balanced_weights(torch.full((1, 3, 2, 2, 2), 5.0)), torch.ones(1, 1, 2, 2, 2))  # all move
    # the static background no longer outweighs the moving tissue in the field loss
    student = (torch.zeros_like(u0), torch.zeros_like(u1))
    plain = field_distillation_loss(student, (u0, u1)).item()
    balanced = field_distillation_loss((student[0][:1], student[1][:1]), (u0[:1], u1[:1]), weights=w[:1]).item()
    assert balanced > 5 * plain


def test_feature_distillation_loss():
    s = [torch.zeros(1, 4, 2, 2, 2, requires_grad=True), torch.zeros(1, 2, 4, 4, 4, requires_grad=True)]
    t = [torch.full((1, 4, 2, 2, 2), 2.0), torch.full((1, 2, 4, 4, 4), 1.0)]
    loss = feature_distillation_loss(s, t)
    assert loss.item() == pytest.approx((4.0 + 1.0) / 2)
    loss.backward()
    assert all(x.grad is not None for x in s)
    with pytest.raises(ValueError, match="level 1"):
        feature_distillation_loss(s, [t[0], torch.zeros(1, 3, 4, 4, 4)])
