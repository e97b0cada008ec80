"""Phantoms: exact fields in the warping convention, determinism, and the motion they are
built to have (non-linear timing, wall thickening, twist, SI-dominant breathing with
hysteresis, exact linear translation)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import binary_erosion

from interp4d_lite.data.phantoms import (
    CARDIAC_LABELS as LABELS,
)
from interp4d_lite.data.phantoms import (
    DEFAULT_FRAMES,
    DEFAULT_SHAPES,
    DEFAULT_SPACING,
    cardiac_contraction,
    hu_to_unit,
    make_cardiac_phantom,
    make_lung_phantom,
    make_phantom,
)
from interp4d_lite.models.warp import warp

SMALL = {"cardiac": (48, 48, 10), "lung": (40, 40, 40), "linear": (32, 32, 16)}


def psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


@pytest.fixture(scope="module")
def noiseless():
    return {k: make_phantom(k, shape=s, noise=0.0, seed=3) for k, s in SMALL.items()}


@pytest.mark.parametrize("phantom", ["cardiac", "lung", "linear"])
def test_true_fields_reproduce_every_frame(noiseless, phantom):
    """warp(I0, u_t0) and warp(I1, u_t1) give frame t to >= 35 dB at every frame i0..i1."""
    p = noiseless[phantom]
    f = p.unit_frames()  # lung: HU -> [0, 1] window
    K = p.i1 - p.i0 + 1
    assert p.u_t0.shape == p.u_t1.shape == (K, 3, *p.shape)
    for k in range(K):
        gt = f[p.i0 + k]
        assert psnr(warp(f[p.i0], p.u_t0[k]), gt) >= 35.0, (phantom, k)
        assert psnr(warp(f[p.i1], p.u_t1[k]), gt) >= 35.0, (phantom, k)
    # and the fields are not trivially zero: where tissue moves, frame i1 differs clearly from frame i0
    moving = np.linalg.norm(p.u_t0[-1], axis=0) > 0.5
    assert moving.mean() > 0.02 and psnr(f[p.i0][moving], f[p.i1][moving]) < 25.0
    assert np.abs(p.u_t0[-1]).max() > 1.0


@pytest.mark.parametrize("phantom", ["cardiac", "lung", "linear"])
def test_layout_times_and_determinism(phantom):
    a = make_phantom(phantom, shape=(24, 24, 12) if phantom != "lung" else (24, 24, 24), seed=5)
    b = make_phantom(phantom, shape=(24, 24, 12) if phantom != "lung" else (24, 24, 24), seed=5)
    c = make_phantom(phantom, shape=(24, 24, 12) if phantom != "lung" else (24, 24, 24), seed=6)
    assert a.frames.dtype == np.float32 and a.u_t0.dtype == np.float32
    assert a.frames.shape[0] == DEFAULT_FRAMES[phantom] == {"cardiac": 25, "lung": 10, "linear": 6}[phantom]
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.u_t1, b.u_t1)
    assert not np.array_equal(a.frames, c.frames)
    assert a.times[a.i0] == 0.0 and a.times[a.i1] == 1.0
    assert np.all(np.diff(a.times[a.i0 : a.i1 + 1]) > 0)
    assert np.isnan(a.times[a.i1 + 1 :]).all() and np.isnan(a.times[: a.i0]).all()
    assert np.allclose(np.diag(a.affine)[:3], a.spacing)
    np.testing.assert_array_equal(a.u_t0[0], 0.0)  # frame i0 is the reference


def test_cardiac_timing_is_early_fast_and_follows_the_heart_rate():
    """Ejection: half the contraction long before half the time; filling slower; ES at
    0.34 s * sqrt(RR) of the cycle (later at a faster heart rate), on a frame."""
    hr, es_frac = [], []
    for seed in range(6):
        p = make_cardiac_phantom(shape=(24, 24, 10), noise=0.0, seed=seed)
        s = np.asarray(p.params["contraction"])
        assert s[0] == 0.0 and s[p.i1] == pytest.approx(1.0)
        mid = p.i1 // 2  # t ~ 0.5 into ejection
        assert s[mid] > 0.65  # linear would be ~0.5
        assert 1.8 < p.params["p_eject"] < 2.7
        n_fill = p.n_frames - p.i1
        assert n_fill > p.i1  # filling takes longer than ejection
        assert np.all(np.diff(s[p.i1 :]) <= 0)  # relaxes monotonically back to ED
        # the field magnitude follows the same early-fast course
        mag = np.abs(p.u_t0).reshape(p.i1 + 1, -1).mean(axis=1)
        assert mag[mid] / mag[-1] > 0.65
        rr = 60.0 / p.params["heart_rate_bpm"]
        assert 55 <= p.params["heart_rate_bpm"] <= 95
        assert abs(p.i1 - 0.34 * np.sqrt(rr) / rr * p.n_frames) <= 0.5 and p.params["es_frac"] == p.i1 / p.n_frames
        hr.append(p.params["heart_rate_bpm"])
        es_frac.append(p.params["es_frac"])
    assert max(hr) - min(hr) > 10 and 0.30 <= min(es_frac) and max(es_frac) <= 0.46
    assert np.corrcoef(hr, es_frac)[0, 1] > 0.8  # faster heart: systole takes a larger share of the cycle
    u = np.linspace(0, 1, 11) * 0.375
    assert np.all(np.diff(cardiac_contraction(u, 0.375, 2.2)) > 0)


def _wall(labels, spacing, k):
    """Mean LV wall thickness (mm) of slice k from the label areas: epicardial minus endocardial radius."""
    a_lv = (labels[:, :, k] == LABELS["lv"]).sum() * spacing[0] * spacing[1]
    a_my = (labels[:, :, k] == LABELS["myocardium"]).sum() * spacing[0] * spacing[1]
    return np.sqrt((a_lv + a_my) / np.pi) - np.sqrt(a_lv / np.pi)


@pytest.mark.parametrize("seed", [1, 4])
def test_cardiac_anatomy_and_contraction_from_the_label_maps(seed):
    """ACDC-like grid; the LV ejects 40-70 %, the wall thickens 30-50 % while its volume stays
    about constant, the RV empties too, the base descends 10-20 % of the base-apex distance."""
    p = make_cardiac_phantom(shape=(96, 96, 10), noise=0.0, seed=seed)
    assert p.spacing == (1.5, 1.5, 8.0) and p.labels.shape == p.frames.shape and p.labels.dtype == np.uint8
    ed, es = p.labels[p.i0], p.labels[p.i1]
    vol = lambda lab, name: int((lab == LABELS[name]).sum())
    ef = 1.0 - vol(es, "lv") / vol(ed, "lv")
    assert 0.40 < ef < 0.70 and ef == pytest.approx(p.params["ejection_fraction"])
    assert 0.85 < vol(es, "myocardium") / vol(ed, "myocardium") < 1.15  # (nearly) incompressible
    assert vol(es, "rv") / vol(ed, "rv") < 0.75
    # LV cavity, myocardium and RV in 6-9 of the 10 slices, none in the top (atria) at ES
    slices = [k for k in range(p.shape[2]) if (ed[:, :, k] == LABELS["myocardium"]).sum() > 5]
    assert 6 <= len(slices) <= 9
    k = slices[len(slices) // 2]
    thickening = _wall(es, p.spacing, k) / _wall(ed, p.spacing, k)
    assert 1.25 < thickening < 1.6, thickening  # 30-50 % by design, measured on voxel label areas
    # longitudinal shortening: at ES the basal myocardium comes from higher up than the apical
    myo = es == LABELS["myocardium"]
    zs = [k for k in range(p.shape[2]) if myo[:, :, k].sum() > 5]
    uz = p.u_t0[-1][2] * p.spacing[2]  # mm
    d = uz[:, :, zs[-1]][myo[:, :, zs[-1]]].mean() - uz[:, :, zs[0]][myo[:, :, zs[0]]].mean()
    shortening = d / ((zs[-1] - zs[0]) * p.spacing[2] + d)
    assert 0.10 < shortening < 0.20, shortening
    # ES displacement of a few voxels in plane where the heart moves
    inplane = np.linalg.norm(p.u_t0[-1][:2], axis=0)
    assert 1.5 < np.percentile(inplane[myo], 90) < 5.0 and inplane.max() < 8.0


def test_cardiac_twist_and_still_thorax():
    p = make_cardiac_phantom(shape=(64, 64, 24), spacing=(1.5, 1.5, 3.5), noise=0.0, seed=1)
    g = p.params["geometry"]
    X, Y, Z = p.shape
    ix = (np.arange(X) - (X - 1) / 2) * p.spacing[0] - g["cx"]
    iy = (np.arange(Y) - (Y - 1) / 2) * p.spacing[1] - g["cy"]
    dx, dy = np.meshgrid(ix, iy, indexing="ij")
    r = np.hypot(dx, dy)
    z_mm = (np.arange(Z) - (Z - 1) / 2) * p.spacing[2]
    u = p.u_t0[-1]  # (3, X, Y, Z) at ES

    def tangential(k):
        ring = p.labels[p.i1][:, :, k] == LABELS["myocardium"]
        ux, uy = u[0, :, :, k] * p.spacing[0], u[1, :, :, k] * p.spacing[1]
        return float(((dx * uy - dy * ux) / np.maximum(r, 1e-6))[ring].mean())

    k_base = int(np.argmin(np.abs(z_mm - (g["z_base"] - 10.0))))
    k_apex = int(np.argmin(np.abs(z_mm - (g["z_apex"] + 0.35 * (g["z_base"] - g["z_apex"])))))
    assert tangential(k_base) * tangential(k_apex) < 0  # base and apex turn in opposite senses
    assert abs(tangential(k_apex)) > 0.5  # mm along the arc
    # away from the heart the thorax does not move at all: fields exactly 0, frames identical
    still = r > g["a_ep"] + g["d_rv"] + g["t_rv"] + g["taper"] + 1.5
    assert still.mean() > 0.3
    assert np.abs(p.u_t0[:, :, still]).max() == 0.0 and np.abs(p.u_t1[:, :, still]).max() == 0.0
    np.testing.assert_array_equal(p.frames[p.i1][still], p.frames[p.i0][still])
    # ... and close to it, tissue follows the heart a little (a taper, not a cut)
    near = (r > g["a_ep"] + g["d_rv"] + 2.0) & ~still
    assert 0.05 < np.abs(u[:2, near]).max()


def test_cardiac_contrast_is_ssfp_like():
    """blood > fat > liver/muscle > myocardium >> lung/air, read off the noise-free frames."""
    p = make_cardiac_phantom(shape=(96, 96, 10), noise=0.0, bias=0.0, seed=2)
    f, lab = p.frames[p.i0], p.labels[p.i0]
    core = lambda name: binary_erosion(lab == LABELS[name], np.ones((3, 3, 1), bool))  # away from partial volume
    lv, myo, rv = (np.median(f[core(name)]) for name in ("lv", "myocardium", "rv"))
    assert lv > 0.8 and rv > 0.75 and 0.15 < myo < 0.3
    air = f[:4, -4:, :]  # a corner outside the body (the heart sits left-anterior)
    lung = f[(f < 0.1) & (f > 0.015)]  # dark, above the air (and the soft edges into it)
    assert np.median(air) < 0.01 and 0.02 < np.median(lung) < 0.06
    hist, edges = np.histogram(f[(lab == 0) & (f > 0.6)], bins=20, range=(0.6, 1.0))
    assert hist.sum() > 100  # fat (and the aorta, atria) bright outside the ventricles


def test_patients_differ_and_seeds_repeat():
    a = make_cardiac_phantom(shape=(32, 32, 10), seed=7)
    b = make_cardiac_phantom(shape=(32, 32, 10), seed=7)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.labels, b.labels)
    ps = [make_cardiac_phantom(shape=(32, 32, 10), noise=0.0, seed=s) for s in range(4)]
    for key in ("a_en", "a_ep", "cx", "psi", "body_scale", "alpha"):
        vals = [q.params["geometry"][key] for q in ps]
        assert np.std(vals) > 0.02 * max(abs(np.mean(vals)), 1e-3), key
    efs = [q.params["ejection_fraction"] for q in ps]
    assert max(efs) - min(efs) > 0.03


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


def test_the_chest_anatomy_adds_ribs_and_an_airway_tree_and_leaves_a_as_it_was():
    kw = dict(shape=(40, 40, 40), spacing=(4.0, 4.0, 4.0), noise=0.0, seed=3)
    a, chest = make_lung_phantom(anatomy="a", **kw), make_lung_phantom(anatomy="chest", **kw)
    assert a.frames.max() < 400 and a.params["ribs_mm"] == [] and a.params["airway_segments"] == 0  # spine 350 HU
    assert (
        len(chest.params["ribs_mm"]) >= 5 and chest.params["airway_segments"] == 1 + 2 + 4 + 8 + 16
    )  # trachea, main bronchi, 3 divisions
    # ribs: bone in the chest wall (outside the lungs, near the body surface), in separate arcs along z
    f, mm = chest.frames[0], _grid_mm(chest)
    bone = f > 400
    assert bone.sum() > 20
    bx, by = 0.88 * 0.5 * 40 * 4.0, 0.62 * 0.5 * 40 * 4.0  # the body's half-axes (anatomy "a")
    rho = np.sqrt((mm[0] / bx) ** 2 + (mm[1] / by) ** 2)  # 1 on the body surface
    assert np.all(np.abs(rho[bone] - 0.9) < 0.15), np.abs(rho[bone] - 0.9).max()
    assert 0.1 < bone.any(axis=(0, 1)).mean() < 0.8  # slices with bone and gaps between the ribs
    # airways: air inside the body on the midline above the carina (the trachea), where "a" has tissue
    c = np.array(chest.shape) // 2
    top = (c[0], int(round(c[1] + 0.1 * 0.72 * by / 4.0)), chest.shape[2] - 3)
    assert chest.frames[0][top] < -800 and a.frames[0][top] > -200
    # the rest of the thorax is anatomy "a" (same draws): equal away from the ribs and airways
    same = np.isclose(a.frames[0], f, atol=20.0)  # HU; the soft edges reach about a voxel further
    assert same.mean() > 0.7 and np.isclose(a.frames[0], f, atol=20.0)[rho < 0.6].mean() > 0.8
    np.testing.assert_array_equal(a.u_t0, chest.u_t0)  # the same breathing


def _grid_mm(p):
    """Voxel centres (3, X, Y, Z) in mm about the volume's centre."""
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(p.shape, p.spacing)]
    return np.stack(np.meshgrid(*axes, indexing="ij"))


