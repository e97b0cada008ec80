"""Phantoms: exact fields in the warping convention, determinism, and the motion they are
built to have (non-linear timing, wall thickening, twist, SI-dominant breathing with
hysteresis, exact linear translation)."""

from __future__ import annotations

import numpy as np
import pytest

from interp4d_lite.data.phantoms import (
    cardiac_contraction,
    hu_to_unit,
    make_cardiac_phantom,
    make_lung_phantom,
    make_phantom,
)
from interp4d_lite.models.warp import warp

SMALL = {"cardiac": (48, 48, 16), "lung": (40, 40, 40), "linear": (32, 32, 16)}


def psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


@pytest.fixture(scope="module")
def noiseless():
    return {k: make_phantom(k, shape=s, noise=0.0, seed=3) for k, s in SMALL.items()}


@pytest.mark.parametrize("kind", ["cardiac", "lung", "linear"])
def test_true_fields_reproduce_every_frame(noiseless, kind):
    """warp(I0, u_t0) and warp(I1, u_t1) give frame t to >= 35 dB at every frame i0..i1."""
    p = noiseless[kind]
    f = p.unit_frames()  # lung: HU -> [0, 1] window
    K = p.i1 - p.i0 + 1
    assert p.u_t0.shape == p.u_t1.shape == (K, 3, *p.shape)
    for k in range(K):
        gt = f[p.i0 + k]
        assert psnr(warp(f[p.i0], p.u_t0[k]), gt) >= 35.0, (kind, k)
        assert psnr(warp(f[p.i1], p.u_t1[k]), gt) >= 35.0, (kind, k)
    # and the fields are not trivially zero: frame i1 differs clearly from frame i0
    assert psnr(f[p.i0], f[p.i1]) < 30.0
    assert np.abs(p.u_t0[-1]).max() > 1.0


@pytest.mark.parametrize("kind", ["cardiac", "lung", "linear"])
def test_layout_times_and_determinism(kind):
    a = make_phantom(kind, shape=(24, 24, 12) if kind != "lung" else (24, 24, 24), seed=5)
    b = make_phantom(kind, shape=(24, 24, 12) if kind != "lung" else (24, 24, 24), seed=5)
    c = make_phantom(kind, shape=(24, 24, 12) if kind != "lung" else (24, 24, 24), seed=6)
    assert a.frames.dtype == np.float32 and a.u_t0.dtype == np.float32
    assert a.frames.shape[0] == {"cardiac": 20, "lung": 10, "linear": 6}[kind]
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.u_t1, b.u_t1)
    assert not np.array_equal(a.frames, c.frames)
    assert a.times[a.i0] == 0.0 and a.times[a.i1] == 1.0
    assert np.all(np.diff(a.times[a.i0 : a.i1 + 1]) > 0)
    assert np.isnan(a.times[a.i1 + 1 :]).all() and np.isnan(a.times[: a.i0]).all()
    assert np.allclose(np.diag(a.affine)[:3], a.spacing)
    np.testing.assert_array_equal(a.u_t0[0], 0.0)  # frame i0 is the reference


def test_cardiac_timing_is_early_fast_and_shared_across_patients():
    """Ejection: half the contraction long before half the time; filling slower; the
    profile varies only modestly between patients (a prior a student can learn)."""
    es = []
    for seed in range(6):
        p = make_cardiac_phantom(shape=(24, 24, 12), noise=0.0, seed=seed)
        s = np.asarray(p.params["contraction"])
        es.append(p.i1)
        assert s[0] == 0.0 and s[p.i1] == pytest.approx(1.0)
        mid = p.i1 // 2  # t ~ 0.5 into ejection
        assert s[mid] > 0.65  # linear would be ~0.5
        assert 1.8 < p.params["p_eject"] < 2.7
        n_fill = p.n_frames - p.i1
        assert n_fill > p.i1  # filling takes longer than ejection
        # the field magnitude follows the same early-fast course
        mag = np.abs(p.u_t0).reshape(p.i1 + 1, -1).mean(axis=1)
        assert mag[mid] / mag[-1] > 0.65
    assert max(es) - min(es) <= 1  # ES within one frame of each other (20 frames)
    u = np.linspace(0, 1, 11) * 0.375
    assert np.all(np.diff(cardiac_contraction(u, 0.375, 2.2)) > 0)


