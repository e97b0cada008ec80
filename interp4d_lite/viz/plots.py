"""Static figures of the notebooks (matplotlib): slices, comparisons, fusion weights, FiLM
parameters, feature maps, metrics against t (motion curves and deformation fields are in
:mod:`interp4d_lite.viz.fields`).

Every figure has colour bars, axis labels and units: axes are in **mm** when a voxel
spacing is given (voxels otherwise), intensities are **normalised intensity [0, 1]**,
displacements are in **voxels** (the package's convention) unless a spacing converts
them to mm. Slices follow the array convention of docs/ARCHITECTURE.md: volumes are
``(X, Y, Z)``; a slice along ``axis`` shows the two remaining axes, the lower-numbered
one horizontal, with ``origin="lower"``.

Nothing here computes a metric: the PSNR in :func:`plot_comparison`'s title comes from
:mod:`interp4d_lite.metrics`; :func:`plot_metric_vs_t`
draws the frame of :func:`interp4d_lite.train.evaluate.evaluate_methods`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

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


def show_slice(
    ax,
    volume,
    axis: int = 2,
    index: int | None = None,
    spacing=None,
    cmap: str = "gray",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    title: str | None = None,
    cbar_label: str | None = INTENSITY_LABEL,
    colorbar: bool = True,
):
    """Draw one slice on ``ax`` with axis labels (mm or voxels) and a colour bar; returns the AxesImage."""
    v = to_numpy(volume)
    sl = take_slice(v, axis, index)
    extent, xl, yl = slice_extent(v.shape[-3:], axis, spacing)
    im = ax.imshow(
        sl.T, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest", aspect="equal"
    )
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
def plot_volumes(
    volumes: Mapping[str, object],
    axis: int = 2,
    index: int | None = None,
    spacing=None,
    title: str | None = None,
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "gray",
    cbar_label: str | None = INTENSITY_LABEL,
):
    """One panel per named volume, the same slice of each, shared intensity scale (its colour
    bars labelled ``cbar_label``)."""
    n = len(volumes)
    fig, axes = plt.subplots(1, n, figsize=(3.3 * n, 3.3), squeeze=False, constrained_layout=True)
    for ax, (name, vol) in zip(axes[0], volumes.items()):
        show_slice(ax, vol, axis, index, spacing, cmap=cmap, vmin=vmin, vmax=vmax, title=name, cbar_label=cbar_label)
    if title:
        fig.suptitle(title)
    return fig


def plot_comparison(
    prediction,
    truth,
    inputs: Sequence | None = None,
    axis: int = 2,
    index: int | None = None,
    spacing=None,
    title: str | None = None,
    error_max: float | None = None,
    names: Sequence[str] = ("I0", "I1"),
):
    """Inputs (optional), prediction, truth and the signed error ``prediction - truth``,
    the same slice in each panel; PSNR (:func:`interp4d_lite.metrics.psnr`, whole volume)
    in the prediction's title."""
    from ..metrics import psnr

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
    show_slice(
        axes[-1],
        err,
        axis,
        index,
        spacing,
        cmap="RdBu_r",
        vmin=-emax,
        vmax=emax,
        title="error (prediction - truth)",
        cbar_label="intensity difference",
    )
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- inside the student
def plot_scale_weights(weights, axis: int = 2, index: int | None = None, spacing=None, title: str | None = None):
    """Per-voxel fusion weights over the L scales ``(L, X, Y, Z)`` (softmax: they sum to 1
    at every voxel): one map per scale plus the mean weight of each scale."""
    w = to_numpy(weights)
    if w.ndim == 5:
        w = w[0]
    L = w.shape[0]
    fig, axes = plt.subplots(1, L + 1, figsize=(3.2 * (L + 1), 3.3), constrained_layout=True)
    for lvl in range(L):
        show_slice(
            axes[lvl],
            w[lvl],
            axis,
            index,
            spacing,
            cmap="viridis",
            vmin=0.0,
            vmax=1.0,
            title=f"scale {lvl} ({'coarsest' if lvl == 0 else 'finest' if lvl == L - 1 else 'middle'})",
            cbar_label="fusion weight",
        )
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
        im = ax.imshow(
            arr.T,
            aspect="auto",
            origin="lower",
            cmap="coolwarm",
            extent=(ts[0], ts[-1], -0.5, arr.shape[1] - 0.5),
            vmin=-np.abs(arr).max(),
            vmax=np.abs(arr).max(),
        )
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


def plot_feature_maps(
    maps: Mapping[str, object],
    axis: int = 2,
    index: int | None = None,
    spacing=None,
    title: str | None = None,
    cbar_label: str = "feature activation (a.u.)",
):
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


# --------------------------------------------------------------------------- metrics against t
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
    if df.empty:  # e.g. a field error on a scan where nothing moves more than the threshold
        ax.text(0.5, 0.5, f"no values of {metric} on this data", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("t (0 = input frame 0, 1 = input frame 1)")
        ax.set_ylabel(ylabel or metric)
        if title:
            ax.set_title(title)
        return fig
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


# --------------------------------------------------------------------------- what the figures show, from a model
def film_parameters(model, ts, level: int = -1):
    """FiLM ``(gammas, betas)``, each ``(N, C)`` numpy, of decoder ``level`` for timestamps
    ``ts``: runs the model's :class:`~interp4d_lite.models.temporal.TemporalModulation`."""
    import torch

    from ..models.temporal import TemporalModulation

    tm = next((m for m in model.modules() if isinstance(m, TemporalModulation)), None)
    if tm is None:
        raise ValueError(
            f"{type(model).__name__} has no TemporalModulation (a student with time_conditioning='film' has)"
        )
    dev = next(tm.parameters()).device
    with torch.no_grad():
        gamma, beta = tm(torch.as_tensor(np.asarray(ts, dtype=np.float32), device=dev))[level]
    return gamma.flatten(1).cpu().numpy(), beta.flatten(1).cpu().numpy()
