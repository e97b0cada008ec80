"""Figures of motion (matplotlib): displacement against t at chosen voxels, the four views
of a deformation field (arrows, warped grid, magnitude, Jacobian determinant with folding
marked), the voxels worth following and motion over time of several methods at one region
(:func:`plot_motion_over_time`, drawing what :mod:`interp4d_lite.train.motion` computes).

Units and slice conventions are those of :mod:`interp4d_lite.viz.plots` (axes in mm when a
spacing is given, displacements in voxels unless a spacing converts them to mm). The Jacobian
determinant is :func:`interp4d_lite.metrics.jacobian_determinant`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

from .plots import AXIS_NAMES, _in_plane_axes, show_slice, slice_extent, take_slice, to_numpy


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
def plot_field_views(
    field,
    axis: int = 2,
    index: int | None = None,
    background=None,
    spacing=None,
    step: int = 3,
    title: str | None = None,
    grid_every: int = 2,
):
    """Four panels of a displacement field ``(3, X, Y, Z)`` (voxels) on one slice:
    in-plane arrows over the background image, the warped grid, the magnitude of the
    displacement, and the Jacobian determinant with folding (det <= 0) marked
    (:func:`interp4d_lite.metrics.jacobian_determinant`)."""
    from ..metrics import jacobian_determinant

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
    det = take_slice(jacobian_determinant(u)[0].numpy(), axis, index)
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
    q = ax.quiver(
        A * sp[a],
        B * sp[b],
        ua[::step, ::step],
        ub[::step, ::step],
        mag[::step, ::step],
        cmap="autumn",
        angles="xy",
        scale_units="xy",
        scale=1.0,
        width=0.006,
    )
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
    show_slice(
        ax,
        _embed(mag, axis, shape),
        axis,
        index,
        spacing,
        cmap="magma",
        vmin=0.0,
        vmax=max(float(mag.max()), 1e-6),
        title="|u| (3-D magnitude)",
        cbar_label=f"|u| ({unit})",
    )
    # 4. Jacobian determinant with folding marked
    ax = axes[3]
    lim = max(0.25, float(np.abs(det - 1).max()))  # centred on 1 (volume preserved)
    show_slice(
        ax,
        _embed(det, axis, shape),
        axis,
        index,
        spacing,
        cmap="PiYG",
        vmin=1 - lim,
        vmax=1 + lim,
        title="Jacobian determinant",
        cbar_label="det(I + grad u)",
    )
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


# --------------------------------------------------------------------------- points to follow
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


# --------------------------------------------------------------------------- motion over time
#: line styles of the curves of :func:`plot_motion_over_time`, by name (others get the colour cycle)
MOTION_STYLES = {
    "true motion": dict(color="black", ls="-", marker="o", lw=2.2),
    "registration to each real frame": dict(color="black", ls="-", marker="o", lw=2.2),
    "linear in t": dict(color="tab:orange", ls="--", marker="", lw=1.8),
}


def plot_motion_over_time(
    motion, curves=None, where=None, axis: int = 2, index: int | None = None, title: str | None = None
):
    """Motion over time at one region: left, the region (red) over the first input frame;
    right, the displacement along the reference's ED -> ES direction (mm) against t, one line per
    method, the reference solid black and linear motion dashed.

    ``motion``: a :class:`interp4d_lite.train.motion.MotionCurves`. ``curves`` (name -> ``(K,)``)
    and ``where`` (a boolean ``(X, Y, Z)`` mask) replace its curves and region (the widget's
    single voxels); ``index`` defaults to the slice holding most of the region."""
    region = motion.region if where is None else np.asarray(where, bool)
    curves = motion.curves if curves is None else curves
    if index is None:
        other = tuple(i for i in range(3) if i != axis)
        index = int(np.argmax(region.sum(axis=other)))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True, gridspec_kw={"width_ratios": [1, 1.5]})
    show_slice(axes[0], motion.background, axis, index, motion.spacing, title=f"{motion.patient_id}: where (red)")
    mask = take_slice(region.astype(np.float32), axis, index)
    if mask.any():
        extent, _, _ = slice_extent(region.shape, axis, motion.spacing)
        overlay = np.ma.masked_where(mask.T < 0.5, mask.T)
        red = ListedColormap(["red"])
        axes[0].imshow(overlay, origin="lower", cmap=red, extent=extent, alpha=0.6, interpolation="nearest")
    ax = axes[1]
    others = iter(("tab:blue", "tab:purple", "tab:green", "tab:red", "tab:brown", "tab:pink", "tab:olive"))
    for name, c in curves.items():
        style = MOTION_STYLES.get(name) or dict(lw=1.8, marker="s", color=next(others, None))
        ax.plot(motion.times, c, label=name, ms=4, **style)
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xlabel("t (0 = input frame 0, 1 = input frame 1)")
    ax.set_ylabel("displacement along ED -> ES (mm)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    n = int(region.sum())
    ax.set_title(f"mean over {n} voxel{'s' if n != 1 else ''}; reference: {motion.reference}", fontsize=10)
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- backward warping
def plot_backward_warp(image, warped, target, axis: int = 2, index: int | None = None, spacing=None, title=None):
    """Backward warping on one slice: the input ``I0``, ``warp(I0, u)``, the frame ``I_t`` it
    should match, the difference ``warp(I0, u) - I_t`` and, for comparison, ``I0 - I_t`` (no
    motion), the differences on one symmetric colour scale. Volumes ``(X, Y, Z)`` (or with
    leading axes of size 1), intensities in [0, 1]."""
    i0, w, it = (to_numpy(v) for v in (image, warped, target))
    d_warp, d_none = w - it, i0 - it
    lim = max(float(np.abs(take_slice(d_none, axis, index)).max()), 1e-3)
    fig, axes = plt.subplots(1, 5, figsize=(19, 3.6), constrained_layout=True)
    show_slice(axes[0], i0, axis, index, spacing, title="I0 (the input)")
    show_slice(axes[1], w, axis, index, spacing, title="warp(I0, u): I0 sampled at x + u(x)")
    show_slice(axes[2], it, axis, index, spacing, title="I_t (the frame to match)")
    label = "difference (normalised intensity)"
    for ax, diff, title in ((axes[3], d_warp, "warp(I0, u) − I_t"), (axes[4], d_none, "I0 − I_t (no motion)")):
        show_slice(ax, diff, axis, index, spacing, cmap="RdBu_r", vmin=-lim, vmax=lim, cbar_label=label, title=title)
    if title:
        fig.suptitle(title)
    return fig