def test_cardiac_wall_thickens_shortens_and_twists():
    p = make_cardiac_phantom(shape=(64, 64, 24), noise=0.0, seed=1)
    g = p.params["geometry_mm"]
    ed, es = p.frames[p.i0], p.frames[p.i1]
    # blood pool (bright) shrinks a lot, the epicardial cross-section (blood + dark wall) much less
    X, Y, Z = p.shape
    box = (slice(X // 4, 3 * X // 4), slice(Y // 4, 3 * Y // 4), slice(Z // 3, 2 * Z // 3))
    blood = lambda f: (f[box] > 0.7).sum()
    heart = lambda f: ((f[box] > 0.7) | (f[box] < 0.28)).sum()
    assert blood(es) / blood(ed) < 0.75
    assert heart(es) / heart(ed) > blood(es) / blood(ed) + 0.1  # wall thickened
    # twist: tangential displacement at ES has opposite sense at the base and near the apex
    ix = (np.arange(X) - (X - 1) / 2) * p.spacing[0] - g["cx"]
    iy = (np.arange(Y) - (Y - 1) / 2) * p.spacing[1] - g["cy"]
    dx, dy = np.meshgrid(ix, iy, indexing="ij")
    r = np.hypot(dx, dy)
    ring = (r > g["a_en"]) & (r < g["a_ep"])
    z_mm = (np.arange(Z) - (Z - 1) / 2) * p.spacing[2]
    u = p.u_t0[-1]  # (3, X, Y, Z) at ES

    def tangential(k):
        ux, uy = u[0, :, :, k] * p.spacing[0], u[1, :, :, k] * p.spacing[1]
        return float(((dx * uy - dy * ux) / np.maximum(r, 1e-6))[ring].mean())

    k_base = int(np.argmin(np.abs(z_mm - (g["z_base"] - 10.0))))
    k_apex = int(np.argmin(np.abs(z_mm - (g["z_apex"] + 0.35 * (g["z_base"] - g["z_apex"])))))
    assert tangential(k_base) * tangential(k_apex) < 0
    assert abs(tangential(k_apex)) > 1.0  # mm along the arc
    # longitudinal shortening: basal points come from higher up (u_z > 0), growing toward the base
    uz_base = u[2, :, :, k_base][ring].mean()
    uz_apex = u[2, :, :, k_apex][ring].mean()
    assert uz_base > 0.5 and uz_base > uz_apex + 0.3  # voxels


def test_lung_breathing_is_si_dominant_cos2n_with_hysteresis():
    p = make_lung_phantom(shape=(48, 48, 48), noise=0.0, seed=2)
    assert p.n_frames == 10 and (p.i0, p.i1) == (0, 5)
    assert p.params["phases"] == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    lungs = (p.frames[0] > -990) & (p.frames[0] < -500)  # lung, not outside air
    body = p.frames[0] > -900
    u = p.u_t0[-1]  # end-exhale
    si = np.abs(u[2][lungs]).mean() * p.spacing[2]
    ap = np.abs(u[1][lungs]).mean() * p.spacing[1]
    lr = np.abs(u[0][lungs]).mean() * p.spacing[0]
    assert si > 2 * ap and si > 5 * lr and si > 2.0  # mean over lung voxels, mm
    # cos^2n: at t = 0.4 (phase 20 %) the lungs are already far more than 40 % of the way
    mag = np.abs(p.u_t0[:, 2][:, lungs]).mean(axis=1)
    assert mag[2] / mag[5] > 0.5
    # hysteresis: same SI amount at 30 % (exhaling) and 70 % (inhaling), different AP amount,
    # so the two frames differ although the diaphragm is at the same height
    b, a = np.asarray(p.params["si_amount"]), np.asarray(p.params["ap_amount"])
    assert b[3] == pytest.approx(b[7])
    assert abs(a[3] - a[7]) > 0.1
    f = p.unit_frames()
    assert psnr(f[3], f[7]) < 45.0
    # HU values where they belong
    assert -900 < np.median(p.frames[0][lungs]) < -750
    assert 0 < np.median(p.frames[0][body & ~lungs]) < 120
    t = np.round(np.asarray(p.params["tumour_mm"]) / p.spacing + (np.asarray(p.shape) - 1) / 2).astype(int)
    assert -60 < p.frames[0][tuple(t)] < 80  # the tumour, not lung
    assert hu_to_unit(np.array([-2000.0, -1400.0, 200.0, 900.0])).tolist() == [0.0, 0.0, 1.0, 1.0]


def test_linear_fields_are_exact_translation():
    p = make_phantom("linear", shape=(24, 24, 12), noise=0.0, amplitude=1.0)
    v = np.array([3.0, 2.0, 1.0])
    for k in range(p.n_frames):
        t = p.times[k]
        np.testing.assert_allclose(p.u_t0[k].reshape(3, -1).mean(1), -t * v, atol=1e-6)
        np.testing.assert_allclose(p.u_t1[k], (1 - t) * p.u_t1[0], atol=1e-6)  # u_t1 = (1-t) u_01
        np.testing.assert_allclose(p.u_t0[k], t * p.u_t0[-1], atol=1e-6)  # u_t0 = t u_10
        assert p.u_t0[k].std(axis=(1, 2, 3)).max() < 1e-6  # uniform in space


def test_noise_std_and_parameters():
    clean = make_cardiac_phantom(shape=(32, 32, 12), noise=0.0, seed=4)
    noisy = make_cardiac_phantom(shape=(32, 32, 12), noise=0.02, seed=4)
    inner = (clean.frames > 0.1) & (clean.frames < 0.9)  # away from the [0, 1] clip
    assert np.std((noisy.frames - clean.frames)[inner]) == pytest.approx(0.02, rel=0.05)
    big = make_cardiac_phantom(shape=(32, 32, 12), noise=0.0, seed=4, amplitude=1.5)
    assert np.abs(big.u_t0[-1]).max() > 1.3 * np.abs(clean.u_t0[-1]).max()
    still = make_cardiac_phantom(shape=(32, 32, 12), noise=0.0, seed=4, amplitude=0.0)
    assert np.abs(still.u_t0).max() < 1e-4
    lung = make_lung_phantom(shape=(24, 24, 24), noise=0.01, seed=0)
    clean_lung = make_lung_phantom(shape=(24, 24, 24), noise=0.0, seed=0)
    assert np.std(lung.frames - clean_lung.frames) == pytest.approx(16.0, rel=0.05)  # 1 % of 1600 HU


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="cardiac", n_frames=4), "n_frames must be >= 6"),
        (dict(kind="lung", n_frames=9), "must be even"),
        (dict(kind="linear", amplitude=3.0), "amplitude"),
        (dict(kind="cardiac", noise=-0.1), "noise"),
        (dict(kind="cardiac", shape=(4, 32, 16)), "shape"),
        (dict(kind="cardiac", spacing=(1.0, 0.0, 1.0)), "spacing"),
        (dict(kind="heart"), "unknown phantom kind"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_phantom(**{"shape": (16, 16, 8), **kwargs})
