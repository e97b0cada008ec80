"""Evaluation metrics (docs/METHOD.md, "Evaluation protocol", as UVI-Net reports them).

Images are intensities in [0, 1]: one volume ``(X, Y, Z)`` or a batch ``(B, 1, X, Y, Z)``,
numpy or torch. Fields are ``(3, X, Y, Z)`` or ``(B, 3, X, Y, Z)`` in voxels.
Every metric returns a Python float (the mean over the batch) unless
``reduction="none"``, which gives a ``(B,)`` numpy array.

* :func:`psnr`: ``10 log10(1 / MSE)`` over the whole volume (peak 1);
* :func:`local_ncc`: mean squared local NCC, window 9 (1 for identical volumes);
* :func:`ssim3d`: MONAI ``SSIMMetric``, 3D Gaussian window 11, sigma 1.5, data range 1; along an
  axis shorter than 11 voxels (a cine of 3-14 slices) the window is the largest odd size that fits
  (:func:`ssim_window`), so one slice gives the 2D SSIM of that slice;
* :func:`nmse`: ``MSE / mean(gt^2)``;
* :func:`endpoint_error`: mean ``|u_pred - u_true|`` (Euclidean) in voxels, or in mm with ``spacing``;
* :func:`folding_percent`: % of voxels where ``det(I + grad u) <= 0`` (central differences);
* :func:`frame_metrics`: all of the above in one dict.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .losses import local_ncc_loss

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from monai.metrics import SSIMMetric


def _volumes(x) -> torch.Tensor:
    """-> float32 ``(B, 1, X, Y, Z)``."""
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().float().cpu()
    if x.dim() == 3:
        x = x[None, None]
    elif x.dim() == 4:
        x = x[:, None]
    if x.dim() != 5 or x.shape[1] != 1:
        raise ValueError(f"expected a volume (X, Y, Z), (B, X, Y, Z) or (B, 1, X, Y, Z); got {tuple(x.shape)}")
    return x


def _fields(u) -> torch.Tensor:
    """-> float32 ``(B, 3, X, Y, Z)``."""
    u = torch.as_tensor(np.asarray(u) if not isinstance(u, torch.Tensor) else u).detach().float().cpu()
    if u.dim() == 4:
        u = u[None]
    if u.dim() != 5 or u.shape[1] != 3:
        raise ValueError(f"expected a field (3, X, Y, Z) or (B, 3, X, Y, Z); got {tuple(u.shape)}")
    return u


def _reduce(values: torch.Tensor, reduction: str):
    if reduction == "mean":
        return float(values.mean())
    if reduction == "none":
        return values.numpy()
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _pair(pred, gt):
    p, g = _volumes(pred), _volumes(gt)
    if p.shape != g.shape:
        raise ValueError(f"prediction {tuple(p.shape)} and ground truth {tuple(g.shape)} differ")
    return p, g


def mse(pred, gt, reduction: str = "mean"):
    p, g = _pair(pred, gt)
    return _reduce((p - g).pow(2).flatten(1).mean(1), reduction)


def psnr(pred, gt, reduction: str = "mean"):
    """Peak 1, whole volume; identical volumes give ``inf``."""
    p, g = _pair(pred, gt)
    m = (p.double() - g.double()).pow(2).flatten(1).mean(1)
    return _reduce((10 * torch.log10(1.0 / m)).float(), reduction)


def nmse(pred, gt, reduction: str = "mean"):
    p, g = _pair(pred, gt)
    return _reduce((p - g).pow(2).flatten(1).mean(1) / g.pow(2).flatten(1).mean(1).clamp_min(1e-12), reduction)


def local_ncc(pred, gt, window: int = 9, reduction: str = "mean"):
    """Mean of the squared local NCC over ``window^3`` windows (higher is better, 1 at best)."""
    p, g = _pair(pred, gt)
    vals = torch.stack([1 - local_ncc_loss(p[i : i + 1], g[i : i + 1], window) for i in range(p.shape[0])])
    return _reduce(vals, reduction)


SSIM_WINDOW = 11
_SSIM: dict = {}


def ssim_window(shape, window: int = SSIM_WINDOW) -> tuple[int, int, int]:
    """The SSIM window for a volume of ``shape`` ``(X, Y, Z)``: ``window`` along each axis, or
    the largest odd size not above that axis (at least 1) where the axis is shorter.

    >>> ssim_window((128, 128, 8))
    (11, 11, 7)
    """
    if len(shape) != 3:
        raise ValueError(f"ssim_window: expected a 3D shape, got {tuple(shape)}")
    sizes = (max(1, int(s)) for s in shape)
    return tuple(min(int(window), s if s % 2 else s - 1) for s in sizes)


def ssim3d(pred, gt, reduction: str = "mean"):
    """3D SSIM, Gaussian window 11, sigma 1.5, data range 1 (MONAI ``SSIMMetric``). Along an
    axis shorter than 11 voxels the window shrinks to fit (:func:`ssim_window`, e.g. (11, 11, 7)
    for 8 slices, (11, 11, 3) for 3): the Gaussian weights are the same, truncated."""
    p, g = _pair(pred, gt)
    win = ssim_window(p.shape[2:])
    if win not in _SSIM:
        _SSIM[win] = SSIMMetric(spatial_dims=3, data_range=1.0, kernel_type="gaussian", win_size=win, kernel_sigma=1.5)
    return _reduce(_SSIM[win](p, g).reshape(-1), reduction)


def endpoint_error(u_pred, u_true, spacing=None, reduction: str = "mean"):
    """Mean Euclidean end-point error; voxels, or mm when ``spacing (sx, sy, sz)`` is given."""
    d = _fields(u_pred) - _fields(u_true)
    if spacing is not None:
        d = d * torch.as_tensor(np.asarray(spacing, dtype=np.float32)).view(1, 3, 1, 1, 1)
    return _reduce(d.pow(2).sum(1).sqrt().flatten(1).mean(1), reduction)


def epe_moving(u_t0, u_t1, true_t0, true_t1, threshold: float = 1.0) -> float:
    """Field error where tissue moves, in voxels.

    Over the voxels whose true motion is larger than ``threshold`` voxels
    (``|u_t0| + |u_t1| > threshold``), the mean of ``(|u_t0 - true_t0| + |u_t1 - true_t1|) / 2``.
    Plain :func:`endpoint_error` averages over a mostly static volume, where a zero field is
    right, so it rewards predicting no motion; this number does not. NaN when no voxel moves.

    Args:
        u_t0, u_t1: predicted fields ``(B, 3, X, Y, Z)`` or ``(3, X, Y, Z)``, voxels.
        true_t0, true_t1: the true fields, same shape.
        threshold: motion (voxels) above which a voxel counts as moving.
    Returns:
        a float (voxels), pooled over the batch.
    """
    p0, p1, g0, g1 = (_fields(x) for x in (u_t0, u_t1, true_t0, true_t1))
    norm = lambda d: d.pow(2).sum(1).sqrt()  # noqa: E731  (B, X, Y, Z)
    moving = (norm(g0) + norm(g1)) > threshold
    if not bool(moving.any()):
        return float("nan")
    err = 0.5 * (norm(p0 - g0) + norm(p1 - g1))
    return float(err[moving].mean())


def jacobian_determinant(u) -> torch.Tensor:
    """``det(I + grad u)`` of the map ``x -> x + u(x)``, ``(B, X, Y, Z)``, central
    differences (one-sided at the border; ``np.gradient`` semantics)."""
    u = _fields(u).double()
    grads = []  # grads[c][a] = d u_c / d x_a
    for c in range(3):
        grads.append(torch.gradient(u[:, c], dim=(1, 2, 3)))
    J = [[grads[c][a] + (1.0 if a == c else 0.0) for a in range(3)] for c in range(3)]
    det = (
        J[0][0] * (J[1][1] * J[2][2] - J[1][2] * J[2][1])
        - J[0][1] * (J[1][0] * J[2][2] - J[1][2] * J[2][0])
        + J[0][2] * (J[1][0] * J[2][1] - J[1][1] * J[2][0])
    )
    return det.float()


def folding_percent(u, reduction: str = "mean"):
    """Percentage (0-100) of voxels with non-positive Jacobian determinant of ``x + u``."""
    det = jacobian_determinant(u)
    return _reduce(100.0 * (det <= 0).float().flatten(1).mean(1), reduction)


def frame_metrics(pred, gt, u_pred=None, u_true=None, spacing=None) -> dict:
    """Every metric for one predicted frame (or a batch, averaged). With ``u_pred``:
    ``folding_percent``; with ``u_pred`` and ``u_true`` also ``epe_vox`` (and
    ``epe_mm`` when ``spacing`` is given). Fields are whichever one is evaluated,
    normally ``u_t0``."""
    out = {"psnr": psnr(pred, gt), "ncc": local_ncc(pred, gt), "ssim": ssim3d(pred, gt), "nmse": nmse(pred, gt)}
    if u_pred is not None:
        out["folding_percent"] = folding_percent(u_pred)
        if u_true is not None:
            out["epe_vox"] = endpoint_error(u_pred, u_true)
            if spacing is not None:
                out["epe_mm"] = endpoint_error(u_pred, u_true, spacing=spacing)
    return out


def displacement_curves(fields: dict, u_end, region, spacing=None) -> dict[str, np.ndarray]:
    """The displacement along t of each field, mean over ``region``.

    ``fields``: name -> ``(K, 3, X, Y, Z)`` voxels; ``u_end (3, X, Y, Z)``: the reference
    displacement at ``t = 1``, whose direction at each voxel is the one measured along;
    ``region``: a boolean ``(X, Y, Z)`` mask. With ``spacing`` (mm) the displacements are
    turned into mm first. Returns name -> ``(K,)``: the mean over the region of
    ``u(t, x) . e(x)`` with ``e`` the unit ED -> ES direction, so a course linear in t is a
    straight line from 0 to the reference's endpoint value."""
    scale = np.ones(3, np.float32) if spacing is None else np.asarray(spacing, np.float32)
    region = np.asarray(region, bool)
    if not region.any():
        raise ValueError("displacement_curves: the region is empty")
    end = np.asarray(u_end, np.float32)[:, region] * scale[:, None]  # (3, N) mm
    direction = end / np.maximum(np.linalg.norm(end, axis=0, keepdims=True), 1e-6)
    out = {}
    for name, u in fields.items():
        u = np.asarray(u, np.float32)
        v = u[:, :, region] * scale[None, :, None]  # (K, 3, N)
        out[name] = (v * direction[None]).sum(1).mean(1)
    return out
