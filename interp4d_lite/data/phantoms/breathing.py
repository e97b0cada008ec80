"""Breathing on a real chest CT: 4D series with exact displacement fields from one static scan.

A static chest CT (HU, voxel axes RAS: X left->right, Y posterior->anterior, Z
inferior->superior) is the end-inhale state. :class:`BreathingMotion` gives the backward map
``phi_tau(x) = x + d_tau(x)`` of every cycle phase ``tau`` (0 = end-inhale, 0.5 = end-exhale):
the frame of phase ``tau`` shows at ``x`` the tissue the static scan has at ``phi_tau(x)``, so
:func:`make_breathing_series` renders every frame exactly from the scan (one trilinear sample
of the scan, no accumulated warping) and the true fields follow in the package's warping
convention: ``u_t0 = phi_t(x) - x`` and ``u_t1 = phi_1^{-1}(phi_t(x)) - x`` (frame ``i1`` is
the 50 % phase; ``phi_1^{-1}`` by fixed-point iteration, which converges because the map's
Jacobian stays far from singular, checked and recorded in the parameters).

What the model reproduces of measured 4D-CT lung motion:

* **superior-inferior dominant**: ``d_z = -si_mm * b(tau) * W(x)``; ``W`` grows from 0 at
  the lung apex to 1 at the lung base (the diaphragm), ``posterior_gain`` more in the dorsal
  lung, and stays with the diaphragm below it (the liver and upper abdomen, fading over
  ``abdomen_decay_mm``); the heart and mediastinum follow with ``heart_fraction``;
* **anterior-posterior and lateral components** (``ap_mm``, ``lr_mm``): the lung expands
  forward and outward at inhale; they vanish at the lung surface (no motion normal to the
  chest wall) and grow between 5 and 20 mm inside it (:data:`SURFACE_DEPTH_MM`);
* **sliding at the chest wall**: ``W`` is sharp across the lung's outer surface (one voxel of
  the scan): ribs, spine, chest-wall muscle and everything outside the body do not move while
  the lung slides along them. Across horizontal interfaces (lung apex, diaphragm dome) ``W`` is
  smoothed along Z only (``sigma >= si_mm / 2``), so the map never folds;
* **not linear in time**: ``b(tau) = 1 - cos^{2n}(pi tau)`` (``n_exp``, the Lujan curve:
  longer rest at exhale than at inhale), :func:`~interp4d_lite.data.phantoms.lung_breathing`;
* **hysteresis**: the AP and lateral components follow the same curve delayed by ``lag`` of a
  cycle, so the inhale path (50 % -> 90 %) and the exhale path (0 % -> 50 %) of a point differ
  (a loop in the SI-AP plane).

The body and lungs are found by thresholds on the scan (:func:`chest_masks`); every parameter
is recorded in ``Phantom4D.params``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from .common import HU_WINDOW, Phantom4D, _finish, _Grid
from .lung import lung_breathing

#: the ranges :meth:`BreathingParams.sample` draws from (uniform); the defaults of one draw
#: are the middle of each range
BREATHING_RANGES = {
    "si_mm": (10.0, 30.0),  # peak superior-inferior excursion at the lung base, mm
    "ap_mm": (2.0, 5.0),  # anterior-posterior expansion at the front of the lung, mm
    "lr_mm": (1.0, 3.0),  # lateral expansion at the side of the lung, mm
    "n_exp": (2.0, 3.0),  # exponent n of b = 1 - cos^{2n}(pi tau)
    "lag": (0.04, 0.12),  # delay of the AP/lateral motion behind SI, fraction of a cycle
    "posterior_gain": (0.1, 0.4),  # extra SI motion of the dorsal lung (fraction)
    "heart_fraction": (0.4, 0.7),  # SI motion of the heart/mediastinum relative to the lung next to it
    "abdomen_decay_mm": (80.0, 160.0),  # how far below the lung base the abdomen follows the diaphragm
}
#: depths (mm) below the lung surface between which the AP/lateral motion grows from 0 to full
#: (smoothstep): none in the sliding layer, where the SI motion changes sharply
SURFACE_DEPTH_MM = (5.0, 20.0)
#: HU thresholds of the masks: body > -500; lung (air inside the body) < -400; bone > 200
BODY_HU, LUNG_HU, BONE_HU = -500.0, -400.0, 200.0


@dataclass
class BreathingParams:
    """One breathing pattern (mm, cycle fractions); see the module docstring."""

    si_mm: float = 20.0
    ap_mm: float = 3.5
    lr_mm: float = 2.0
    n_exp: float = 2.5
    lag: float = 0.08
    posterior_gain: float = 0.25
    heart_fraction: float = 0.55
    abdomen_decay_mm: float = 120.0

    @classmethod
    def sample(cls, rng: np.random.Generator, ranges: dict | None = None, **fixed) -> BreathingParams:
        """A draw from ``ranges`` (default :data:`BREATHING_RANGES`); ``fixed`` pins fields."""
        ranges = {**BREATHING_RANGES, **(ranges or {})}
        vals = {k: float(rng.uniform(*ranges[k])) for k in BREATHING_RANGES}
        return cls(**{**vals, **{k: float(v) for k, v in fixed.items()}})

    def to_dict(self) -> dict:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass
class ChestMasks:
    """Masks on the scan's grid (bool ``(X, Y, Z)``) and where the lungs are (voxel indices)."""

    body: np.ndarray
    lungs: np.ndarray
    moving: np.ndarray  # lungs, mediastinum between them and the abdomen below them (moves with breathing)
    abdomen: np.ndarray  # the part of ``moving`` below the lungs (follows the diaphragm fully)
    z_top: float  # highest lung voxel (Z index)
    z_base: float  # lung base (10th percentile of the lung voxels' Z)
    x_mid: float  # midline between the lungs (X index)
    half_width: float  # half the lungs' extent along X (voxels)
    y_post: float  # posterior and anterior extent of the lungs (Y index, 2nd / 98th percentile)
    y_ant: float


