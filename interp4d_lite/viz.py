"""Plotting helpers and the ipywidgets tools of the notebooks.

Every figure has colour bars, axis labels and units: axes are in **mm** when a voxel
spacing is given (voxels otherwise), intensities are **normalised intensity [0, 1]**,
displacements are in **voxels** (the package's convention) unless a spacing converts
them to mm. Slices follow the array convention of docs/ARCHITECTURE.md: volumes are
``(X, Y, Z)``; a slice along ``axis`` shows the two remaining axes, the lower-numbered
one horizontal, with ``origin="lower"``.

The widget tools (:class:`SliceViewer`, :class:`DeformationViewer`,
:class:`InterpolationExplorer`, :class:`MethodComparison`) are plain ipywidgets
(``IntSlider``/``FloatSlider``/``Dropdown`` with descriptions such as ``"t"``,
``"slice"``, ``"frame"``, ``"axis"``) whose callback is a package function
(``render_*``): each tool keeps the last figure in ``.figure`` so tests can set a
widget's value and inspect the image arrays without a browser.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

AXIS_NAMES = ("X", "Y", "Z")
INTENSITY_LABEL = "normalised intensity [0, 1]"
METHOD_COLOURS = {
    "linear blend": "tab:gray",
    "linear motion": "tab:orange",
    "student (no KD)": "tab:purple",
    "student": "tab:blue",
    "student (KD)": "tab:blue",
    "teacher": "tab:green",
    # the method names of interp4d_lite.train.evaluate
    "linear_blend": "tab:gray",
    "linear_motion": "tab:orange",
    "student_nokd": "tab:purple",
    "true_fields": "black",
}


# --------------------------------------------------------------------------- small utilities
def to_numpy(x) -> np.ndarray:
    """torch tensor or array -> float32 numpy, leading batch/channel axes of size 1 dropped
    until at most the spatial (and one vector) axes remain."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float32)
    while a.ndim > 3 and a.shape[0] == 1:
        a = a[0]
    return a


def take_slice(volume, axis: int, index: int | None = None) -> np.ndarray:
    """2-D slice of a ``(X, Y, Z)`` volume (or ``(C, X, Y, Z)``: channels kept first)
    along spatial ``axis`` at ``index`` (middle slice when None)."""
    v = to_numpy(volume)
    spatial0 = v.ndim - 3
    n = v.shape[spatial0 + axis]
    if index is None:
        index = n // 2
    index = int(np.clip(index, 0, n - 1))
    return np.take(v, index, axis=spatial0 + axis)


def _in_plane_axes(axis: int) -> tuple[int, int]:
    a, b = [i for i in range(3) if i != axis]
    return a, b


def slice_extent(shape: Sequence[int], axis: int, spacing=None):
    """``imshow`` extent and axis labels of a slice of a volume of ``shape`` (X, Y, Z)."""
    a, b = _in_plane_axes(axis)
    if spacing is None:
        sa = sb = 1.0
        unit = "voxels"
    else:
        sa, sb = float(spacing[a]), float(spacing[b])
        unit = "mm"
    extent = (-0.5 * sa, (shape[a] - 0.5) * sa, -0.5 * sb, (shape[b] - 0.5) * sb)
    return extent, f"{AXIS_NAMES[a]} ({unit})", f"{AXIS_NAMES[b]} ({unit})"


def show_slice(ax, volume, axis: int = 2, index: int | None = None, spacing=None, cmap: str = "gray",
               vmin: float | None = 0.0, vmax: float | None = 1.0, title: str | None = None,
               cbar_label: str | None = INTENSITY_LABEL, colorbar: bool = True):
    """Draw one slice on ``ax`` with axis labels (mm or voxels) and a colour bar; returns the AxesImage."""
    v = to_numpy(volume)
    sl = take_slice(v, axis, index)
    extent, xl, yl = slice_extent(v.shape[-3:], axis, spacing)
    im = ax.imshow(sl.T, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, extent=extent,
                   interpolation="nearest", aspect="equal")
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    if title:
        ax.set_title(title, fontsize=10)
    if colorbar:
        cb = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        if cbar_label:
            cb.set_label(cbar_label, fontsize=8)
    return im

def save_figure(fig, out_dir, name: str, dpi: int = 110) -> Path:
    """Save ``fig`` to ``out_dir/figures/<name>.png`` (the run folder keeps every figure)."""
    path = Path(out_dir) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


