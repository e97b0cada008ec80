"""The notebook widgets without a browser: set a widget's value, check that the figure
the callback drew changed the way it should (image arrays compared directly)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from interp4d_lite import viz


def _frames(T=5, shape=(16, 12, 8)):
    """A bright block sliding along X: frame k is shifted by k voxels."""
    f = np.zeros((T,) + shape, np.float32)
    for k in range(T):
        f[k, 3 + k : 8 + k, 3:9, 2:6] = 1.0
    return f


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_take_slice_and_extent_follow_axes_and_spacing():
    v = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    assert viz.take_slice(v, 0, 1).shape == (5, 6)
    assert viz.take_slice(v, 2, 3).shape == (4, 5)
    np.testing.assert_array_equal(viz.take_slice(v, 1, 2), v[:, 2, :])
    extent, xl, yl = viz.slice_extent((4, 5, 6), 2, spacing=(2.0, 1.0, 5.0))
    assert extent == (-1.0, 7.0, -0.5, 4.5) and xl == "X (mm)" and yl == "Y (mm)"
    assert viz.slice_extent((4, 5, 6), 0)[1] == "Y (voxels)"


def test_slice_viewer_frame_slice_axis_and_window_change_the_image():
    frames = _frames()
    sv = viz.SliceViewer(frames, spacing=(1.0, 1.0, 2.0))
    first = sv.image().copy()
    np.testing.assert_array_equal(first, frames[0][:, :, 4].T)
    assert sv.figure.axes[0].get_xlabel() == "X (mm)"
    assert len(sv.figure.axes) == 2  # the image and its colour bar
    sv.controls["frame"].value = 3
    np.testing.assert_array_equal(sv.image(), frames[3][:, :, 4].T)
    assert not np.array_equal(sv.image(), first)
    sv.controls["slice"].value = 0
    assert sv.image().sum() == 0  # below the block
    sv.controls["axis"].value = 0  # slice slider follows the new axis
    assert sv.controls["slice"].max == frames.shape[1] - 1
    assert sv.image().shape == (frames.shape[3], frames.shape[2])
    sv.controls["window"].value = 0.5
    sv.controls["level"].value = 0.25
    assert sv.figure.axes[0].images[0].get_clim() == (0.0, 0.5)
    assert all(w.description for w in sv.controls.values())
    # browser tests find a tool and its controls by CSS class
    assert "interp4d-slice-viewer" in sv.widget._dom_classes
    assert "interp4d-slice-viewer-frame" in sv.controls["frame"]._dom_classes


def test_jacobian_of_known_fields():
    shape = (10, 10, 10)
    zero = np.zeros((3,) + shape, np.float32)
    np.testing.assert_allclose(viz.jacobian_determinant(zero), 1.0)
    x = np.arange(10, dtype=np.float32)
    stretch = zero.copy()
    stretch[0] = 0.5 * x[:, None, None]  # du_x/dx = 0.5 -> det 1.5
    np.testing.assert_allclose(viz.jacobian_determinant(stretch), 1.5, rtol=1e-5)
    fold = zero.copy()
    fold[0] = -2.0 * x[:, None, None]  # det = -1: folding everywhere
    assert (viz.jacobian_determinant(fold) <= 0).all()


def test_deformation_viewer_marks_folding_and_follows_the_frame():
    K, shape = 3, (12, 12, 6)
    fields = np.zeros((K, 3) + shape, np.float32)
    x = np.arange(12, dtype=np.float32)
    fields[1, 0] = 0.3 * x[:, None, None]
    fields[2, 0] = -2.0 * x[:, None, None]
    dv = viz.DeformationViewer({"true u_t0": fields, "zero": np.zeros_like(fields)}, backgrounds=_frames(K, shape))
    dv.controls["frame"].value = 0
    jac0 = _jac_panel(dv)
    np.testing.assert_allclose(jac0, 1.0)
    dv.controls["frame"].value = 2
    assert (_jac_panel(dv) <= 0).all()
    assert "folding 100.00 %" in _jac_axes(dv).get_title()
    assert len(_jac_axes(dv).collections) >= 1  # folded voxels marked
    dv.controls["field"].value = "zero"
    np.testing.assert_allclose(_jac_panel(dv), 1.0)
    assert {"field", "frame", "axis", "slice", "step"} <= set(dv.controls)


def _jac_axes(tool):
    return [ax for ax in tool.figure.axes if ax.get_title().startswith("Jacobian determinant")][0]


def _jac_panel(tool):
    return np.asarray(_jac_axes(tool).images[0].get_array())


class _ShiftStudent(torch.nn.Module):
    """Stand-in with the Student's encode/decode interface: the output at t is I0 moved
    by 4*t voxels along X (counts how often encode/decode run)."""

    def __init__(self):
        super().__init__()
        self.n_encode = self.n_decode = 0

    def encode(self, I0, I1):
        self.n_encode += 1
        return {"I0": I0}

    def decode(self, feats, t):
        self.n_decode += 1
        from interp4d_lite.models.warp import warp

        I0 = feats["I0"]
        u = torch.zeros((len(t), 3) + tuple(I0.shape[2:]))
        u[:, 0] = -4.0 * t.view(-1, 1, 1, 1)
        return {"image": warp(I0, u)}


def test_interpolation_explorer_decodes_only_on_t_change():
    frames = _frames()
    times = np.array([0, 0.25, 0.5, 0.75, 1.0], np.float32)
    st = _ShiftStudent()
    ie = viz.InterpolationExplorer(st, frames[0], frames[-1], frames, times)
    assert st.n_encode == 1
    pred_half = ie.image(0).copy()
    ie.controls["t"].value = 1.0
    pred_one = ie.image(0).copy()
    assert not np.array_equal(pred_half, pred_one)
    np.testing.assert_allclose(pred_one, frames[4][:, :, 4].T, atol=1e-5)  # shift model is exact at t=1
    np.testing.assert_allclose(ie.image(1), frames[4][:, :, 4].T)  # truth panel: frame at t=1
    assert np.abs(ie.image(2)).max() < 1e-4  # error panel
    assert st.n_encode == 1 and st.n_decode == 2
    ie.controls["t"].value = 0.3  # between frames: the truth is the nearest one (t = 0.25)
    np.testing.assert_allclose(ie.image(1), frames[1][:, :, 4].T)
    assert "nearest acquired frame" in ie.figure._suptitle.get_text()


def test_method_comparison_dropdown_switches_prediction():
    truth = _frames(3)
    preds = {"linear blend": truth * 0.5, "student": truth.copy()}
    mc = viz.MethodComparison(preds, truth, times=np.array([0.25, 0.5, 0.75]))
    np.testing.assert_allclose(mc.image(2), 0.0)  # student == truth: zero error
    mc.controls["method"].value = "linear blend"
    assert np.abs(mc.image(2)).max() == pytest.approx(0.5)
    assert "linear blend" in mc.figure._suptitle.get_text()
    mc.controls["frame"].value = 0
    np.testing.assert_allclose(mc.image(1), truth[0][:, :, 4].T)


def test_static_plots_have_colour_bars_and_labels(tmp_path):
    frames = _frames()
    fig = viz.plot_comparison(frames[2], frames[3], inputs=[frames[0], frames[4]], spacing=(1, 1, 2))
    imgs = [ax for ax in fig.axes if ax.images]
    assert len(imgs) == 5 and len(fig.axes) == 10  # every panel has its colour bar
    assert all(ax.get_xlabel().endswith("(mm)") for ax in imgs)
    u = np.zeros((5, 3, 16, 12, 8), np.float32)
    u[:, 0] = (np.array([0, 0.1, 0.4, 0.8, 1.0])[:, None, None, None]) * 3
    fig = viz.plot_displacement_curves(np.linspace(0, 1, 5), u, [(8, 6, 4)])
    assert fig.axes[0].get_ylabel().startswith("displacement")
    w = np.random.default_rng(0).dirichlet([1, 1, 1], size=(16, 12, 8)).transpose(3, 0, 1, 2)
    fig = viz.plot_scale_weights(w)
    assert len(fig.axes) == 3 + 3 + 1
    path = viz.save_figure(fig, tmp_path, "w")
    assert path.exists() and path.stat().st_size > 1000
    rows = [
        {"method": m, "t": t, "psnr": p}
        for m, p0 in (("student", 30), ("linear motion", 25))
        for t, p in ((0.25, p0), (0.5, p0 - 2), (0.75, p0))
    ]
    fig = viz.plot_metric_vs_t(rows, "psnr", ylabel="PSNR (dB)")
    assert len(fig.axes[0].lines) == 2


def test_metric_vs_t_draws_each_patient_thin_and_the_mean_thick():
    """Two patients whose frames sit at different t: one thin line per patient, one thick
    mean line; no line runs through points of different patients (no saw-tooth)."""
    import pandas as pd

    a = [("p1", t, 30 - 10 * (t - 0.5) ** 2) for t in (0.2, 0.4, 0.6, 0.8)]  # 4 frames
    b = [("p2", t, 20 - 10 * (t - 0.5) ** 2) for t in (0.25, 0.5, 0.75)]  # 3 frames, other t
    results = pd.DataFrame(
        [{"method": "student", "patient": p, "frame": i, "t": t, "psnr": v} for i, (p, t, v) in enumerate(a + b)]
    )
    fig = viz.plot_metric_vs_t(results, "psnr")
    lines = fig.axes[0].lines
    thin = [ln for ln in lines if ln.get_linewidth() < 1.5]
    thick = [ln for ln in lines if ln.get_linewidth() >= 1.5]
    assert len(thin) == 2 and len(thick) == 1
    np.testing.assert_allclose(sorted(thin, key=lambda ln: len(ln.get_xdata()))[0].get_xdata(), [0.25, 0.5, 0.75])
    np.testing.assert_allclose(sorted(thin, key=lambda ln: len(ln.get_xdata()))[0].get_ydata(), [v for _, _, v in b])
    mean = thick[0]
    ts, ys = np.asarray(mean.get_xdata()), np.asarray(mean.get_ydata())
    assert list(ts) == sorted(ts)
    # every mean point averages both patients' curves (interpolated at its t), so it stays
    # between them instead of jumping 10 dB from one patient's frame to the next
    inside = (ts >= 0.25) & (ts <= 0.75)
    assert np.all((ys[inside] > 20 - 1) & (ys[inside] < 30)) and np.ptp(ys[inside]) < 2.0
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["student"]


def test_tools_show_their_figure_as_a_png_in_the_output_widget(monkeypatch):
    """In a notebook a tool puts its PNG straight into the Output widget's ``outputs``
    (no ``with output:`` capture, see ``_WidgetTool.refresh``), replaces it on every
    redraw, and leaves no figure open for pyplot to show a second time."""
    import base64

    monkeypatch.setattr(viz.widgets, "_in_notebook", lambda: True)
    sv = viz.SliceViewer(_frames(), spacing=(1.0, 1.0, 2.0))
    (out,) = sv.output.outputs
    assert out["output_type"] == "display_data" and out["metadata"] == {}
    png = base64.b64decode(out["data"]["image/png"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert plt.get_fignums() == []
    assert sv.output.msg_id == ""  # nothing captured
    sv.controls["frame"].value = 3
    (after,) = sv.output.outputs
    assert after["data"]["image/png"] != out["data"]["image/png"]
    assert sv.renders == 2 and plt.get_fignums() == []