def _largest(mask: np.ndarray, n: int = 1, min_fraction: float = 0.0) -> np.ndarray:
    lab, k = ndimage.label(mask)
    if k == 0:
        return np.zeros_like(mask)
    sizes = np.bincount(lab.ravel())[1:]
    order = np.argsort(sizes)[::-1][:n]
    keep = [i + 1 for i in order if sizes[i] >= min_fraction * sizes[order[0]]]
    return np.isin(lab, keep)


def _fill_slices(mask: np.ndarray, closed_edges=(0,)) -> np.ndarray:
    """Holes filled per axial slice; the edges of the field of view along the in-plane axes
    ``closed_edges`` count as body (0: left/right, 1: front/back), so lungs cut by a narrow
    field of view are still inside it."""
    out = np.empty_like(mask)
    pad = [(1, 1) if a in closed_edges else (0, 0) for a in (0, 1)]
    crop = tuple(slice(1, -1) if a in closed_edges else slice(None) for a in (0, 1))
    for z in range(mask.shape[2]):
        out[:, :, z] = ndimage.binary_fill_holes(np.pad(mask[:, :, z], pad, constant_values=True))[crop]
    return out


def _row_span(mask2d: np.ndarray) -> np.ndarray:
    """Each row along X filled between its first and last set voxel (joins the two lungs)."""
    out = np.zeros_like(mask2d)
    xs = np.arange(mask2d.shape[0])[:, None]
    has = mask2d.any(axis=0)
    first = np.where(has, mask2d.argmax(axis=0), 0)
    last = np.where(has, mask2d.shape[0] - 1 - mask2d[::-1].argmax(axis=0), -1)
    out[:] = (xs >= first[None, :]) & (xs <= last[None, :])
    return out


