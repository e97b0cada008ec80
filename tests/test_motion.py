"""Motion over time (interp4d_lite.train.motion), its figure and widget, the model diagrams, and
what the notebooks set up with: the real-cine data folder, start_notebook, held_out_patients."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from interp4d_lite import viz
from interp4d_lite.data import discover_patients, load_patient, make_phantom, shipped_real_cines
from interp4d_lite.data.phantoms import write_phantom_dataset
from interp4d_lite.train.motion import (
    LINEAR_MOTION,
    REGISTERED_REFERENCE,
    TRUE_REFERENCE,
    displacement_curves,
    fields_over_time,
    motion_over_time,
    motion_region,
    reference_fields,
    reference_label,
    with_reference_fields,
)

SHAPE = (24, 24, 8)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def phantom_patient(tmp_path_factory):
    root = tmp_path_factory.mktemp("motion_phantom")
    write_phantom_dataset(root, phantom="cardiac", n_patients=1, shape=SHAPE, n_frames=10, seed=0)
    return load_patient(discover_patients(root)[0], volume_shape=SHAPE)


@pytest.fixture(scope="module")
def linear_patient(tmp_path_factory):
    """A linear phantom whose truth is removed: a real scan as far as the code can tell."""
    root = tmp_path_factory.mktemp("motion_linear")
    write_phantom_dataset(root, phantom="linear", n_patients=1, shape=(24, 24, 12), seed=0)
    p = load_patient(discover_patients(root)[0], volume_shape=(24, 24, 12))
    return p, dataclasses.replace(p, u_t0=None, u_t1=None)


def test_displacement_curves_project_on_the_endpoint_direction():
    """Hand-made fields: a course linear in t gives t x the endpoint; one at a quarter of the
    endpoint everywhere gives a quarter; a displacement across the direction gives 0; mm scale."""
    K, shape = 5, (4, 4, 2)
    times = np.linspace(0, 1, K, dtype=np.float32)
    end = np.zeros((3, *shape), np.float32)
    end[0] = 2.0  # 2 voxels along X everywhere
    linear = times[:, None, None, None, None] * end[None]
    quarter = np.broadcast_to(0.25 * end, (K, 3, *shape)).copy()
    across = np.zeros((K, 3, *shape), np.float32)
    across[:, 1] = 5.0  # along Y: orthogonal to the endpoint direction
    region = np.ones(shape, bool)
    c = displacement_curves({"lin": linear, "q": quarter, "x": across}, end, region, spacing=(1.5, 1.0, 1.0))
    np.testing.assert_allclose(c["lin"], 3.0 * times, atol=1e-6)  # 2 voxels x 1.5 mm
    np.testing.assert_allclose(c["q"], 0.75, atol=1e-6)
    np.testing.assert_allclose(c["x"], 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="empty"):
        displacement_curves({"lin": linear}, end, np.zeros(shape, bool))


def test_motion_region_keeps_the_largest_displacements():
    u = np.zeros((3, 10, 10, 2), np.float32)
    u[2, 7, 7, :] = 4.0
    u[0, 1, 1, 0] = 1.0
    r = motion_region(u, fraction=0.01)  # 2 of 200 voxels
    assert r.sum() == 2 and r[7, 7].all() and not r[1, 1, 0]
    assert motion_region(np.zeros_like(u), fraction=0.0).sum() >= 1


def test_reference_of_a_phantom_is_its_truth_and_of_a_scan_the_registration(linear_patient):
    with_truth, scan = linear_patient
    assert reference_label(with_truth) == TRUE_REFERENCE and reference_label(scan) == REGISTERED_REFERENCE
    u0, u1 = reference_fields(with_truth)
    np.testing.assert_array_equal(u0, with_truth.u_t0)
    assert with_reference_fields(with_truth) is with_truth
    r0, r1 = reference_fields(scan)
    K = scan.i1 - scan.i0 + 1
    assert r0.shape == r1.shape == (K, 3, *scan.shape)
    # the registration follows the uniform translation: near the truth where the block is, far from zero
    moving = np.linalg.norm(with_truth.u_t0[-1], axis=0) > 1
    err = np.linalg.norm(r0[-1] - with_truth.u_t0[-1], axis=0)[moving].mean()
    size = np.linalg.norm(with_truth.u_t0[-1], axis=0)[moving].mean()
    assert err < 0.5 * size, (err, size)
    carried = with_reference_fields(scan)
    assert carried.u_t0.shape == r0.shape and scan.u_t0 is None  # a copy; the scan is unchanged
    assert reference_label(carried) == REGISTERED_REFERENCE  # carrying fields does not make them the truth
    assert motion_over_time({}, carried).reference == REGISTERED_REFERENCE


def test_motion_over_time_of_the_truth_and_a_student(phantom_patient):
    from interp4d_lite.models import Student, StudentConfig

    p = phantom_patient
    torch.manual_seed(0)
    student = Student(StudentConfig())
    u = fields_over_time(student, p)
    assert u.shape == (p.i1 - p.i0 + 1, 3, *p.shape)
    m = motion_over_time({"student": student}, p)
    assert m.reference == TRUE_REFERENCE and set(m.curves) == {TRUE_REFERENCE, LINEAR_MOTION, "student"}
    ref, lin = m.curves[TRUE_REFERENCE], m.curves[LINEAR_MOTION]
    np.testing.assert_allclose(lin, m.times * ref[-1], rtol=1e-5, atol=1e-5)  # linear motion: a straight line
    assert m.share_at(LINEAR_MOTION) == pytest.approx(0.5, abs=1e-5)
    # the phantom contracts fast, then slowly: past half of its endpoint displacement at t = 0.5
    assert m.share_at(TRUE_REFERENCE) > 0.55
    assert m.gap(TRUE_REFERENCE) == 0 and m.gap(LINEAR_MOTION) > 0
    fig = viz.plot_motion_over_time(m, title="phantom")
    ax = fig.axes[1]
    assert [line.get_label() for line in ax.get_lines()][:3] == [TRUE_REFERENCE, LINEAR_MOTION, "student"]
    assert "mm" in ax.get_ylabel() and ax.get_xlabel().startswith("t")
    assert len(fig.axes) == 3  # the slice, its colour bar and the curves


def test_motion_widget_switches_between_the_region_and_one_voxel(phantom_patient):
    m = motion_over_time({}, phantom_patient)
    w = viz.MotionOverTimeViewer(m)
    region_curve = w.curves[TRUE_REFERENCE].copy()
    np.testing.assert_allclose(region_curve, m.curves[TRUE_REFERENCE], rtol=1e-6)
    point = next(iter(w.points))
    w.controls["where"].value = point
    assert w.selection().sum() == 27  # the cube of radius 1 (inside the volume)
    assert not np.allclose(w.curves[TRUE_REFERENCE], region_curve)
    assert w.controls["slice"].value == w.points[point][2]
    w.controls["radius"].value = 0
    assert w.selection().sum() == 1
    assert all(c.description for c in w.controls.values())


def test_diagrams_follow_the_config_and_the_recipe():
    from interp4d_lite.models import StudentConfig
    from interp4d_lite.train import DistillConfig
    from interp4d_lite.train.recipes import get_recipe, term_weights

    def texts(fig):
        return " ".join(t.get_text() for t in fig.axes[0].texts)

    three = texts(viz.plot_student_diagram())
    assert three.count("decoder level") == 3 and "FiLM" in three and "softmax" in three
    two = texts(viz.plot_student_diagram(StudentConfig(decoder_channels=(16, 8), time_conditioning="channel")))
    assert two.count("decoder level") == 2 and "FiLM" not in two and "input channel" in two
    fig = viz.plot_distillation_diagram(term_weights("student"))
    drawn = texts(fig)
    for term in get_recipe("student").terms:
        assert term.name in drawn
    assert "instance optimisation" in drawn and "weight 0: skipped" in drawn  # feat is off by default
    assert "weight 0: skipped" not in texts(
        viz.plot_distillation_diagram(term_weights("student", DistillConfig(feature_weight=0.1)))
    )


def test_real_cine_dataset_holds_every_shipped_cine_and_fits_in_plane(tmp_path):
    from interp4d_lite.tutorial import ensure_real_cine_data

    shipped = shipped_real_cines()
    assert shipped and all((d / f"{d.name}_4d.nii.gz").is_file() for d in shipped)
    root = ensure_real_cine_data(tmp_path / "real", volume_shape=(24, 24, 12))
    found = discover_patients(root)
    assert [d.name for d in found] == [d.name for d in shipped]
    native = load_patient(shipped[0], volume_shape="native")
    small = load_patient(found[0], volume_shape="native")
    assert max(small.shape[:2]) <= 24 and small.shape[2] == native.shape[2]
    assert (small.i0, small.i1) == (native.i0, native.i1) and small.u_t0 is None
    # the whole field of view is kept: voxels get larger by the integer factor
    factor = round(small.spacing[0] / native.spacing[0])
    assert factor > 1 and small.shape[0] == native.shape[0] // factor
    stamp = (root / ".tutorial_real_cines.json").stat().st_mtime_ns
    assert ensure_real_cine_data(root, volume_shape=(24, 24, 12)) == root
    assert (root / ".tutorial_real_cines.json").stat().st_mtime_ns == stamp  # reused, not rewritten


def test_start_notebook_and_held_out_patients(tmp_path, capsys):
    from interp4d_lite.tutorial import ensure_real_cine_data, held_out_patients, start_notebook

    nb = start_notebook(tmp_path / "run", "cpu", 0, [24, 24, 8], "", n_patients=3, n_frames=8)
    out = capsys.readouterr().out
    assert nb.ckpt_dir.is_dir() and nb.volume_shape == (24, 24, 8) and nb.has_truth
    assert "3 patients, phantoms with true motion" in out and nb.reference == TRUE_REFERENCE
    test = held_out_patients(nb.data_root, nb.volume_shape)
    assert len(test) == 1 and test[0].has_truth
    real = ensure_real_cine_data(tmp_path / "real", volume_shape=(24, 24, 8))
    nb = start_notebook(tmp_path / "run", "cpu", 0, (24, 24, 8), str(real))
    assert not nb.has_truth and nb.reference == REGISTERED_REFERENCE
    assert "scans without true motion" in capsys.readouterr().out
    few = held_out_patients(real, (24, 24, 8))
    if len(shipped_real_cines()) < 3:  # too few for a test part: every scan, said so
        assert len(few) == len(shipped_real_cines()) and "no held-out patient" in capsys.readouterr().out


def test_verdict_states_the_claim_the_numbers_support():
    from interp4d_lite.tutorial import verdict

    args = (("distilled", "no distillation"), "distillation helped here", "distillation did not help here")
    assert verdict(0.52, 0.58, *args, unit="voxels", better="lower") == (
        "distilled 0.52 vs no distillation 0.58 voxels: distillation helped here"
    )
    assert verdict(0.62, 0.58, *args, unit="voxels", better="lower").endswith("did not help here")
    assert verdict(30.5, 29.9, *args, unit="dB").endswith(": distillation helped here")
    assert verdict(30.5, 30.4, *args, margin=0.2).endswith("did not help here")  # within the margin
    assert verdict(float("nan"), 1.0, *args, missing="undefined") == "distilled vs no distillation: undefined"
    with pytest.raises(ValueError):
        verdict(1, 2, *args, better="bigger")


def test_backward_warp_figure_shows_the_four_volumes_with_colour_bars():
    ph = make_phantom("cardiac", shape=SHAPE, n_frames=8, seed=0)
    from interp4d_lite.models import warp

    k = (ph.i0 + ph.i1) // 2
    I0 = torch.as_tensor(ph.frames[ph.i0])[None, None]
    w = warp(I0, torch.as_tensor(ph.u_t0[k - ph.i0])[None])
    fig = viz.plot_backward_warp(I0, w, ph.frames[k], spacing=ph.spacing)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 5 and len(fig.axes) == 10  # five panels, each with its colour bar
    diff = np.asarray(images[3].images[0].get_array())
    np.testing.assert_allclose(diff, (w[0, 0].numpy() - ph.frames[k])[:, :, SHAPE[2] // 2].T, atol=1e-6)