# --------------------------------------------------------------------------- volumes side by side
def plot_volumes(volumes: Mapping[str, object], axis: int = 2, index: int | None = None, spacing=None,
                 title: str | None = None, vmin: float = 0.0, vmax: float = 1.0, cmap: str = "gray"):
    """One panel per named volume, the same slice of each, shared intensity scale."""
    n = len(volumes)
    fig, axes = plt.subplots(1, n, figsize=(3.3 * n, 3.3), squeeze=False, constrained_layout=True)
    for ax, (name, vol) in zip(axes[0], volumes.items()):
        show_slice(ax, vol, axis, index, spacing, cmap=cmap, vmin=vmin, vmax=vmax, title=name)
    if title:
        fig.suptitle(title)
    return fig


def plot_comparison(prediction, truth, inputs: Sequence | None = None, axis: int = 2, index: int | None = None,
                    spacing=None, title: str | None = None, error_max: float | None = None,
                    names: Sequence[str] = ("I0", "I1")):
    """Inputs (optional), prediction, truth and the signed error ``prediction - truth``,
    the same slice in each panel; PSNR (:func:`interp4d_lite.metrics.psnr`, whole volume)
    in the prediction's title."""
    from .metrics import psnr

    panels = []
    if inputs is not None:
        panels += [(names[i], v) for i, v in enumerate(inputs)]
    pred, tru = to_numpy(prediction), to_numpy(truth)
    panels += [(f"prediction ({psnr(pred, tru):.1f} dB)", pred), ("truth", tru)]
    n = len(panels) + 1
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.3), squeeze=False, constrained_layout=True)
    axes = axes[0]
    for ax, (name, vol) in zip(axes, panels):
        show_slice(ax, vol, axis, index, spacing, title=name)
    err = pred - tru
    emax = error_max if error_max is not None else max(float(np.abs(take_slice(err, axis, index)).max()), 1e-3)
    show_slice(axes[-1], err, axis, index, spacing, cmap="RdBu_r", vmin=-emax, vmax=emax,
               title="error (prediction - truth)", cbar_label="intensity difference")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- motion curves