def chest_masks(hu: np.ndarray, spacing, closed_edges=(0,)) -> ChestMasks:
    """Body, lungs and the moving region of a chest CT (HU, RAS voxel axes, ``spacing`` mm).

    Body: the largest component above -500 HU, closed in-plane (5 x 5 voxels) and its holes
    filled slice by slice (``closed_edges``:
    the in-plane axes whose field-of-view edges count as body, for scans cropped through the
    chest wall, see :func:`_fill_slices`). Lungs: air below
    -400 HU inside the body, the two largest components (a second one kept when >= 20 % of the
    first). Moving region: per axial slice, the lungs and the span between them along X (the
    mediastinum), minus the bone behind the lungs' centre (the spine, > 200 HU); below the
    slice of largest lung area, that slice's span inside the body less a 12 mm wall (the
    upper abdomen under the diaphragm). Raises ValueError when no lung is found."""
    sp = np.asarray(spacing, dtype=np.float64)
    ring = ndimage.binary_closing(_largest(hu > BODY_HU), np.ones((5, 5, 1), bool))  # mend a thin chest wall
    body = _fill_slices(ring, closed_edges)
    air = (hu < LUNG_HU) & body
    lungs = _largest(air, n=2, min_fraction=0.2)
    if lungs.sum() * np.prod(sp) < 50_000:  # < 50 ml: not a chest
        raise ValueError(f"chest_masks: no lungs found (air inside the body: {air.sum() * np.prod(sp) / 1000:.0f} ml)")
    idx = np.nonzero(lungs)
    z_top = float(idx[2].max())
    z_base = float(np.percentile(idx[2], 10))
    x_lo, x_hi = np.percentile(idx[0], [1, 99])
    y_post, y_ant = (float(v) for v in np.percentile(idx[1], [2, 98]))
    y_centre = float(idx[1].mean())
    bone = ndimage.binary_dilation((hu > BONE_HU) & ~lungs, iterations=1)
    bone[:, int(np.ceil(y_centre)) :, :] = False  # sternum and contrast-filled heart stay in
    span = np.zeros_like(lungs)
    for z in range(lungs.shape[2]):
        if lungs[:, :, z].any():
            span[:, :, z] = _row_span(lungs[:, :, z])
    span &= body & ~bone
    area = lungs.sum(axis=(0, 1))
    z_peak = int(np.argmax(area * (np.arange(lungs.shape[2]) <= (z_base + z_top) / 2)))
    wall = max(1, int(round(12.0 / sp[0])))
    inner = np.stack([ndimage.binary_erosion(body[:, :, z], iterations=wall) for z in range(body.shape[2])], axis=2)
    foot = span[:, :, z_peak]
    below = np.zeros_like(lungs)
    below[:, :, :z_peak] = foot[:, :, None] & inner[:, :, :z_peak] & ~bone[:, :, :z_peak]
    return ChestMasks(
        body=body,
        lungs=lungs,
        moving=span | below | lungs,
        abdomen=below & ~span & ~lungs,
        z_top=z_top,
        z_base=z_base,
        x_mid=float((x_lo + x_hi) / 2),
        half_width=float(max((x_hi - x_lo) / 2, 1.0)),
        y_post=y_post,
        y_ant=max(y_ant, y_post + 1.0),
    )