def test_cardiac_defaults_are_acdc_like():
    assert DEFAULT_SHAPES["cardiac"] == (128, 128, 10) and DEFAULT_SPACING["cardiac"] == (1.5, 1.5, 8.0)
    p = make_phantom("cardiac", shape=(32, 32, 10), seed=0)
    assert p.spacing == (1.5, 1.5, 8.0) and p.n_frames == 25 and p.params["noise"] == 0.02


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
    clean = make_cardiac_phantom(shape=(32, 32, 10), noise=0.0, seed=4)
    noisy = make_cardiac_phantom(shape=(32, 32, 10), noise=0.02, seed=4)
    assert noisy.frames.min() >= 0.0
    # Rician: Gaussian-like where the signal is high, a positive floor sigma sqrt(pi/2) in air
    bright = (clean.frames > 0.4) & (clean.frames < 0.9)
    assert np.std((noisy.frames - clean.frames)[bright]) == pytest.approx(0.02, rel=0.1)
    air = clean.frames < 1e-4
    assert air.sum() > 1000
    assert noisy.frames[air].mean() == pytest.approx(0.02 * np.sqrt(np.pi / 2), rel=0.1)
    # the coil bias field: smooth, static, multiplicative, within [0.3, 1]
    flat = make_cardiac_phantom(shape=(32, 32, 10), noise=0.0, bias=0.0, seed=4)
    inside = flat.frames[0] > 0.1
    ratio = clean.frames[0][inside] / flat.frames[0][inside]
    assert 0.3 < ratio.min() and ratio.max() <= 1.0 + 1e-6 and ratio.max() / ratio.min() > 1.2
    np.testing.assert_allclose(clean.frames[3][inside] / flat.frames[3][inside], ratio, rtol=1e-4)
    big = make_cardiac_phantom(shape=(32, 32, 10), noise=0.0, seed=4, amplitude=1.5)
    assert np.abs(big.u_t0[-1]).max() > 1.3 * np.abs(clean.u_t0[-1]).max()
    still = make_cardiac_phantom(shape=(32, 32, 10), noise=0.0, seed=4, amplitude=0.0)
    assert np.abs(still.u_t0).max() < 1e-4
    lung = make_lung_phantom(shape=(24, 24, 24), noise=0.01, seed=0)
    clean_lung = make_lung_phantom(shape=(24, 24, 24), noise=0.0, seed=0)
    assert np.std(lung.frames - clean_lung.frames) == pytest.approx(16.0, rel=0.05)  # 1 % of 1600 HU


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(phantom="cardiac", n_frames=4), "n_frames must be >= 6"),
        (dict(phantom="lung", n_frames=9), "must be even"),
        (dict(phantom="linear", amplitude=3.0), "amplitude"),
        (dict(phantom="cardiac", noise=-0.1), "noise"),
        (dict(phantom="cardiac", shape=(4, 32, 16)), "shape"),
        (dict(phantom="cardiac", spacing=(1.0, 0.0, 1.0)), "spacing"),
        (dict(phantom="cardiac", bias=-0.1), "bias"),
        (dict(phantom="heart"), "unknown phantom 'heart'"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_phantom(**{"shape": (16, 16, 8), **kwargs})