def plot_displacement_curves(times, u_t0, points: Sequence[Sequence[int]], spacing=None, title: str | None = None):
    """Displacement against t at chosen voxels: the true ``u_t0(x)`` (solid, one colour per
    axis) and the linear-motion guess ``t * u_t0(x)|_{t=1}`` (dashed).

    ``times (K,)``; ``u_t0 (K, 3, X, Y, Z)``; points are voxel indices ``(x, y, z)``.
    Curved solid lines = motion non-linear in t; unequal axes = anisotropic motion."""
    times = np.asarray(times, dtype=np.float32)
    u = to_numpy(u_t0)
    scale = np.ones(3) if spacing is None else np.asarray(spacing, dtype=np.float32)
    unit = "voxels" if spacing is None else "mm"
    n = len(points)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.2), squeeze=False, constrained_layout=True, sharey=True)
    colours = ("tab:red", "tab:green", "tab:blue")
    for ax, p in zip(axes[0], points):
        x, y, z = (int(v) for v in p)
        for c in range(3):
            d = u[:, c, x, y, z] * scale[c]
            ax.plot(times, d, "-o", ms=3, color=colours[c], label=f"u along {AXIS_NAMES[c]}")
            ax.plot(times, times * d[-1] / max(times[-1], 1e-6), "--", color=colours[c], alpha=0.6)
        ax.set_title(f"voxel ({x}, {y}, {z})", fontsize=10)
        ax.set_xlabel("t (0 = input frame 0, 1 = input frame 1)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"displacement u_t0 ({unit})")
    axes[0][0].plot([], [], "k--", alpha=0.6, label="linear in t")
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- deformation fields
def jacobian_determinant(field) -> np.ndarray:
    """det(I + grad u) of a displacement field ``(3, X, Y, Z)`` in voxels, as numpy
    ``(X, Y, Z)``: :func:`interp4d_lite.metrics.jacobian_determinant` (values <= 0 mark
    folding; their share is ``metrics.folding_percent``)."""
    import torch

    from .metrics import jacobian_determinant as _jac

    u = to_numpy(field)
    if u.ndim == 4:
        u = u[None]
    return _jac(torch.as_tensor(u))[0].numpy().astype(np.float32)


def plot_field_views(field, axis: int = 2, index: int | None = None, background=None, spacing=None,
                     step: int = 3, title: str | None = None, grid_every: int = 2):
    """Four panels of a displacement field ``(3, X, Y, Z)`` (voxels) on one slice:
    in-plane arrows over the background image, the warped grid, the magnitude of the
    displacement, and the Jacobian determinant with folding (det <= 0) marked."""
    u = to_numpy(field)
    if u.ndim == 5:
        u = u[0]
    shape = u.shape[1:]
    a, b = _in_plane_axes(axis)
    n = shape[axis]
    index = n // 2 if index is None else int(np.clip(index, 0, n - 1))
    sp = np.ones(3) if spacing is None else np.asarray(spacing, dtype=np.float32)
    unit = "voxels" if spacing is None else "mm"
    extent, xl, yl = slice_extent(shape, axis, spacing)
    ua, ub = take_slice(u[a], axis, index) * sp[a], take_slice(u[b], axis, index) * sp[b]
    mag = np.sqrt(sum((take_slice(u[c], axis, index) * sp[c]) ** 2 for c in range(3)))
    det = take_slice(jacobian_determinant(u), axis, index)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), constrained_layout=True)
    # 1. arrows
    ax = axes[0]
    if background is not None:
        show_slice(ax, background, axis, index, spacing, title="displacement (in-plane arrows)")
    else:
        ax.set_title("displacement (in-plane arrows)", fontsize=10)
    ga = np.arange(0, shape[a], step)
    gb = np.arange(0, shape[b], step)
    A, B = np.meshgrid(ga, gb, indexing="ij")
    q = ax.quiver(A * sp[a], B * sp[b], ua[::step, ::step], ub[::step, ::step], mag[::step, ::step],
                  cmap="autumn", angles="xy", scale_units="xy", scale=1.0, width=0.006)
    cb = fig.colorbar(q, ax=ax, fraction=0.046, pad=0.04) if background is None else None
    if cb is not None:
        cb.set_label(f"|u| ({unit})", fontsize=8)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    ax.set_aspect("equal")
    # 2. warped grid: grid lines of the moving frame drawn where they land (x + u(x))
    ax = axes[1]
    A, B = np.meshgrid(np.arange(shape[a]), np.arange(shape[b]), indexing="ij")
    PA, PB = A * sp[a] + ua, B * sp[b] + ub
    for i in range(0, shape[a], grid_every):
        ax.plot(PA[i, :], PB[i, :], color="tab:blue", lw=0.7)
    for j in range(0, shape[b], grid_every):
        ax.plot(PA[:, j], PB[:, j], color="tab:blue", lw=0.7)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_title(f"warped grid x + u(x) (lines every {grid_every} voxels)", fontsize=10)
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    # 3. magnitude
    ax = axes[2]
    show_slice(ax, _embed(mag, axis, shape), axis, index, spacing, cmap="magma", vmin=0.0,
               vmax=max(float(mag.max()), 1e-6), title="|u| (3-D magnitude)", cbar_label=f"|u| ({unit})")
    # 4. Jacobian determinant with folding marked
    ax = axes[3]
    lim = max(0.25, float(np.abs(det - 1).max()))  # centred on 1 (volume preserved)
    show_slice(ax, _embed(det, axis, shape), axis, index, spacing, cmap="PiYG", vmin=1 - lim, vmax=1 + lim,
               title="Jacobian determinant", cbar_label="det(I + grad u)")
    fold = det <= 0
    pct = 100.0 * float(fold.mean())
    if fold.any():
        ia, ib = np.nonzero(fold)
        ax.scatter(ia * sp[a], ib * sp[b], marker="x", s=14, color="red", label="folding (det <= 0)")
        ax.legend(fontsize=7, loc="upper right")
    ax.set_title(f"Jacobian determinant (folding {pct:.2f} % of slice)", fontsize=10)
    if title:
        fig.suptitle(title)
    return fig


def _embed(slice2d: np.ndarray, axis: int, shape) -> np.ndarray:
    """Put a 2-D slice back into a volume that is 1 voxel thick along ``axis`` (so
    :func:`show_slice` can draw it with the right extent)."""
    vol = np.expand_dims(slice2d, axis)
    return np.broadcast_to(vol, tuple(s if i != axis else shape[axis] for i, s in enumerate(vol.shape)))