class BreathingMotion:
    """The breathing backward map of one chest CT (see the module docstring).

    ``hu`` (X, Y, Z) on a grid with RAS-diagonal ``affine`` (``spacing`` mm along X, Y, Z, no
    rotation); the displacement maps are precomputed on that grid and sampled trilinearly at
    any point (mm, world)."""

    def __init__(self, hu: np.ndarray, affine: np.ndarray, params: BreathingParams, masks: ChestMasks | None = None):
        affine = np.asarray(affine, dtype=np.float64)
        self.spacing = np.diag(affine)[:3].copy()
        if np.any(self.spacing <= 0) or np.abs(affine[:3, :3] - np.diag(self.spacing)).max() > 1e-6:
            raise ValueError("BreathingMotion: the scan's affine must be diagonal with positive spacing (RAS)")
        self.origin = affine[:3, 3].copy()
        self.params = params
        self.masks = masks = masks or chest_masks(hu, self.spacing)
        sp = self.spacing
        shape = hu.shape
        x, y, z = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij", sparse=True)
        # SI: grows from the apex (0) to the base (1), stays with the diaphragm below, fades in the abdomen
        h = max(masks.z_top - masks.z_base, 1.0)
        prof = np.clip((masks.z_top - z) / h, 0.0, 1.0)
        below = np.clip((masks.z_base - z) * sp[2], 0.0, None)
        prof = prof * np.exp(-((below / params.abdomen_decay_mm) ** 2))
        post = 1.0 + params.posterior_gain * np.clip(
            ((masks.y_post + masks.y_ant) / 2 - y) / ((masks.y_ant - masks.y_post) / 2), -1.0, 1.0
        )
        weight = np.where(masks.lungs | masks.abdomen, 1.0, params.heart_fraction) * masks.moving
        w = weight.astype(np.float32) * prof * post / (1.0 + params.posterior_gain)
        # sharp in-plane (sliding), smooth along Z: |dd_z/dz| <= ~0.4, the map cannot fold
        sigma_z = max(params.si_mm / 2.0, 2.0 * sp[2]) / sp[2]
        self.sigma_z_mm = float(sigma_z * sp[2])
        w = ndimage.gaussian_filter1d(w, sigma_z, axis=2, mode="nearest")
        w = ndimage.gaussian_filter(w, (0.5, 0.5, 0.0), mode="nearest")
        self.si_map = (params.si_mm * w).astype(np.float32)
        # AP and lateral: expansion inside the lungs, zero at their surface
        depth = ndimage.distance_transform_edt(masks.lungs, sampling=sp)
        r = np.clip((depth - SURFACE_DEPTH_MM[0]) / (SURFACE_DEPTH_MM[1] - SURFACE_DEPTH_MM[0]), 0.0, 1.0)
        s = (r * r * (3.0 - 2.0 * r)).astype(np.float32)  # smoothstep: no kink where the lung slides
        rel_x = np.clip((x - masks.x_mid) / masks.half_width, -1.0, 1.0)
        rel_y = np.clip((y - masks.y_post) / (masks.y_ant - masks.y_post), 0.0, 1.0)
        self.lr_map = (params.lr_mm * s * rel_x).astype(np.float32)
        self.ap_map = (params.ap_mm * s * rel_y).astype(np.float32)

    # ---------------------------------------------------------------- time and space
    def amounts(self, tau) -> tuple[np.ndarray, np.ndarray]:
        """``(b, a)``: the SI amount and the (lagged) AP/lateral amount at cycle phase ``tau``."""
        return lung_breathing(tau, self.params.n_exp, self.params.lag)

    def to_voxels(self, p_mm: np.ndarray) -> np.ndarray:
        shp = (3,) + (1,) * (p_mm.ndim - 1)
        return (p_mm - self.origin.reshape(shp)) / self.spacing.reshape(shp)

    def displacement(self, p_mm: np.ndarray, tau: float) -> np.ndarray:
        """``d_tau(p)`` (3, ...) mm at points ``p_mm`` (3, ...) mm."""
        b, a = (float(v) for v in self.amounts(tau))
        vox = self.to_voxels(p_mm)
        smp = lambda m: ndimage.map_coordinates(m, vox, order=1, mode="nearest")  # noqa: E731
        return np.stack([a * smp(self.lr_map), a * smp(self.ap_map), -b * smp(self.si_map)]).astype(np.float32)

    def backward(self, x_mm: np.ndarray, tau: float) -> np.ndarray:
        """``phi_tau(x)``: the point of the static scan shown at ``x`` in the frame of phase ``tau``."""
        return x_mm + self.displacement(x_mm, tau)

    def inverse(self, q_mm: np.ndarray, tau: float, iters: int = 40, tol_mm: float = 1e-3) -> np.ndarray:
        """``phi_tau^{-1}(q)`` by the fixed point ``p = q - d_tau(p)`` (until it moves < ``tol_mm``)."""
        p = q_mm.copy()
        for _ in range(iters):
            new = q_mm - self.displacement(p, tau)
            step = float(np.abs(new - p).max())
            p = new
            if step < tol_mm:
                break
        return p


def _jacobian_min(phi_mm: np.ndarray, spacing) -> float:
    """Smallest Jacobian determinant of a map sampled on a grid (3, X, Y, Z) mm."""
    g = [np.gradient(phi_mm[c], *spacing) for c in range(3)]  # g[c][a] = d phi_c / d x_a
    J = np.array([[g[c][a] for a in range(3)] for c in range(3)])
    return float(np.linalg.det(np.moveaxis(J, (0, 1), (-2, -1))).min())


