"""The breathing model on real chest CTs (interp4d_lite.data.phantoms.breathing) and the series
built from the scans kept in chest_ct/ (interp4d_lite.data.chest_ct)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from interp4d_lite.data import load_patient
from interp4d_lite.data.chest_ct import (
    CHEST_CTS,
    chest_ct_path,
    load_chest_ct,
    make_chest_series,
    scan_masks,
    write_chest_dataset,
)
from interp4d_lite.data.phantoms import hu_to_unit
from interp4d_lite.data.phantoms.breathing import BreathingMotion, BreathingParams, chest_masks
from interp4d_lite.errors import DataError
from interp4d_lite.models.warp import warp

SCAN = "ts_chest"  # the smaller scan: fast masks


@pytest.fixture(scope="module")
def scan():
    return load_chest_ct(SCAN)


@pytest.fixture(scope="module")
def masks(scan):
    return scan_masks(SCAN, scan)


@pytest.fixture(scope="module")
def series(scan, masks):
    """A noise-free series with a large excursion (28 mm at the lung base)."""
    return make_chest_series(
        SCAN, seed=3, shape=(32, 32, 32), noise_hu=0.0, breathing={"si_mm": 28.0}, scan=scan, masks=masks
    )


def _psnr(a, b, where=None):
    d = (a - b) if where is None else (a - b)[where]
    return float(10 * np.log10(1.0 / np.mean(d**2)))


def _inside(u):
    """Voxels whose field points inside the grid (the rest shows tissue from outside the crop)."""
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in u.shape[1:]], indexing="ij"))
    q = idx + u
    return np.all((q >= 0) & (q <= np.asarray(u.shape[1:]).reshape(3, 1, 1, 1) - 1), axis=0)


def test_roles_name_a_training_and_a_held_out_scan():
    roles = {v["role"] for v in CHEST_CTS.values()}
    assert roles == {"train", "heldout"}
    for name in CHEST_CTS:
        hu, aff = load_chest_ct(name)
        assert hu.ndim == 3 and hu.min() < -900 and hu.max() > 200  # air and bone: HU
        assert np.allclose(np.diag(aff)[:3], 2.5)


def test_fields_warp_frame_0_and_50_percent_to_every_phase(series):
    unit = hu_to_unit(series.frames)
    i0 = torch.from_numpy(unit[series.i0])[None, None]
    i1 = torch.from_numpy(unit[series.i1])[None, None]
    for k in range(1, series.i1 + 1):
        w0 = warp(i0, torch.from_numpy(series.u_t0[k])[None])[0, 0].numpy()
        w1 = warp(i1, torch.from_numpy(series.u_t1[k])[None])[0, 0].numpy()
        target = unit[series.i0 + k]
        in0, in1 = _inside(series.u_t0[k]), _inside(series.u_t1[k])
        assert _psnr(w0, target, in0) >= 34.0, k
        assert _psnr(w1, target, in1) >= 34.0, k
        if k >= 2:  # where the tissue has moved: the fields explain it, no motion does not
            assert _psnr(w0, target, in0) >= _psnr(unit[series.i0], target, in0) + 3.0, k
    assert np.abs(series.u_t0[0]).max() == 0.0 and np.abs(series.u_t1[series.i1 - series.i0]).max() < 0.01


def test_superior_inferior_dominates_and_grows_toward_the_base(series):
    u = series.u_t0[series.i1] * np.asarray(series.spacing).reshape(3, 1, 1, 1)  # mm
    moving = np.linalg.norm(u, axis=0) > 1.0
    lr, ap, si = (float(np.abs(u[c][moving]).mean()) for c in range(3))
    assert si > 3 * ap and si > 3 * lr and ap > 0.02 and lr > 0.02
    assert u[2][moving].mean() < 0  # at exhale the frame shows tissue from lower down (the inhale scan)
    # mean SI motion in the lower half of the grid exceeds that of the upper half
    nz = u.shape[3]
    assert np.abs(u[2][:, :, : nz // 2]).mean() > 1.5 * np.abs(u[2][:, :, nz // 2 :]).mean()


def test_chest_wall_ribs_and_outside_do_not_move():
    for name in CHEST_CTS:
        scan = load_chest_ct(name)
        m = scan_masks(name, scan)
        motion = BreathingMotion(*scan, BreathingParams(si_mm=30.0), masks=m)
        top = motion.si_map.max()
        assert 25.0 < top <= 30.0 + 1e-3
        near = ndimage.binary_dilation(m.moving, np.ones((5, 5, 1), bool))  # 2 voxels (5 mm) in-plane
        thorax = np.zeros_like(near)
        thorax[:, :, int(m.z_base) : int(m.z_top) + 1] = True
        wall = m.body & ~near & thorax
        bone = (scan[0] > 200) & ~near & thorax
        assert np.percentile(motion.si_map[wall], 95) < 0.08 * top, name
        assert np.percentile(motion.si_map[bone], 90) < 0.12 * top, name
        if (~m.body).any():
            assert motion.si_map[~m.body].max() < 0.01 * top, name
        assert np.abs(motion.lr_map[~m.lungs]).max() == 0 and np.abs(motion.ap_map[~m.lungs]).max() == 0
        # inside the lungs they slide: full motion right next to the static wall
        assert np.percentile(motion.si_map[m.lungs & thorax], 90) > 0.5 * top


def test_hysteresis_inhale_and_exhale_paths_differ(scan, masks):
    motion = BreathingMotion(*scan, BreathingParams(si_mm=20.0, ap_mm=4.0, lag=0.1), masks=masks)
    idx = np.argwhere(masks.lungs)[::200].T.astype(np.float64)
    p = motion.origin.reshape(3, 1) + idx * motion.spacing.reshape(3, 1)
    for tau in (0.1, 0.2, 0.3, 0.4):
        exhale, inhale = motion.displacement(p, tau), motion.displacement(p, 1.0 - tau)
        assert np.allclose(exhale[2], inhale[2], atol=1e-4)  # same SI position on both paths...
        assert np.abs(exhale[1] - inhale[1]).max() > 0.2  # ...another AP position: a loop
    b, _ = motion.amounts(np.arange(10) / 10)
    lin = np.minimum(np.arange(10), 10 - np.arange(10)) / 5 * b[5]
    assert np.abs(b - lin).max() > 0.1  # not linear in time


def test_inverse_map_and_no_folding(series):
    assert series.params["min_jacobian"] > 0.2
    assert series.params["inverse_residual_mm"] < 0.01


def test_builder_is_reproducible_and_loads(tmp_path, scan):
    opts = dict(shape=(24, 24, 24), n_series=2, seed=5)
    a = write_chest_dataset(tmp_path / "a", [SCAN], **opts)
    b = write_chest_dataset(tmp_path / "b", [SCAN], **opts)
    c = write_chest_dataset(tmp_path / "c", [SCAN], **{**opts, "seed": 6, "n_series": 1})
    assert a["patients"] == b["patients"] == [f"{SCAN}_001", f"{SCAN}_002"]

    def digest(root, pid):
        return hashlib.md5((root / pid / f"{pid}_truth.npz").read_bytes()).hexdigest()

    for pid in a["patients"]:
        assert digest(tmp_path / "a", pid) == digest(tmp_path / "b", pid)
    assert digest(tmp_path / "a", c["patients"][0]) != digest(tmp_path / "c", c["patients"][0])
    assert digest(tmp_path / "a", a["patients"][0]) != digest(tmp_path / "a", a["patients"][1])
    p = load_patient(tmp_path / "a" / a["patients"][0], volume_shape="native")
    assert p.data_kind == "lung" and p.frames.shape == (10, 24, 24, 24) and (p.i0, p.i1) == (0, 5)
    assert p.u_t0.shape == (6, 3, 24, 24, 24) and np.allclose(p.times[:6], np.arange(6) / 5)
    meta = json.loads((tmp_path / "a" / a["patients"][0] / "phases.json").read_text())
    assert meta["source"] == f"chest CT {SCAN}" and meta["input_phases"] == [0, 50]
    params = json.loads((tmp_path / "a" / a["patients"][0] / "phantom.json").read_text())
    assert params["generator"] == "breathing" and 10.0 <= params["breathing"]["si_mm"] <= 30.0


def test_bad_inputs_name_the_problem(tmp_path):
    water = np.full((40, 40, 40), 0.0, np.float32)
    water[:, :, :] = -1000.0
    water[8:32, 8:32, :] = 20.0
    with pytest.raises(ValueError, match="no lungs found"):
        chest_masks(water, (2.5, 2.5, 2.5))
    import nibabel as nib

    path = tmp_path / "mr.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.eye(4)), str(path))
    with pytest.raises(DataError, match="mr.nii.gz.*HU"):
        load_chest_ct(path)
    with pytest.raises(DataError, match="no chest CT called 'nope'"):
        chest_ct_path("nope")
    with pytest.raises(DataError, match="nope.nii.gz: not a readable NIfTI"):
        load_chest_ct(tmp_path / "nope.nii.gz")