def plot_scale_weights(weights, axis: int = 2, index: int | None = None, spacing=None, title: str | None = None):
    """Per-voxel fusion weights over the L scales ``(L, X, Y, Z)`` (softmax: they sum to 1
    at every voxel): one map per scale plus the mean weight of each scale."""
    w = to_numpy(weights)
    if w.ndim == 5:
        w = w[0]
    L = w.shape[0]
    fig, axes = plt.subplots(1, L + 1, figsize=(3.2 * (L + 1), 3.3), constrained_layout=True)
    for lvl in range(L):
        show_slice(axes[lvl], w[lvl], axis, index, spacing, cmap="viridis", vmin=0.0, vmax=1.0,
                   title=f"scale {lvl} ({'coarsest' if lvl == 0 else 'finest' if lvl == L - 1 else 'middle'})",
                   cbar_label="fusion weight")
    means = w.reshape(L, -1).mean(1)
    axes[-1].bar(np.arange(L), means, color="tab:blue")
    axes[-1].set_xticks(np.arange(L))
    axes[-1].set_xlabel("scale (0 = coarsest)")
    axes[-1].set_ylabel("mean fusion weight")
    axes[-1].set_ylim(0, 1)
    axes[-1].set_title("mean weight per scale", fontsize=10)
    if title:
        fig.suptitle(title)
    return fig


def plot_film(ts, gammas, betas, title: str | None = None):
    """FiLM parameters against t: ``gammas``/``betas`` ``(N, C)`` for the N timestamps ``ts``
    (one level). Heat maps over (channel, t) and a few channels as curves."""
    ts = np.asarray(ts, dtype=np.float32)
    g, b = to_numpy(gammas).reshape(len(ts), -1), to_numpy(betas).reshape(len(ts), -1)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), constrained_layout=True)
    for ax, arr, name in ((axes[0], g, "scale gamma(t)"), (axes[1], b, "shift beta(t)")):
        im = ax.imshow(arr.T, aspect="auto", origin="lower", cmap="coolwarm",
                       extent=(ts[0], ts[-1], -0.5, arr.shape[1] - 0.5),
                       vmin=-np.abs(arr).max(), vmax=np.abs(arr).max())
        ax.set_xlabel("t")
        ax.set_ylabel("feature channel")
        ax.set_title(name, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).set_label("value (unitless)", fontsize=8)
    var = g.std(0)
    chosen = np.argsort(-var)[: min(4, g.shape[1])]
    for c in chosen:
        axes[2].plot(ts, g[:, c], "-", label=f"gamma ch {c}")
        axes[2].plot(ts, b[:, c], "--", label=f"beta ch {c}")
    axes[2].set_xlabel("t")
    axes[2].set_ylabel("FiLM parameter (unitless)")
    axes[2].set_title("channels that change most with t", fontsize=10)
    axes[2].legend(fontsize=6, ncol=2)
    axes[2].grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def plot_feature_maps(maps: Mapping[str, object], axis: int = 2, index: int | None = None, spacing=None,
                      title: str | None = None, cbar_label: str = "feature activation (a.u.)"):
    """The same feature channel (one ``(X, Y, Z)`` map per entry, e.g. per t) on a shared scale."""
    arrs = {k: to_numpy(v) for k, v in maps.items()}
    lim = max(float(np.abs(take_slice(v, axis, index)).max()) for v in arrs.values()) or 1.0
    n = len(arrs)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.3), squeeze=False, constrained_layout=True)
    for ax, (k, v) in zip(axes[0], arrs.items()):
        show_slice(ax, v, axis, index, spacing, cmap="coolwarm", vmin=-lim, vmax=lim, title=k, cbar_label=cbar_label)
    if title:
        fig.suptitle(title)
    return fig

