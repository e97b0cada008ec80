"""Metrics on known values."""

import math

import numpy as np
import pytest
import torch

from interp4d_lite.metrics import (
    endpoint_error,
    folding_percent,
    frame_metrics,
    jacobian_determinant,
    local_ncc,
    nmse,
    psnr,
    ssim3d,
)


def _gt(shape=(24, 24, 16), seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def test_identical_volumes():
    g = _gt()
    assert psnr(g, g) == math.inf
    assert ssim3d(g, g) == pytest.approx(1.0, abs=1e-5)
    assert local_ncc(g, g) == pytest.approx(1.0, abs=1e-4)
    assert nmse(g, g) == 0.0


def test_known_psnr_and_nmse():
    g = _gt() * 0.8
    assert psnr(g + 0.1, g) == pytest.approx(20.0, abs=1e-4)  # MSE = 0.01
    assert nmse(g + 0.1, g) == pytest.approx(0.01 / float(np.mean(g.astype(np.float64) ** 2)), rel=1e-4)
    noisy = g + np.random.default_rng(1).normal(0, 0.01, g.shape).astype(np.float32)
    assert psnr(noisy, g) == pytest.approx(40.0, abs=0.1)  # sigma 0.01 -> 40 dB


def test_batches_torch_and_reduction():
    g = torch.from_numpy(_gt())[None, None].repeat(2, 1, 1, 1, 1)
    p = g.clone()
    p[1] += 0.1
    vals = psnr(p, g, reduction="none")
    assert vals.shape == (2,) and vals[0] == math.inf and vals[1] == pytest.approx(20.0, abs=1e-4)


def test_ssim_and_ncc_degrade_with_noise():
    g = _gt()
    rng = np.random.default_rng(2)
    small = g + rng.normal(0, 0.02, g.shape).astype(np.float32)
    large = g + rng.normal(0, 0.2, g.shape).astype(np.float32)
    assert 1.0 > ssim3d(small, g) > ssim3d(large, g)
    assert 1.0 > local_ncc(small, g) > local_ncc(large, g) > 0.0


def test_endpoint_error_voxels_and_mm():
    u_true = np.zeros((3, 6, 5, 4), np.float32)
    u_pred = u_true.copy()
    u_pred[0], u_pred[1] = 3.0, 4.0
    assert endpoint_error(u_pred, u_true) == pytest.approx(5.0)
    assert endpoint_error(u_pred, u_true, spacing=(2.0, 1.0, 5.0)) == pytest.approx(math.sqrt(36 + 16))


def test_folding_percent_known_fold():
    shape = (10, 8, 6)
    assert folding_percent(np.zeros((3, *shape))) == 0.0
    # x -> x + u with u_x = -2x: det = 1 - 2 = -1 everywhere
    u = np.zeros((3, *shape), np.float32)
    u[0] = -2 * np.arange(shape[0])[:, None, None]
    assert folding_percent(u) == 100.0
    assert jacobian_determinant(u).mean().item() == pytest.approx(-1.0)
    # a pure scaling by 1.5 along y: det = 1.5, no folds
    v = np.zeros((3, *shape), np.float32)
    v[1] = 0.5 * np.arange(shape[1])[None, :, None]
    assert jacobian_determinant(v).mean().item() == pytest.approx(1.5)
    # fold only in the first 4 of 10 x-planes: slope -2 there, +0.5 elsewhere (central differences
    # mix the two slopes on the boundary plane x=4: (u[5]-u[3])/2 = (-7.5+6)/2... computed below)
    w = np.zeros((3, *shape), np.float32)
    xs = np.arange(shape[0], dtype=np.float32)
    w[0] = np.where(xs < 4, -2 * xs, -8 + 0.5 * (xs - 4))[:, None, None]
    det = 1 + np.gradient(w[0], axis=0)
    expected = 100.0 * np.mean(det <= 0)
    assert folding_percent(w) == pytest.approx(expected)
    assert 30.0 <= expected <= 50.0


def test_frame_metrics_keys():
    g = _gt()
    u = np.zeros((3, *g.shape), np.float32)
    m = frame_metrics(g, g, u_pred=u, u_true=u + 1.0, spacing=(1.0, 1.0, 2.0))
    assert set(m) == {"psnr", "ncc", "ssim", "nmse", "folding_percent", "epe_vox", "epe_mm"}
    assert m["epe_vox"] == pytest.approx(math.sqrt(3)) and m["epe_mm"] == pytest.approx(math.sqrt(6))
    assert set(frame_metrics(g, g)) == {"psnr", "ncc", "ssim", "nmse"}


def test_epe_moving_counts_only_moving_voxels():
    from interp4d_lite.metrics import epe_moving

    g0 = torch.zeros(1, 3, 8, 8, 8)
    g1 = torch.zeros(1, 3, 8, 8, 8)
    g0[:, 0, :4] = 2.0  # half the volume moves by 2 voxels along X in u_t0
    zero = torch.zeros_like(g0)
    # predicting no motion: error 2/2 = 1 on the moving half; plain EPE is diluted to 0.5
    assert epe_moving(zero, zero, g0, g1) == pytest.approx(1.0)
    assert 0.5 * (endpoint_error(zero, g0) + endpoint_error(zero, g1)) == pytest.approx(0.5)
    # errors on static voxels do not count
    noisy = g0.clone()
    noisy[:, 1, 4:] = 5.0
    assert epe_moving(noisy, zero, g0, g1) == pytest.approx(0.0)
    # a perfect field has zero error; no moving voxel gives NaN
    assert epe_moving(g0, g1, g0, g1) == 0.0
    assert math.isnan(epe_moving(zero, zero, zero, zero))


@pytest.mark.parametrize("nz", [1, 2, 3, 5, 8])
def test_ssim_and_ncc_on_few_slices(nz):
    """A cine has 3-14 slices: the SSIM window shrinks along Z to fit (11, 11, k), k odd <= Z."""
    from interp4d_lite.metrics import ssim_window

    g = _gt(shape=(24, 20, nz), seed=nz)
    k = nz if nz % 2 else nz - 1
    assert ssim_window(g.shape) == (11, 11, k)
    assert ssim_window((128, 9, 40)) == (11, 9, 11)
    rng = np.random.default_rng(3)
    small = np.clip(g + rng.normal(0, 0.02, g.shape), 0, 1).astype(np.float32)
    large = np.clip(g + rng.normal(0, 0.2, g.shape), 0, 1).astype(np.float32)
    assert ssim3d(g, g) == pytest.approx(1.0, abs=1e-5)
    assert 1.0 > ssim3d(small, g) > ssim3d(large, g) > 0.0
    assert local_ncc(g, g) == pytest.approx(1.0, abs=1e-4)
    assert 1.0 > local_ncc(small, g) > local_ncc(large, g) > 0.0
    if nz == 1:  # one slice: the 2D SSIM of that slice, with the same (11, 11) Gaussian window
        from monai.metrics import SSIMMetric

        two_d = SSIMMetric(spatial_dims=2, data_range=1.0, win_size=11, kernel_sigma=1.5)
        expect = float(two_d(torch.from_numpy(small[..., 0])[None, None], torch.from_numpy(g[..., 0])[None, None]))
        assert ssim3d(small, g) == pytest.approx(expect, abs=1e-5)