def make_breathing_series(
    hu: np.ndarray,
    affine: np.ndarray,
    *,
    shape=(48, 48, 48),
    spacing=(4.0, 4.0, 4.0),
    centre_mm=None,
    params: BreathingParams | None = None,
    n_frames: int = 10,
    noise_hu: float = 15.0,
    seed: int = 0,
    patient_id: str = "chest001",
    source: str = "a static chest CT",
    motion: BreathingMotion | None = None,
) -> Phantom4D:
    """A 4D series (phases 0 %..90 %, HU) of a static chest CT breathing with ``params``.

    ``hu``/``affine``: the scan on a RAS-diagonal grid. The series grid has ``shape`` voxels of
    ``spacing`` mm centred at ``centre_mm`` (world; default the lungs' centre); the scan is
    smoothed against aliasing and sampled trilinearly (air, -1000 HU, outside it). ``noise_hu``:
    Gaussian noise per frame (CT noise). Returns a :class:`Phantom4D` with ``phantom="lung"``
    (i0 = 0 %, i1 = 50 %, exact ``u_t0``/``u_t1`` for frames i0..i1), written by
    :func:`~interp4d_lite.data.phantoms.write_lung_layout` like the lung phantom."""
    if n_frames < 4 or n_frames % 2:
        raise ValueError(f"breathing series: n_frames must be even and >= 4 (phase 50 % is frame n/2), got {n_frames}")
    rng = np.random.default_rng(seed)
    params = params or BreathingParams()
    motion = motion or BreathingMotion(hu, affine, params)
    grid = _Grid(shape, spacing)
    if centre_mm is None:
        lung_idx = np.array(np.nonzero(motion.masks.lungs), dtype=np.float64).mean(axis=1)
        centre_mm = motion.origin + lung_idx * motion.spacing
    centre = np.asarray(centre_mm, dtype=np.float64).reshape(3, 1, 1, 1)
    x_mm = (grid.mm + centre).astype(np.float32)  # series grid in world mm
    ratio = grid.spacing / motion.spacing
    sigma = 0.5 * np.sqrt(np.clip(ratio**2 - 1.0, 0.0, None))
    src = ndimage.gaussian_filter(hu.astype(np.float32), sigma) if np.any(sigma > 0) else hu.astype(np.float32)

    def render(p_mm):
        return ndimage.map_coordinates(src, motion.to_voxels(p_mm), order=1, mode="constant", cval=-1000.0)

    i1 = n_frames // 2
    tau = np.arange(n_frames) / n_frames
    phi_1 = None
    frames = np.empty((n_frames, *grid.shape), np.float32)
    u_t0 = np.empty((i1 + 1, 3, *grid.shape), np.float32)
    u_t1 = np.empty((i1 + 1, 3, *grid.shape), np.float32)
    sp = grid.spacing.reshape(3, 1, 1, 1)
    jac = []
    for i in range(n_frames):
        phi = motion.backward(x_mm, tau[i]) if i > 0 else x_mm
        frames[i] = render(phi)
        if i <= i1:
            u_t0[i] = (phi - x_mm) / sp
            u_t1[i] = (motion.inverse(phi, tau[i1]) - x_mm) / sp
        if i == i1:
            phi_1 = phi
        jac.append(_jacobian_min(phi, grid.spacing) if i > 0 else 1.0)
    b_all, a_all = motion.amounts(tau)
    residual = motion.backward(motion.inverse(phi_1, tau[i1]), tau[i1]) - phi_1
    params_out = dict(
        kind="lung",
        generator="breathing",
        source=source,
        patient_id=patient_id,
        shape=list(grid.shape),
        spacing=[float(s) for s in grid.spacing],
        n_frames=int(n_frames),
        noise_hu=float(noise_hu),
        seed=int(seed),
        centre_mm=[float(v) for v in np.ravel(centre)],
        phases=[int(round(100 * k / n_frames)) for k in range(n_frames)],
        breathing=params.to_dict(),
        si_amount=[float(v) for v in b_all],
        ap_amount=[float(v) for v in a_all],
        sigma_z_mm=motion.sigma_z_mm,
        min_jacobian=float(min(jac)),
        inverse_residual_mm=float(np.abs(residual).max()),
        hu_window=list(HU_WINDOW),
    )
    ph = _finish("lung", patient_id, frames, grid, 0, i1, u_t0, u_t1, noise_hu, rng, params_out, clip=None)
    ph.affine[:3, 3] += np.ravel(centre)  # the series grid where it lies in the scan's world (RAS mm)
    return ph