def plot_metric_vs_t(results, metric: str = "psnr", ylabel: str | None = None, title: str | None = None, ax=None):
    """A metric against t, per method: each patient as its own thin line and the mean over
    patients as a thick line with markers (the legend names the methods).

    ``results``: the frame of :func:`interp4d_lite.train.evaluate.evaluate_methods` (or
    rows with ``method``, ``t``, ``metric`` and ``patient``). Patients' frames sit at
    different t (their cycles differ), so the mean is taken on the union of their t after
    interpolating each patient's curve linearly, over the t range the patient covers: a
    line never jumps between patients (no saw-tooth). Without a ``patient`` column all rows
    count as one patient (one line per method). Returns the figure."""
    import pandas as pd

    df = results if isinstance(results, pd.DataFrame) else pd.DataFrame(list(results))
    df = df[df[metric].notna() & df["t"].notna()] if metric in df else df.iloc[0:0]
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.8), constrained_layout=True)
    else:
        fig = ax.figure
    patient = df["patient"] if "patient" in df else pd.Series("all", index=df.index)
    for method, rows in df.groupby("method", sort=False):
        colour = METHOD_COLOURS.get(str(method))
        curves = []
        for _, pr in rows.groupby(patient.loc[rows.index], sort=False):
            c = pr.groupby("t")[metric].mean().sort_index()  # one value per t (repeated frames averaged)
            curves.append(c)
            if "patient" in df:
                ax.plot(c.index, c.to_numpy(), "-", lw=0.8, alpha=0.35, color=colour, label="_nolegend_")
        grid = np.unique(np.concatenate([c.index.to_numpy(dtype=float) for c in curves]))
        stack = np.full((len(curves), len(grid)), np.nan)
        for i, c in enumerate(curves):
            ts = c.index.to_numpy(dtype=float)
            inside = (grid >= ts.min()) & (grid <= ts.max())
            stack[i, inside] = np.interp(grid[inside], ts, c.to_numpy(dtype=float))
        ax.plot(grid, np.nanmean(stack, axis=0), "-o", lw=2.2, ms=4, label=str(method), color=colour)
    ax.set_xlabel("t (0 = input frame 0, 1 = input frame 1)")
    ax.set_ylabel(ylabel or metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


# --------------------------------------------------------------------------- what the figures show, from a model or fields
def film_parameters(model, ts, level: int = -1):
    """FiLM ``(gammas, betas)``, each ``(N, C)`` numpy, of decoder ``level`` for timestamps
    ``ts``: runs the model's :class:`~interp4d_lite.models.temporal.TemporalModulation`."""
    import torch

    from .models.temporal import TemporalModulation

    tm = next((m for m in model.modules() if isinstance(m, TemporalModulation)), None)
    if tm is None:
        raise ValueError(f"{type(model).__name__} has no TemporalModulation (only the student is modulated by t)")
    dev = next(tm.parameters()).device
    with torch.no_grad():
        gamma, beta = tm(torch.as_tensor(np.asarray(ts, dtype=np.float32), device=dev))[level]
    return gamma.flatten(1).cpu().numpy(), beta.flatten(1).cpu().numpy()


def strongest_motion_points(u_t0, n: int = 3, min_distance: int = 4) -> list[tuple[int, int, int]]:
    """Voxels where the motion is large and mostly along different axes: for each axis in
    turn, the voxel with the largest displacement along it at the last frame (at least
    ``min_distance`` voxels from the ones already chosen). ``u_t0 (K, 3, X, Y, Z)``."""
    u = to_numpy(u_t0)[-1]  # (3, X, Y, Z): the field at t = 1
    chosen: list[tuple[int, int, int]] = []
    for c in range(3):
        order = np.argsort(-np.abs(u[c]).ravel())
        for flat in order[:5000]:
            p = np.unravel_index(flat, u.shape[1:])
            if all(max(abs(int(a) - int(b)) for a, b in zip(p, q)) >= min_distance for q in chosen):
                chosen.append(tuple(int(v) for v in p))
                break
        if len(chosen) == n:
            break
    return chosen


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
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": repr(fig)}}


class _WidgetTool:
    """Base of the widget tools: ``controls`` (dict name -> widget), ``output``
    (an ``ipywidgets.Output``), ``widget`` (the VBox to display), ``figure`` (last render).
    Subclasses implement :meth:`render` (returns a matplotlib Figure)."""

    def __init__(self):
        import ipywidgets as W

        self.output = W.Output()
        self.figure = None
        self.renders = 0
        for w in self.controls.values():
            w.observe(self._on_change, names="value")
        self.widget = W.VBox([W.HBox(list(self.controls.values())[:3]),
                              W.HBox(list(self.controls.values())[3:]), self.output])
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
        forever (seen here as Voila dashboards stuck at the first tool under CPU load;
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


def render_slice_view(frames, axis: int, index: int, frame: int, window: float = 1.0, level: float = 0.5,
                      spacing=None, times=None, title: str | None = None):
    """The slice viewer's callback: one slice of frame ``frame`` of ``frames (T, X, Y, Z)``."""
    f = to_numpy(frames)
    vmin, vmax = window_level(window, level)
    fig, ax = plt.subplots(figsize=(5, 4.2), constrained_layout=True)
    label = f"frame {frame}"
    if times is not None and frame < len(times) and np.isfinite(times[frame]):
        label += f" (t = {float(times[frame]):.2f})"
    show_slice(ax, f[frame], axis, index, spacing, vmin=vmin, vmax=vmax,
               title=f"{title + ': ' if title else ''}{label}, {AXIS_NAMES[axis]} slice {index}")
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
        self.controls["axis"].observe(self._axis_changed, names="value")
        super().__init__()

    def _axis_changed(self, change):
        n = self.frames.shape[1 + change["new"]]
        self._reset_slice(n)

    def render(self):
        c = {k: w.value for k, w in self.controls.items()}
        return render_slice_view(self.frames, c["axis"], c["slice"], c["frame"], c["window"], c["level"],
                                 self.spacing, self.times, self.title)


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
        self.controls["axis"].observe(self._axis_changed, names="value")
        super().__init__()

    def _axis_changed(self, change):
        n = next(iter(self.fields.values())).shape[2 + change["new"]]
        self._reset_slice(n)

    def render(self):
        c = {k: w.value for k, w in self.controls.items()}
        return render_deformation_view(self.fields[c["field"]], c["frame"], c["axis"], c["slice"], c["step"],
                                       self.backgrounds, self.spacing, self.times, c["field"])


def render_deformation_view(fields, frame: int, axis: int, index: int, step: int = 3, backgrounds=None,
                            spacing=None, times=None, name: str = "field"):
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


def render_interpolation(prediction, truth, t: float, t_truth: float, axis: int, index: int, spacing=None,
                         decode_ms: float | None = None):
    """The interpolation explorer's callback: prediction at ``t``, the acquired frame nearest
    to ``t`` (at ``t_truth``) and their difference."""
    timing = f", decode {decode_ms:.0f} ms" if decode_ms is not None else ""
    note = "" if abs(t - t_truth) < 1e-3 else f" (nearest acquired frame: t = {t_truth:.2f})"
    return plot_comparison(prediction, truth, axis=axis, index=index, spacing=spacing,
                           title=f"student at t = {t:.2f}{timing}; truth{note}")


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
        self.controls["axis"].observe(self._axis_changed, names="value")
        self.last_decode_ms = None
        super().__init__()

    def _axis_changed(self, change):
        n = self.frames.shape[1 + change["new"]]
        self._reset_slice(n)

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
        c = {k: w.value for k, w in self.controls.items()}
        pred = self.predict(c["t"])
        k = self.nearest_frame(c["t"])
        return render_interpolation(pred, self.frames[k], c["t"], float(self.times[k]), c["axis"], c["slice"],
                                    self.spacing, self.last_decode_ms)


def _as_batch(x, device):
    import torch

    if not torch.is_tensor(x):
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    while x.dim() < 5:
        x = x.unsqueeze(0)
    return x.to(device=device, dtype=torch.float32)


def render_method_comparison(predictions: Mapping[str, object], truth, times, method: str, frame: int,
                             axis: int, index: int, spacing=None, error_max: float = 0.3):
    """The method comparison's callback: prediction of ``method`` for target ``frame``, truth
    and error (fixed error scale, so methods compare by eye)."""
    p = to_numpy(predictions[method])
    tr = to_numpy(truth)
    frame = int(np.clip(frame, 0, p.shape[0] - 1))
    return plot_comparison(p[frame], tr[frame], axis=axis, index=index, spacing=spacing, error_max=error_max,
                           title=f"{method}, target frame {frame} (t = {float(times[frame]):.2f})")


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
        self.controls["axis"].observe(self._axis_changed, names="value")
        super().__init__()

    def _axis_changed(self, change):
        n = self.truth.shape[1 + change["new"]]
        self._reset_slice(n)

    def render(self):
        c = {k: w.value for k, w in self.controls.items()}
        return render_method_comparison(self.predictions, self.truth, self.times, c["method"], c["frame"],
                                        c["axis"], c["slice"], self.spacing, self.error_max)


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
    preds = {str(m): np.stack([np.asarray(v, np.float32) for v in g["prediction"]])
             for m, g in df.groupby("method", sort=False)}
    truth = np.stack([patient.frames[k] for k in frames]).astype(np.float32)
    times = np.array([float(patient.times[k]) for k in frames], np.float32)
    return preds, truth, times
