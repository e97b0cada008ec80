"""The ipywidgets tools of the notebooks: :class:`SliceViewer`, :class:`DeformationViewer`,
:class:`InterpolationExplorer`, :class:`MethodComparison`, :class:`MotionOverTimeViewer`.

They are plain ipywidgets (``IntSlider``/``FloatSlider``/``Dropdown`` with descriptions
such as ``"t"``, ``"slice"``, ``"frame"``, ``"axis"``) whose callback is a package function
(``render_*``, drawing with :mod:`interp4d_lite.viz.plots` and :mod:`interp4d_lite.viz.fields`):
each tool keeps the last figure in ``.figure`` so tests can set a widget's value and inspect the
image arrays without a browser.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np

from .fields import plot_field_views, plot_motion_over_time, strongest_motion_points
from .plots import AXIS_NAMES, plot_comparison, show_slice, to_numpy


# --------------------------------------------------------------------------- widgets
def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    ip = get_ipython()
    return ip is not None and type(ip).__name__ != "TerminalInteractiveShell"


def _figure_output(fig) -> dict:
    """``fig`` as one Jupyter ``display_data`` output (PNG, base64) for an Output widget."""
    import base64

    from IPython.core.pylabtools import print_figure

    png = print_figure(fig, fmt="png", bbox_inches="tight")
    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": repr(fig)},
    }


class _WidgetTool:
    """Base of the widget tools: ``controls`` (dict name -> widget), ``output``
    (an ``ipywidgets.Output``), ``widget`` (the VBox to display), ``figure`` (last render).
    Subclasses make ``controls`` (with ``axis`` and ``slice`` sliders), call
    ``super().__init__(spatial_shape)`` with the ``(X, Y, Z)`` of what they show and
    implement :meth:`render` (returns a matplotlib Figure)."""

    def __init__(self, spatial_shape):
        import ipywidgets as W

        self.spatial_shape = tuple(int(n) for n in spatial_shape)
        self.output = W.Output()
        self.figure = None
        self.renders = 0
        # first: an axis change sets the slice slider's range before the tool redraws
        self.controls["axis"].observe(self._axis_changed, names="value")
        for w in self.controls.values():
            w.observe(self._on_change, names="value")
        self.widget = W.VBox(
            [W.HBox(list(self.controls.values())[:3]), W.HBox(list(self.controls.values())[3:]), self.output]
        )
        # CSS classes for browser tests: the tool ("interp4d-slice-viewer") and each control
        # ("interp4d-slice-viewer-frame"), since several tools share descriptions like "slice"
        tool = "interp4d-" + "".join("-" + c.lower() if c.isupper() else c for c in type(self).__name__).lstrip("-")
        self.widget.add_class(tool)
        self.output.add_class(tool + "-output")
        for name, w in self.controls.items():
            w.add_class(f"{tool}-{name}")
        self.refresh()

    def _on_change(self, change=None):
        if not getattr(self, "_suspended", False):
            self.refresh()

    def values(self) -> dict:
        """The controls' current values, ``{name: value}``."""
        return {k: w.value for k, w in self.controls.items()}

    def _axis_changed(self, change):
        self._reset_slice(self.spatial_shape[change["new"]])

    def _reset_slice(self, n: int):
        """After an axis change: slice slider to the new axis' range (one render, not two)."""
        s = self.controls["slice"]
        self._suspended = True
        try:
            if s.value > n - 1:
                s.value = n - 1
            s.max = n - 1
            s.value = n // 2
        finally:
            self._suspended = False

    def refresh(self):
        """Draw the current view and show it in :attr:`output`.

        The PNG goes straight into the Output widget's ``outputs`` (the same bytes and
        ``bbox_inches="tight"`` that the inline backend would show), not through
        ``with output: plt.show()``: a capture context while a cell runs makes nbclient
        (papermill, Voila) mirror the Output widget and send comm messages back to the
        kernel on its own shell socket, after which it could miss the cell's reply and wait
        forever (a Voila dashboard then stays stuck at its first tool under CPU load;
        voila-dashboards/voila#1428, jupyter/jupyter_client#1059). Setting ``outputs`` is a
        plain widget state update: it needs no capture and works the same during a cell and
        from a slider callback. The figure is closed for pyplot (so the inline backend does
        not show it a second time below the tool) but kept in :attr:`figure`.
        """
        self.figure = self.render()
        plt.close(self.figure)
        self.renders += 1
        if _in_notebook():
            self.output.outputs = (_figure_output(self.figure),)

    def render(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def image(self, panel: int = 0) -> np.ndarray:
        """The array drawn in panel ``panel`` of the last figure (for tests)."""
        return np.asarray(self.figure.axes[panel].images[0].get_array())


def window_level(window: float, level: float) -> tuple[float, float]:
    """Display range ``(vmin, vmax)`` of a window width and a level (centre)."""
    return level - window / 2.0, level + window / 2.0


def render_slice_view(
    frames,
    axis: int,
    index: int,
    frame: int,
    window: float = 1.0,
    level: float = 0.5,
    spacing=None,
    times=None,
    title: str | None = None,
):
    """The slice viewer's callback: one slice of frame ``frame`` of ``frames (T, X, Y, Z)``."""
    f = to_numpy(frames)
    vmin, vmax = window_level(window, level)
    fig, ax = plt.subplots(figsize=(5, 4.2), constrained_layout=True)
    label = f"frame {frame}"
    if times is not None and frame < len(times) and np.isfinite(times[frame]):
        label += f" (t = {float(times[frame]):.2f})"
    show_slice(
        ax,
        f[frame],
        axis,
        index,
        spacing,
        vmin=vmin,
        vmax=vmax,
        title=f"{title + ': ' if title else ''}{label}, {AXIS_NAMES[axis]} slice {index}",
    )
    return fig


class SliceViewer(_WidgetTool):
    """Browse a 4D volume ``(T, X, Y, Z)``: sliders ``axis``, ``slice``, ``frame``,
    ``window`` and ``level`` (the display range is level +- window/2)."""

    def __init__(self, frames, spacing=None, times=None, title: str | None = None):
        import ipywidgets as W

        self.frames = to_numpy(frames)
        self.spacing, self.times, self.title = spacing, times, title
        T, X, Y, Z = self.frames.shape
        self.controls = {
            "axis": W.IntSlider(value=2, min=0, max=2, description="axis"),
            "slice": W.IntSlider(value=Z // 2, min=0, max=Z - 1, description="slice"),
            "frame": W.IntSlider(value=0, min=0, max=T - 1, description="frame"),
            "window": W.FloatSlider(value=1.0, min=0.05, max=2.0, step=0.05, description="window"),
            "level": W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="level"),
        }
        super().__init__((X, Y, Z))

    def render(self):
        c = self.values()
        return render_slice_view(
            self.frames,
            c["axis"],
            c["slice"],
            c["frame"],
            c["window"],
            c["level"],
            self.spacing,
            self.times,
            self.title,
        )


class DeformationViewer(_WidgetTool):
    """Look at displacement fields: ``fields`` maps a name to ``(K, 3, X, Y, Z)`` (one field
    per frame, voxels), ``backgrounds (K, X, Y, Z)`` are drawn under the arrows.
    Widgets: ``field`` (Dropdown), ``frame``, ``axis``, ``slice``, ``step`` (arrow spacing)."""

    def __init__(self, fields: Mapping[str, object], backgrounds=None, spacing=None, times=None):
        import ipywidgets as W

        self.fields = {k: to_numpy(v) if to_numpy(v).ndim == 5 else to_numpy(v)[None] for k, v in fields.items()}
        first = next(iter(self.fields.values()))
        K, _, X, Y, Z = first.shape
        self.backgrounds = None if backgrounds is None else to_numpy(backgrounds)
        self.spacing, self.times = spacing, times
        self.controls = {
            "field": W.Dropdown(options=list(self.fields), value=next(iter(self.fields)), description="field"),
            "frame": W.IntSlider(value=K // 2, min=0, max=K - 1, description="frame"),
            "axis": W.IntSlider(value=2, min=0, max=2, description="axis"),
            "slice": W.IntSlider(value=Z // 2, min=0, max=Z - 1, description="slice"),
            "step": W.IntSlider(value=max(1, min(X, Y) // 12), min=1, max=8, description="step"),
        }
        super().__init__((X, Y, Z))

    def render(self):
        c = self.values()
        return render_deformation_view(
            self.fields[c["field"]],
            c["frame"],
            c["axis"],
            c["slice"],
            c["step"],
            self.backgrounds,
            self.spacing,
            self.times,
            c["field"],
        )


def render_deformation_view(
    fields,
    frame: int,
    axis: int,
    index: int,
    step: int = 3,
    backgrounds=None,
    spacing=None,
    times=None,
    name: str = "field",
):
    """The deformation viewer's callback (see :func:`plot_field_views`)."""
    f = to_numpy(fields)
    f = f if f.ndim == 5 else f[None]
    frame = int(np.clip(frame, 0, f.shape[0] - 1))
    bg = None
    if backgrounds is not None:
        b = to_numpy(backgrounds)
        bg = b[min(frame, b.shape[0] - 1)] if b.ndim == 4 else b
    tt = f", t = {float(times[frame]):.2f}" if times is not None and frame < len(times) else ""
    return plot_field_views(f[frame], axis, index, bg, spacing, step, title=f"{name}, frame {frame}{tt}")


def render_interpolation(
    prediction, truth, t: float, t_truth: float, axis: int, index: int, spacing=None, decode_ms: float | None = None
):
    """The interpolation explorer's callback: prediction at ``t``, the acquired frame nearest
    to ``t`` (at ``t_truth``) and their difference."""
    timing = f", decode {decode_ms:.0f} ms" if decode_ms is not None else ""
    note = "" if abs(t - t_truth) < 1e-3 else f" (nearest acquired frame: t = {t_truth:.2f})"
    return plot_comparison(
        prediction, truth, axis=axis, index=index, spacing=spacing, title=f"student at t = {t:.2f}{timing}; truth{note}"
    )


class InterpolationExplorer(_WidgetTool):
    """Live interpolation: the student encodes (I0, I1) once; moving the ``t`` slider runs
    only ``student.decode(features, t)`` and shows prediction, truth and error.

    ``frames (T, X, Y, Z)`` and ``times (T,)`` (NaN outside the input pair) give the truth:
    the acquired frame whose t is nearest to the slider's."""

    def __init__(self, student, I0, I1, frames, times, spacing=None, device="cpu", t_step: float = 0.05):
        import ipywidgets as W
        import torch

        self.student, self.device = student, torch.device(device) if isinstance(device, str) else device
        self.frames = to_numpy(frames)
        self.times = np.asarray(times, dtype=np.float32)
        self.spacing = spacing
        self.student.eval()
        with torch.no_grad():
            self.features = student.encode(_as_batch(I0, self.device), _as_batch(I1, self.device))
        X, Y, Z = self.frames.shape[1:]
        self.controls = {
            "t": W.FloatSlider(value=0.5, min=0.0, max=1.0, step=t_step, description="t"),
            "axis": W.IntSlider(value=2, min=0, max=2, description="axis"),
            "slice": W.IntSlider(value=Z // 2, min=0, max=Z - 1, description="slice"),
        }
        self.last_decode_ms = None
        super().__init__((X, Y, Z))

    def predict(self, t: float) -> np.ndarray:
        import torch

        with torch.no_grad():
            start = time.perf_counter()
            out = self.student.decode(self.features, torch.tensor([float(t)], dtype=torch.float32, device=self.device))
            self.last_decode_ms = 1000 * (time.perf_counter() - start)
        return to_numpy(out["image"])

    def nearest_frame(self, t: float) -> int:
        ok = np.where(np.isfinite(self.times))[0]
        return int(ok[np.argmin(np.abs(self.times[ok] - t))])

    def render(self):
        c = self.values()
        pred = self.predict(c["t"])
        k = self.nearest_frame(c["t"])
        return render_interpolation(
            pred, self.frames[k], c["t"], float(self.times[k]), c["axis"], c["slice"], self.spacing, self.last_decode_ms
        )


def _as_batch(x, device):
    import torch

    if not torch.is_tensor(x):
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    while x.dim() < 5:
        x = x.unsqueeze(0)
    return x.to(device=device, dtype=torch.float32)


def render_method_comparison(
    predictions: Mapping[str, object],
    truth,
    times,
    method: str,
    frame: int,
    axis: int,
    index: int,
    spacing=None,
    error_max: float = 0.3,
):
    """The method comparison's callback: prediction of ``method`` for target ``frame``, truth
    and error (fixed error scale, so methods compare by eye)."""
    p = to_numpy(predictions[method])
    tr = to_numpy(truth)
    frame = int(np.clip(frame, 0, p.shape[0] - 1))
    return plot_comparison(
        p[frame],
        tr[frame],
        axis=axis,
        index=index,
        spacing=spacing,
        error_max=error_max,
        title=f"{method}, target frame {frame} (t = {float(times[frame]):.2f})",
    )


class MethodComparison(_WidgetTool):
    """Compare methods on the target frames: ``predictions`` maps a method name to its
    predicted frames ``(K, X, Y, Z)``; ``truth (K, X, Y, Z)``; ``times (K,)``.
    Widgets: ``method`` (Dropdown), ``frame``, ``axis``, ``slice``."""

    def __init__(self, predictions: Mapping[str, object], truth, times, spacing=None, error_max: float = 0.3):
        import ipywidgets as W

        self.predictions = {k: to_numpy(v) for k, v in predictions.items()}
        self.truth, self.times, self.spacing, self.error_max = to_numpy(truth), np.asarray(times), spacing, error_max
        K, X, Y, Z = self.truth.shape
        names = list(self.predictions)
        self.controls = {
            "method": W.Dropdown(options=names, value=names[-1], description="method"),
            "frame": W.IntSlider(value=K // 2, min=0, max=K - 1, description="frame"),
            "axis": W.IntSlider(value=2, min=0, max=2, description="axis"),
            "slice": W.IntSlider(value=Z // 2, min=0, max=Z - 1, description="slice"),
        }
        super().__init__((X, Y, Z))

    def render(self):
        c = self.values()
        return render_method_comparison(
            self.predictions,
            self.truth,
            self.times,
            c["method"],
            c["frame"],
            c["axis"],
            c["slice"],
            self.spacing,
            self.error_max,
        )


def predictions_by_method(results, patient):
    """From the frame of :func:`interp4d_lite.train.evaluate.evaluate_methods` run with
    ``keep_predictions=True``: ``(predictions {method: (K, X, Y, Z)}, truth (K, X, Y, Z),
    times (K,))`` over ``patient``'s evaluated frames, ready for :class:`MethodComparison`."""
    import pandas as pd

    df = results if isinstance(results, pd.DataFrame) else pd.DataFrame(list(results))
    if "prediction" not in df:
        raise ValueError("the results hold no predictions: evaluate with keep_predictions=True")
    df = df[df["patient"] == patient.patient_id].sort_values("frame", kind="stable")
    frames = sorted(int(f) for f in df["frame"].unique())
    preds = {
        str(m): np.stack([np.asarray(v, np.float32) for v in g["prediction"]])
        for m, g in df.groupby("method", sort=False)
    }
    truth = np.stack([patient.frames[k] for k in frames]).astype(np.float32)
    times = np.array([float(patient.times[k]) for k in frames], np.float32)
    return preds, truth, times


class MotionOverTimeViewer(_WidgetTool):
    """Motion over time, where you choose: ``motion`` is a
    :class:`interp4d_lite.train.motion.MotionCurves` (the reference, linear motion and each
    method's ``u_t0`` at every frame). Widgets: ``where`` (Dropdown: the region that moves most,
    or one of the voxels of :func:`strongest_motion_points` of the reference), ``radius`` (a cube
    of ``2 radius + 1`` voxels around a chosen voxel), ``axis``, ``slice`` (the background slice;
    choosing a voxel moves it there)."""

    REGION = "region that moves most"

    def __init__(self, motion, n_points: int = 3):
        import ipywidgets as W

        self.motion = motion
        X, Y, Z = motion.region.shape
        self.points = {f"voxel {p}": p for p in strongest_motion_points(motion.fields[motion.reference], n=n_points)}
        options = [self.REGION, *self.points]
        self.controls = {
            "where": W.Dropdown(options=options, value=self.REGION, description="where"),
            "radius": W.IntSlider(value=1, min=0, max=3, description="radius"),
            "axis": W.IntSlider(value=2, min=0, max=2, description="axis"),
            "slice": W.IntSlider(
                value=int(np.argmax(motion.region.sum((0, 1)))), min=0, max=Z - 1, description="slice"
            ),
        }
        self.controls["where"].observe(self._where_changed, names="value")
        super().__init__((X, Y, Z))

    def _where_changed(self, change):
        p = self.points.get(change["new"])
        if p is not None:
            self._suspended = True
            try:
                self.controls["slice"].value = int(p[self.controls["axis"].value])
            finally:
                self._suspended = False

    def selection(self) -> np.ndarray:
        """The boolean ``(X, Y, Z)`` mask the curves are averaged over now."""
        c = self.values()
        p = self.points.get(c["where"])
        if p is None:
            return self.motion.region
        mask = np.zeros(self.motion.region.shape, bool)
        r = int(c["radius"])
        mask[tuple(slice(max(0, v - r), v + r + 1) for v in p)] = True
        return mask

    def render(self):
        from ..metrics import displacement_curves

        c = self.values()
        where = self.selection()
        curves = displacement_curves(self.motion.fields, self.motion.u_end, where, self.motion.spacing)
        self.curves = curves
        return plot_motion_over_time(self.motion, curves=curves, where=where, axis=c["axis"], index=c["slice"])
