"""Synthetic 4D phantoms with exact ground-truth motion (cardiac, lung, linear).

How a phantom is made (the same for every phantom):

* a **reference image** ``I_ref(y)`` is defined at any point ``y`` (mm): smooth shapes
  whose edges are about one voxel wide (a logistic of a signed distance measured in
  voxels) plus texture precomputed on the voxel grid and sampled trilinearly;
* a **backward map** ``phi_tau`` sends a point of the frame-tau grid to the reference
  point it shows, so every frame is rendered exactly, ``I_tau(x) = I_ref(phi_tau(x))``
  (no warping, no accumulated interpolation);
* frame ``i0`` *is* the reference (``phi = identity``), hence the true fields in the
  warping convention of docs/ARCHITECTURE.md are
  ``u_t0(x) = phi_t(x) - x`` and ``u_t1(x) = phi_1^{-1}(phi_t(x)) - x`` (voxel units).
  Every map below is a composition of steps that are each invertible in closed form
  (a rotation whose angle depends only on coordinates it leaves unchanged, a radial
  map at fixed height and angle, piecewise-linear maps along one axis), so ``phi_1^{-1}`` is
  exact rather than iterated.

Temporal profiles are clearly non-linear and similar across patients, with modest
per-patient variation drawn from the seed (docs/METHOD.md, "What a student can and cannot
learn"). Axes follow the NIfTI voxel axes ``(X, Y, Z)``; the affine is RAS with the
grid centre at world (0, 0, 0).

* **cardiac** -- a short-axis cine MRI (bSSFP-like contrast: blood > fat > liver/muscle >
  myocardium >> lung/air) of a beating heart in a thorax. X, Y in-plane, Z = the LV long axis
  (base superior, apex inferior); default 128x128x10 voxels of (1.5, 1.5, 8) mm (ACDC-like:
  thick slices, the ventricles filling the stack from the atria at the top to the apex near
  the bottom), 25 frames per cycle (>= 6 accepted for quick CPU tutorials). The anatomy has
  adult size at an in-plane field of view of 220 mm and scales with the grid's field of view
  (``CARDIAC_REFERENCE_FOV``), so a small grid shows the same picture coarser. Thorax: skin and
  subcutaneous fat, chest-wall muscle, ribs and sternum, lungs with faint vessels, vertebra,
  spinal canal and paraspinal muscles, descending aorta, oesophagus, liver and stomach in the
  apical slices. Heart: LV cavity (bright blood, trabeculae, two papillary muscles), LV
  myocardium (dark ring), the RV as a crescent of blood with a thin free wall, fat in the
  atrioventricular and interventricular grooves, the atria above the base plane. ED = frame 0,
  ES = ``round(es_frac * n_frames)`` with ``es_frac = 0.34 s * sqrt(RR) / RR`` for a heart rate
  of 55-95 bpm (33-43 % of the cycle). Contraction ``s`` (0 at ED, 1 at ES) follows ``1 - (1 -
  u)^p`` over ejection (``p ~ 2.2 +- 10 %``: fast early) and, over filling, rapid early filling,
  diastasis and the atrial kick (:func:`cardiac_contraction`). Motion about the LV axis
  (:class:`_CardiacMotion`): radial contraction with the endocardium moving 18-36 % inward and
  the wall thickening 30-50 % (its in-plane area grows as the ventricle shortens: volume about
  constant), the RV crescent emptying, longitudinal shortening of 10-17 % (the base plane
  descends toward the fixed apex), twist (apex ~+7 deg, base ~-3 deg at ES); the motion tapers
  to exactly zero 22 mm (adult size) outside the heart, so the rest of the thorax is still.
  Per patient (seed): LV size, wall thickness, RV size, ejection, shortening, twist, heart rate,
  the heart's position and in-plane orientation, body size and subcutaneous fat. A smooth
  static multiplicative coil bias field (``bias``) and Rician noise (``noise``: the std of each
  Gaussian channel, ``sqrt((s + n1)^2 + n2^2)``; air is not 0 but ``noise * sqrt(pi / 2)``).
  ``frames`` in [0, 1]; ``labels`` the LV / myocardium / RV label map of every frame
  (:data:`CARDIAC_LABELS`, ACDC's values) and ``params["ejection_fraction"]`` from it.
* **lung** -- X = left->right, Y = posterior->anterior, Z = inferior->superior (RAS),
  default spacing (2.5, 2.5, 2.5) mm, 10 phases; phase 0 (0 %, end-inhale) is ``i0``
  and phase 5 (50 %, end-exhale) is ``i1``. Superior-inferior motion ``b = 1 -
  cos^{2n}(pi tau)`` (``n ~ 2.5``) growing from the lung apex to the diaphragm, plus an
  anterior-posterior component with a phase lag (hysteresis: the inhale path differs
  from the exhale path). ``frames`` are **HU** (float32); ``hu_to_unit`` gives the
  loader's [0, 1] scale (clip [-1400, 200], then divide by 1600).
* **linear** -- uniform translation linear in time, ``v = amplitude * (3, 2, 1)``
  voxels over ``t in [0, 1]``; ``i0 = 0``, ``i1 = n_frames - 1``. The linear-motion
  assumption is exact here: ``u_t0 = -t v``, ``u_t1 = (1 - t) v``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates
from scipy.special import expit

from . import DATA_KINDS

__all__ = [
    "Phantom4D",
    "make_cardiac_phantom",
    "make_lung_phantom",
    "make_linear_phantom",
    "make_phantom",
    "write_acdc_layout",
    "write_lung_layout",
    "write_phantom_dataset",
    "hu_to_unit",
    "patient_seed",
    "PHANTOMS",
    "DEFAULT_SHAPES",
    "DEFAULT_SPACING",
    "DEFAULT_FRAMES",
    "DEFAULT_NOISE",
    "HU_WINDOW",
    "LUNG_ANATOMIES",
    "CARDIAC_LABELS",
    "SSFP_INTENSITY",
    "cardiac_contraction",
]

#: the phantom generators (one per data kind)
PHANTOMS = DATA_KINDS
DEFAULT_SHAPES = {"cardiac": (128, 128, 10), "lung": (128, 128, 128), "linear": (128, 128, 32)}
DEFAULT_SPACING = {"cardiac": (1.5, 1.5, 8.0), "lung": (2.5, 2.5, 2.5), "linear": (1.5, 1.5, 5.0)}
DEFAULT_FRAMES = {"cardiac": 25, "lung": 10, "linear": 6}
DEFAULT_NOISE = {"cardiac": 0.02, "lung": 0.01, "linear": 0.01}
MIN_FRAMES = {"cardiac": 6, "lung": 4, "linear": 3}
HU_WINDOW = (-1400.0, 200.0)
EDGE_WIDTH = 0.6  # logistic edge width in voxels (keeps trilinear warping >= 35 dB)


@dataclass
class Phantom4D:
    """One synthetic patient; see docs/ARCHITECTURE.md ("Phantoms")."""

    phantom: str  # which generator made it: a key of PHANTOMS
    patient_id: str
    frames: np.ndarray  # (T, X, Y, Z) float32; [0, 1] (cardiac, linear) or HU (lung)
    spacing: tuple  # (sx, sy, sz) mm
    affine: np.ndarray  # (4, 4) voxel -> world (RAS)
    i0: int  # 0-based input frame 0 (ED / 0 %)
    i1: int  # 0-based input frame 1 (ES / 50 %)
    times: np.ndarray  # (T,) t = (i - i0) / (i1 - i0) inside [i0, i1], NaN outside
    u_t0: np.ndarray  # (K, 3, X, Y, Z) float32 voxels, frames i0..i1
    u_t1: np.ndarray  # (K, 3, X, Y, Z) float32 voxels
    params: dict = field(default_factory=dict)
    labels: np.ndarray | None = None  # (T, X, Y, Z) uint8, cardiac only: CARDIAC_LABELS (ACDC's values)

    @property
    def shape(self) -> tuple:
        return tuple(self.frames.shape[1:])

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    def unit_frames(self) -> np.ndarray:
        """Frames on the loader's [0, 1] intensity scale (lung: HU window [-1400, 200])."""
        return hu_to_unit(self.frames) if self.phantom == "lung" else self.frames


def hu_to_unit(hu: np.ndarray) -> np.ndarray:
    """HU -> [0, 1] with the CT window [-1400, 200] (the fixed-window part of the lung preprocessing)."""
    lo, hi = HU_WINDOW
    return ((np.clip(hu, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def patient_seed(seed: int, index: int) -> int:
    """Seed of patient ``index`` (0-based) of a dataset generated with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


# --------------------------------------------------------------------------- shared helpers
class _Grid:
    """Voxel grid in mm, centred at the origin: ``x_mm = (i - (N - 1) / 2) * spacing``."""

    def __init__(self, shape, spacing):
        self.shape = tuple(int(s) for s in shape)
        self.spacing = np.asarray(spacing, dtype=np.float64)
        self.centre = (np.asarray(self.shape, dtype=np.float64) - 1.0) / 2.0
        idx = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in self.shape], indexing="ij")
        # (3, X, Y, Z) mm coordinates of every voxel of the frame grid
        self.mm = np.stack([(idx[a] - self.centre[a]) * self.spacing[a] for a in range(3)]).astype(np.float32)
        self.half = np.asarray(self.shape) * self.spacing / 2.0  # half field of view per axis, mm

    def affine(self) -> np.ndarray:
        aff = np.diag([*self.spacing, 1.0])
        aff[:3, 3] = -self.centre * self.spacing
        return aff

    def to_voxels(self, mm: np.ndarray) -> np.ndarray:
        """(3, ...) mm -> (3, ...) fractional voxel indices."""
        return mm / self.spacing.reshape(3, *([1] * (mm.ndim - 1))) + self.centre.reshape(3, *([1] * (mm.ndim - 1)))

    def field(self, ref_mm: np.ndarray) -> np.ndarray:
        """Displacement (3, X, Y, Z) in voxels from frame-grid points to reference points ``ref_mm``."""
        return ((ref_mm - self.mm) / self.spacing.reshape(3, 1, 1, 1)).astype(np.float32)


def _soft(dist_vox):
    """Soft indicator of ``dist_vox > 0`` (signed distance in voxels), edge ~1 voxel wide."""
    return expit(dist_vox / EDGE_WIDTH)


def _ellipsoid_inside(p, centre, radii, spacing):
    """Signed distance (voxels, > 0 inside) to an axis-aligned ellipsoid, first-order:
    ``(1 - rho) / |grad_vox rho|``. ``p`` (3, ...) mm; a radius of ``np.inf`` makes a cylinder."""
    q = [(p[a] - centre[a]) / radii[a] for a in range(3)]
    rho = np.sqrt(q[0] ** 2 + q[1] ** 2 + q[2] ** 2) + 1e-6
    grad = np.sqrt(sum((q[a] * spacing[a] / radii[a]) ** 2 for a in range(3))) / rho + 1e-6
    return (1.0 - rho) / grad


def _texture(rng, shape, sigma, amplitude):
    """Band-limited noise on the voxel grid, zero mean, std ``amplitude``."""
    n = gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma=sigma, mode="wrap")
    return (n * (amplitude / (n.std() + 1e-8))).astype(np.float32)


def _sample(grid_values, vox):
    """Trilinear sample of a grid array at fractional voxel positions (3, ...); edge-clamped."""
    return map_coordinates(grid_values, vox, order=1, mode="nearest").astype(np.float32)


def _times(n_frames, i0, i1):
    idx = np.arange(n_frames, dtype=np.float64)
    t = (idx - i0) / (i1 - i0)
    t[(idx < i0) | (idx > i1)] = np.nan
    return t.astype(np.float32)


def _check_common(phantom, shape, spacing, n_frames, noise, amplitude):
    """Check the generator arguments shared by every phantom (ValueError naming the phantom);
    returns ``(shape, spacing, n_frames, grid)`` normalised to ints/floats and the grid."""
    shape, spacing = tuple(int(s) for s in shape), tuple(float(s) for s in spacing)
    if len(shape) != 3 or any(int(s) < 8 for s in shape):
        raise ValueError(f"{phantom} phantom: shape must be three sizes >= 8, got {tuple(shape)}")
    if len(spacing) != 3 or any(not np.isfinite(s) or s <= 0 for s in spacing):
        raise ValueError(f"{phantom} phantom: spacing must be three positive numbers (mm), got {tuple(spacing)}")
    if int(n_frames) < MIN_FRAMES[phantom]:
        raise ValueError(f"{phantom} phantom: n_frames must be >= {MIN_FRAMES[phantom]}, got {n_frames}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"{phantom} phantom: noise must be >= 0, got {noise}")
    if not np.isfinite(amplitude) or amplitude < 0 or amplitude > 2.0:
        raise ValueError(f"{phantom} phantom: amplitude must be in [0, 2] (1 = typical motion), got {amplitude}")
    return shape, spacing, int(n_frames), _Grid(shape, spacing)


def _jitter(rng, value, rel=0.1):
    return float(value * rng.uniform(1.0 - rel, 1.0 + rel))


# --------------------------------------------------------------------------- cardiac
#: SSFP-like intensities of the cardiac phantom's tissues, before the coil bias field and the
#: noise (blood > fat > liver/muscle > myocardium >> lung/air, as in a bSSFP cine)
SSFP_INTENSITY = {
    "air": 0.0,
    "lung": 0.035,
    "lung_vessel": 0.20,
    "blood_lv": 0.92,
    "blood_rv": 0.88,
    "aorta": 0.90,
    "fat": 0.70,
    "mediastinum": 0.50,
    "liver": 0.34,
    "stomach": 0.55,
    "muscle": 0.27,
    "myocardium": 0.20,
    "marrow": 0.46,
    "cortex": 0.06,
    "csf": 0.82,
}
#: label values of ``Phantom4D.labels`` (those of the ACDC ground truth)
CARDIAC_LABELS = {"background": 0, "rv": 1, "myocardium": 2, "lv": 3}
#: field of view (in-plane, through-plane, mm) at which the cardiac anatomy has adult size;
#: the anatomy scales with the grid's field of view, so a small grid shows the same picture coarser
CARDIAC_REFERENCE_FOV = (220.0, 80.0)
#: the ventricles' radius falls as ``sqrt(1 - (depth / length)^p)`` below the base plane: p = 3 keeps
#: the walls near-parallel to the long axis from the base to mid-ventricle and rounds the apex
LV_SHAPE_POWER = 4.0


def cardiac_contraction(tau, es_frac, p_eject):
    """Contraction ``s(tau)`` in [0, 1] over one cycle ``tau in [0, 1)`` (0 = ED, 1 = ES):
    ``1 - (1 - u)^p`` over ejection (fast early); over filling (``v`` in [0, 1]) rapid early
    filling (75 % of the volume by v = 0.4), slow diastasis, then the atrial kick (last 25 %)."""
    tau = np.asarray(tau, dtype=np.float64) % 1.0
    u = np.clip(tau / es_frac, 0.0, 1.0)
    v = np.clip((tau - es_frac) / (1.0 - es_frac), 0.0, 1.0)
    early = 0.75 * 0.5 * (1.0 - np.cos(np.pi * np.clip(v / 0.4, 0.0, 1.0)))
    diastasis = 0.07 * np.clip((v - 0.4) / 0.35, 0.0, 1.0)
    kick = 0.18 * 0.5 * (1.0 - np.cos(np.pi * np.clip((v - 0.75) / 0.25, 0.0, 1.0)))
    return np.where(tau <= es_frac, 1.0 - (1.0 - u) ** p_eject, 1.0 - early - diastasis - kick)


def _bump(r, r0, width):
    """1 for ``r <= r0``, a half-cosine down to exactly 0 at ``r0 + width``, 0 beyond."""
    a = np.clip((r - r0) / width, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * a))


def _angle(a):
    """Wrap angles to [-pi, pi]."""
    return a - (2.0 * np.pi) * np.rint(a / (2.0 * np.pi))


def _inside(terms):
    """Signed distance (voxels, > 0 inside) to ``f = sum_a |d_a / r_a|^e_a < 1``, first order:
    ``(1 - f) / |grad_vox f|``; ``terms``: ``(d_mm, radius_mm, spacing_mm[, e_a = 2])`` per
    coordinate (a Cartesian offset, a radius, a height: whatever the coordinate's voxel step is;
    ``e_a > 2`` flattens the shape along that coordinate)."""
    f, grad2 = 0.0, 0.0
    for d, r, sp, *e in terms:
        q = np.abs(d / r)
        if not e or e[0] == 2:
            f, grad2 = f + q * q, grad2 + (2.0 * q * sp / r) ** 2
        else:
            qe = q ** (e[0] - 1.0)
            f, grad2 = f + qe * q, grad2 + (e[0] * qe * sp / r) ** 2
    return (1.0 - f) / (np.sqrt(grad2) + 1e-6)


def _piecewise_r2(r, src, dst):
    """Radial map through matching knots ``src -> dst`` (lists, ``src[0] = dst[0] = 0``, both
    non-decreasing), linear in ``r^2`` between knots (constant area ratio per ring), identity
    beyond the last knot. Swapping ``src`` and ``dst`` gives the exact inverse."""
    r2 = r * r
    out = r2
    for i in reversed(range(len(src) - 1)):
        a2, b2, c2, d2 = src[i] ** 2, src[i + 1] ** 2, dst[i] ** 2, dst[i + 1] ** 2
        frac = np.clip((r2 - a2) / np.maximum(b2 - a2, 1e-9), 0.0, 1.0)
        out = np.where(r2 < b2, c2 + frac * (d2 - c2), out)
    return np.sqrt(np.maximum(out, 0.0))


class _CardiacMotion:
    """Backward map ``phi_s`` of the heart for contraction ``s`` (0 = ED, 1 = ES), about the LV
    long axis (parallel to Z through ``(cx, cy)``): twist A (angle depends on r, z), longitudinal
    shortening C (piecewise linear in z, amount depends on r, theta), radial contraction B
    (piecewise in r^2 through knots at the LV endocardium, LV epicardium, RV endocardium, RV free
    wall and the end of a taper; knots depend on theta, z). ``phi = B o C o A`` on frame
    coordinates; each step leaves the coordinates that its own parameters depend on unchanged,
    so it inverts in closed form. Everything beyond the taper (the thorax) stays exactly still."""

    def __init__(self, g):
        self.__dict__.update(g)

    # ---- geometry of the reference (ED) heart, at angle th and height z (mm)
    def rv_profile(self, th):
        """RV crescent depth factor in [0, 1] around the LV (1 at the RV's centre direction)."""
        a = np.clip(np.abs(_angle(th - self.theta_rv)) / self.rv_half_angle, 0.0, 1.0)
        return np.maximum(np.cos(0.5 * np.pi * a), 0.0) ** 0.7

    def heights(self, z):
        zeta = np.maximum(self.z_base - z, 0.0)  # depth below the base plane
        prof = lambda length: np.sqrt(np.clip(1.0 - (zeta / length) ** LV_SHAPE_POWER, 0.0, 1.0))
        return zeta, prof

    def knots(self, th, z, s):
        """Reference radii ``R`` and frame radii ``F`` of the radial step at (th, z) for contraction s."""
        zeta, prof = self.heights(z)
        c = self.rv_profile(th)
        g = s * expit((self.z_base + self.base_fade - z) / (0.35 * self.base_fade))  # fades above the base
        r1 = self.a_en * prof(self.l_en)
        r2 = self.a_ep * prof(self.l_ep)
        r3 = r2 + self.d_rv * c * prof(self.l_rv)
        r4 = r2 + (self.d_rv * c + self.t_rv * c**0.3) * prof(self.l_rv + self.t_rv_z)
        r5 = r4 + self.taper
        f1 = r1 * (1.0 - self.alpha * g)
        f2 = np.sqrt(f1 * f1 + (r2 * r2 - r1 * r1) * (1.0 + self.kappa * g))  # wall area grows: thickening
        f3 = f2 + (r3 - r2) * (1.0 - self.q_rv * g)  # RV crescent empties
        f4 = f3 + (r4 - r3) * (1.0 + self.rv_wall_gain * g)  # RV free wall thickens
        zero = np.zeros_like(r1)
        return [zero, r1, r2, r3, r4, r5], [zero, f1, f2, f3, f4, r5]

    def outer(self, th):
        """ED outer radius of the heart (RV free wall included) at its widest height."""
        c = self.rv_profile(th)
        return self.a_ep + self.d_rv * c + self.t_rv * c**0.3

    def _twist(self, r, z, s):
        h = -0.4 + 1.4 * np.clip((self.z_base - z) / self.l_ep, 0.0, 1.0)  # base -0.4, apex +1
        return np.deg2rad(self.twist_deg) * s * h * _bump(r, self.a_ep, self.taper)

    def _stretch(self, r, th, s):
        return 1.0 + self.ell * s * _bump(r, self.outer(th), self.taper)

    def _longitudinal(self, z, k, inverse):
        """Identity below the apex, stretch by k (>= 1) from the apex to the base, then a constant
        shift D above it (the base plane descends by D toward the fixed apex)."""
        za, zb = self.z_apex, self.z_base
        d = (zb - za) * (1.0 - 1.0 / k)
        if not inverse:
            zb_frame = za + (zb - za) / k
            return np.where(z <= za, z, np.where(z <= zb_frame, za + (z - za) * k, z + d))
        return np.where(z <= za, z, np.where(z <= zb, za + (z - za) / k, z - d))

    def moves(self, p):
        """Boolean mask of the frame points (3, N) mm that any contraction moves (elsewhere every
        step is exactly the identity): within ``outer + taper`` of the LV axis, with a margin for
        the twist's turn of theta."""
        dx, dy = p[0] - self.cx, p[1] - self.cy
        th = np.arctan2(dy, dx)
        reach = np.maximum(self.outer(th - 0.1), self.outer(th + 0.1))
        reach = np.maximum(reach, self.outer(th)) + self.taper + 1.0
        return dx * dx + dy * dy < reach * reach

    def forward(self, p, s):
        """phi_s: (3, ...) mm frame points -> reference points."""
        dx, dy, z = p[0] - self.cx, p[1] - self.cy, p[2]
        r = np.sqrt(dx * dx + dy * dy)
        ang = self._twist(r, z, s)  # A: twist
        c, sn = np.cos(ang), np.sin(ang)
        dx, dy = c * dx - sn * dy, sn * dx + c * dy
        th = np.arctan2(dy, dx)
        z = self._longitudinal(z, self._stretch(r, th, s), inverse=False)  # C: longitudinal
        ref_knots, frame_knots = self.knots(th, z, s)
        scale = _piecewise_r2(r, frame_knots, ref_knots) / np.maximum(r, 1e-6)  # B: radial
        return np.stack([self.cx + dx * scale, self.cy + dy * scale, z])

    def inverse(self, q, s):
        """phi_s^{-1}: (3, ...) mm reference points -> frame points."""
        dx, dy, z = q[0] - self.cx, q[1] - self.cy, q[2]
        r_ref = np.sqrt(dx * dx + dy * dy)
        th = np.arctan2(dy, dx)
        ref_knots, frame_knots = self.knots(th, z, s)  # B^-1 (th, z unchanged by B)
        r = _piecewise_r2(r_ref, ref_knots, frame_knots)
        scale = r / np.maximum(r_ref, 1e-6)
        dx, dy = dx * scale, dy * scale
        z = self._longitudinal(z, self._stretch(r, th, s), inverse=True)  # C^-1 (r, th unchanged by C)
        ang = -self._twist(r, z, s)  # A^-1 (r, z unchanged by A)
        c, sn = np.cos(ang), np.sin(ang)
        return np.stack([self.cx + c * dx - sn * dy, self.cy + sn * dx + c * dy, z])


def _cardiac_geometry(rng, grid, amplitude):
    """Per-patient anatomy and motion (mm, grid coordinates), drawn from ``rng``."""
    zoom = float(min(2 * grid.half[0], 2 * grid.half[1]) / CARDIAC_REFERENCE_FOV[0])
    zz = float(2 * grid.half[2] / CARDIAC_REFERENCE_FOV[1])
    fov = 2.0 * grid.half
    a_en = _jitter(rng, 25.0, 0.12) * zoom  # ED LV cavity radius (diameter ~50 mm)
    wall = _jitter(rng, 10.0, 0.15) * zoom  # ED wall thickness
    psi = float(np.deg2rad(rng.uniform(-15.0, 15.0)))  # in-plane orientation of the thorax
    body = _jitter(rng, 1.0, 0.12)  # body size
    l_ep = _jitter(rng, 0.80, 0.05) * fov[2]  # base -> epicardial apex
    ell = rng.uniform(0.10, 0.17)  # longitudinal shortening at ES
    g = dict(
        zoom=zoom,
        zoom_z=zz,
        psi=psi,
        body_scale=body,
        cx=float(rng.uniform(-0.04, 0.04) * fov[0]),
        cy=float(rng.uniform(-0.04, 0.04) * fov[1]),
        a_en=a_en,
        a_ep=a_en + wall,
        d_rv=_jitter(rng, 24.0, 0.15) * zoom,
        t_rv=3.5 * zoom,
        t_rv_z=3.5 * zz,
        theta_rv=float(np.deg2rad(165.0) + psi + np.deg2rad(rng.uniform(-10.0, 10.0))),
        rv_half_angle=float(np.deg2rad(_jitter(rng, 80.0, 0.08))),
        z_base=0.42 * fov[2],
        l_ep=l_ep,
        z_apex=0.42 * fov[2] - l_ep,
        taper=22.0 * zoom,
        base_fade=4.0 * zz,
        fat_sc=_jitter(rng, 14.0, 0.3) * zoom * body,  # subcutaneous fat thickness
        alpha=min(0.7, rng.uniform(0.18, 0.36) * amplitude),  # endocardial radius shrinks 18-36 % at ES
        ell=min(0.4, ell * amplitude),
        kappa=ell * amplitude / max(1e-6, 1.0 - ell * amplitude) + 0.02 * amplitude,
        q_rv=min(0.8, rng.uniform(0.22, 0.36) * amplitude),  # RV crescent depth shrinks at ES
        rv_wall_gain=0.2 * amplitude,
        twist_deg=_jitter(rng, 7.0, 0.2) * amplitude,  # apex +7 deg, base -3 deg at ES
    )
    g["l_en"] = l_ep - 0.6 * wall * zz / zoom
    g["l_rv"] = 0.82 * l_ep
    return g


class _Painter:
    """Composites soft-edged ellipses (``img += alpha (value - img)``) at points ``(u, v, z)``,
    evaluating each shape only inside its bounding box (most shapes cover few points)."""

    def __init__(self, u, v, z, sxy, sz):
        self.u, self.v, self.z, self.sxy, self.sz = u, v, z, sxy, sz
        self.img = np.zeros(u.shape, np.float32)

    def ellipse(self, cu, cv, ru, rv, value, angle=0.0, z_axis=None, within=None):
        """Ellipse centred at (cu, cv) with semi-axes (ru, rv) turned by ``angle``; ``z_axis``:
        ``(cz, rz)`` makes it an ellipsoid (else Z-invariant); ``value``, ``within`` (an extra
        soft factor): scalars or arrays over the points."""
        m = max(ru, rv) + 3.0 * self.sxy
        sel = np.flatnonzero((np.abs(self.u - cu) < m) & (np.abs(self.v - cv) < m))
        if sel.size == 0:
            return
        du, dv = self.u[sel] - cu, self.v[sel] - cv
        if angle:
            ca, sa = np.cos(angle), np.sin(angle)
            du, dv = ca * du + sa * dv, -sa * du + ca * dv
        terms = [(du, ru, self.sxy), (dv, rv, self.sxy)]
        if z_axis is not None:
            terms.append((self.z[sel] - z_axis[0], z_axis[1], self.sz))
        alpha = _soft(_inside(terms))
        if within is not None:
            alpha = alpha * within[sel]
        val = value[sel] if isinstance(value, np.ndarray) else value
        self.img[sel] += alpha * (val - self.img[sel])


def _cardiac_renderer(rng, grid, g):
    """``(render, motion)``: ``render(ref_mm (3, N)) -> (image (N,), labels (N,))`` of the
    reference (ED) anatomy at any points; ``motion`` the heart's :class:`_CardiacMotion`."""
    sxy, sz = float(min(grid.spacing[0], grid.spacing[1])), float(grid.spacing[2])
    zoom, body = g["zoom"], g["body_scale"]
    S = SSFP_INTENSITY
    tex_fine = _texture(rng, grid.shape, 1.0, 1.0)
    tex_coarse = _texture(rng, grid.shape, 2.5, 1.0)
    # thorax, in coordinates (u, v) turned by psi about the LV axis: u -> patient left, v -> anterior
    A, B = 140.0 * zoom * body, 100.0 * zoom * body  # body semi-axes
    ub, vb = -40.0 * zoom, -30.0 * zoom * body  # body centre (the LV sits left-anterior)
    f_sc, m_w = g["fat_sc"], 11.0 * zoom
    Ai, Bi = A - f_sc - m_w, B - f_sc - m_w  # thoracic cavity (inside the ribs)
    r_vb = 16.0 * zoom
    v_sp = vb - Bi + 0.45 * r_vb  # vertebral body centre
    aorta = (ub + r_vb + 9.0 * zoom, v_sp + 1.1 * r_vb, _jitter(rng, 11.0, 0.15) * zoom)
    l_ep, z_b = g["l_ep"], g["z_base"]
    liver = (ub - 0.30 * Ai, vb - 0.05 * Bi, z_b - 1.30 * l_ep, 0.80 * Ai, 0.95 * Bi, _jitter(rng, 0.85, 0.1) * l_ep)
    stomach = (ub + 0.62 * Ai, vb - 0.05 * Bi, z_b - 1.30 * l_ep, 0.30 * Ai, 0.40 * Bi, 0.60 * l_ep)
    rib_angles = np.deg2rad([22, 44, 64, 116, 136, 158, 202, 224, 316, 338]) + rng.uniform(-0.08, 0.08, 10)
    motion = _CardiacMotion(g)
    pap = [(g["theta_rv"] + np.deg2rad(165.0), 0.72), (g["theta_rv"] + np.deg2rad(78.0), 0.68)]
    heart_reach = motion.a_ep + motion.d_rv + motion.t_rv + 16.0 * zoom
    cos_p, sin_p = np.cos(g["psi"]), np.sin(g["psi"])

    def render(ref):
        x, y, z = ref
        dx, dy = x - g["cx"], y - g["cy"]
        u, v = cos_p * dx + sin_p * dy, -sin_p * dx + cos_p * dy
        vox = grid.to_voxels(ref)
        tf, tc = _sample(tex_fine, vox), _sample(tex_coarse, vox)
        P = _Painter(u, v, z, sxy, sz)
        # ---- thorax (Z-invariant apart from the liver and stomach below the heart)
        P.ellipse(ub, vb, A, B, S["fat"] * (1.0 + 0.05 * tc))  # skin, subcutaneous fat
        P.ellipse(ub, vb, A - f_sc, B - f_sc, S["muscle"] * (1.0 + 0.06 * tc))  # chest-wall muscle
        for ang in rib_angles:  # ribs: cortex, marrow
            cu, cv = ub + (Ai + 0.5 * m_w) * np.cos(ang), vb + (Bi + 0.5 * m_w) * np.sin(ang)
            P.ellipse(cu, cv, 4.5 * zoom, 8.0 * zoom, S["cortex"], angle=ang)
            P.ellipse(cu, cv, 2.8 * zoom, 6.0 * zoom, S["marrow"], angle=ang)
        P.ellipse(ub, vb + Bi + 0.5 * m_w, 13.0 * zoom, 5.0 * zoom, S["marrow"])  # sternum
        lung = S["lung"] + (S["lung_vessel"] - S["lung"]) * expit((tf - 1.9) / 0.25)  # faint vessels
        P.ellipse(ub, vb, Ai, Bi, lung)  # lungs: inside the ribs
        cavity = _soft(_inside([(u - ub, Ai, sxy), (v - vb, Bi, sxy)]))
        P.ellipse(
            *liver[:2],
            *liver[3:5],
            S["liver"] * (1.0 + 0.06 * tc) + 0.2 * expit((tf - 2.0) / 0.2),
            z_axis=(liver[2], liver[5]),
            within=cavity,
        )
        P.ellipse(
            *stomach[:2],
            *stomach[3:5],
            S["stomach"] * (1.0 + 0.15 * tc),
            z_axis=(stomach[2], stomach[5]),
            within=cavity,
        )
        P.ellipse(ub + 2.0 * zoom, v_sp + 1.6 * r_vb, 7.0 * zoom, 5.0 * zoom, S["mediastinum"])  # oesophagus
        for sgn in (-1.0, 1.0):  # paraspinal muscles
            P.ellipse(ub + sgn * 1.9 * r_vb, v_sp - 2.2 * r_vb, 1.5 * r_vb, 1.3 * r_vb, S["muscle"])
        P.ellipse(ub, v_sp, r_vb, 0.9 * r_vb, S["cortex"])
        P.ellipse(ub, v_sp, r_vb - 1.5 * zoom, 0.9 * r_vb - 1.5 * zoom, S["marrow"] * (1.0 + 0.1 * tc))  # vertebra
        P.ellipse(ub, v_sp - 1.45 * r_vb, 0.42 * r_vb, 0.4 * r_vb, S["csf"])  # spinal canal
        P.ellipse(aorta[0], aorta[1], aorta[2], aorta[2], S["aorta"])  # descending aorta
        img = P.img
        labels = np.zeros(x.shape, np.uint8)
        # ---- heart, in polar coordinates about the LV axis (only near it)
        hs = np.flatnonzero(dx * dx + dy * dy < heart_reach**2)
        if hs.size:
            img[hs], labels[hs] = _render_heart(g, motion, pap, dx[hs], dy[hs], z[hs], tf[hs], tc[hs], img[hs], sxy, sz)
        return img, labels

    return render, motion


def _render_heart(g, motion, pap, dx, dy, z, tf, tc, img, sxy, sz):
    """Paint the heart over ``img`` at points (dx, dy, z) relative to the LV axis; returns (image, labels)."""
    S, zoom = SSFP_INTENSITY, g["zoom"]
    r = np.sqrt(dx * dx + dy * dy)
    th = np.arctan2(dy, dx)
    zeta, prof = motion.heights(z)
    c = motion.rv_profile(th)
    l_ep, z_b = g["l_ep"], g["z_base"]
    r_ep = g["a_ep"] * prof(l_ep)
    below_base = _soft((z_b - z) / sz)

    def over(img, alpha, value):
        return img + alpha * (value - img)

    groove = np.exp(-(((z - z_b) / (6.0 * g["zoom_z"])) ** 2))  # atrioventricular groove
    tips = np.exp(-(((np.abs(_angle(th - g["theta_rv"])) - g["rv_half_angle"]) / 0.25) ** 2))  # interventricular
    fat_t = (1.0 + 6.0 * groove + 5.0 * tips) * zoom
    outer_r = motion.outer(th) * prof(g["l_rv"] + g["t_rv_z"])
    fat = _soft((np.maximum(outer_r, r_ep) + fat_t - r) / sxy) * _soft(
        _inside([(r, g["a_ep"] + fat_t, sxy), (zeta, l_ep + 3.0 * g["zoom_z"], sz, LV_SHAPE_POWER)])
    )
    img = over(img, fat, S["fat"] * (1.0 + 0.05 * tc))
    rv_wall = _soft(
        _inside(
            [
                (r - r_ep, g["d_rv"] * c + g["t_rv"] * c**0.3 + 1e-3, sxy),
                (zeta, g["l_rv"] + g["t_rv_z"], sz, LV_SHAPE_POWER),
            ]
        )
    )
    img = over(img, rv_wall, S["myocardium"] * (1.0 + 0.04 * tc))
    rv = _soft(_inside([(r - r_ep, g["d_rv"] * c + 1e-3, sxy), (zeta, g["l_rv"], sz, LV_SHAPE_POWER)]))
    img = over(img, rv, S["blood_rv"] * (1.0 + 0.03 * tc))
    epi = _soft(_inside([(r, g["a_ep"], sxy), (zeta, l_ep, sz, LV_SHAPE_POWER)]))
    img = over(img, epi * below_base, S["myocardium"] * (1.0 + 0.04 * tc))
    endo = _soft(_inside([(r, g["a_en"], sxy), (zeta, g["l_en"], sz, LV_SHAPE_POWER)]))
    r_en = g["a_en"] * prof(g["l_en"])
    trabeculae = expit((r - 0.85 * r_en) / (0.04 * g["a_en"] + 1e-3)) * expit((tf - 0.9) / 0.3) * below_base
    img = over(img, endo, S["blood_lv"] * (1.0 + 0.03 * tc) - 0.35 * trabeculae)
    mid = z_b - 0.55 * g["l_en"]
    for ang, rr in pap:  # papillary muscles
        pm = _soft(
            _inside(
                [
                    (dx - rr * g["a_en"] * np.cos(ang), 0.18 * g["a_en"], sxy),
                    (dy - rr * g["a_en"] * np.sin(ang), 0.18 * g["a_en"], sxy),
                    (z - mid, 0.38 * g["l_en"], sz),
                ]
            )
        )
        img = over(img, pm * endo, S["myocardium"])
    labels = np.zeros(r.shape, np.uint8)
    labels[(rv * below_base > 0.5) & (epi < 0.5)] = CARDIAC_LABELS["rv"]
    labels[(epi * below_base > 0.5) & (endo < 0.5)] = CARDIAC_LABELS["myocardium"]
    labels[endo * below_base > 0.5] = CARDIAC_LABELS["lv"]
    return img.astype(np.float32), labels


def _bias_field(rng, grid, strength):
    """Smooth multiplicative coil sensitivity: exp of a random low-order polynomial of the
    normalised coordinates, with log-std ``strength``, scaled to a maximum of 1."""
    n = grid.mm / grid.half.reshape(3, 1, 1, 1).astype(np.float32)
    terms = [n[0], n[1], 0.3 * n[2], n[0] * n[0], n[1] * n[1], n[0] * n[1]]
    f = sum(float(rng.normal()) * t for t in terms)
    f = f * (strength / (float(f.std()) + 1e-8))
    b = np.exp(f)
    return (b / b.max()).astype(np.float32)


def make_cardiac_phantom(
    shape=(128, 128, 10),
    spacing=(1.5, 1.5, 8.0),
    n_frames=25,
    noise=0.02,
    amplitude=1.0,
    seed=0,
    patient_id="patient001",
    bias: float = 0.15,
) -> Phantom4D:
    """A short-axis cine of a beating heart in a thorax, ED (frame 0) to ES and back; see the
    module docstring. ``noise``: std of each Gaussian channel of the Rician noise (the blood pool
    is ~0.9); ``bias``: log-std of the smooth coil bias field (0: none). ``labels`` holds the
    LV / myocardium / RV label map of every frame (:data:`CARDIAC_LABELS`)."""
    shape, spacing, n_frames, grid = _check_common("cardiac", shape, spacing, n_frames, noise, amplitude)
    if not np.isfinite(bias) or bias < 0:
        raise ValueError(f"cardiac phantom: bias must be >= 0, got {bias}")
    rng = np.random.default_rng(seed)
    geo = _cardiac_geometry(rng, grid, amplitude)
    heart_rate = float(rng.uniform(55.0, 95.0))
    rr = 60.0 / heart_rate
    es_phys = 0.34 * np.sqrt(rr) / rr  # systole ~ 0.34 s * sqrt(RR): 0.34 at 60 bpm
    i_es = max(2, int(round(es_phys * n_frames)))
    es_frac = i_es / n_frames  # ES exactly on a frame
    p_eject = _jitter(rng, 2.2)
    render, motion = _cardiac_renderer(rng, grid, geo)
    bias_field = _bias_field(rng, grid, bias) if bias > 0 else None

    flat = grid.mm.reshape(3, -1)
    moving = motion.moves(flat)  # the rest of the thorax never moves
    pts = flat[:, moving]
    tau = np.arange(n_frames) / n_frames
    s_all = cardiac_contraction(tau, es_frac, p_eject)
    frames = np.empty((n_frames, *shape), np.float32)
    labels = np.empty((n_frames, *shape), np.uint8)
    u_t0 = np.zeros((i_es + 1, 3, *shape), np.float32)
    u_t1 = np.zeros((i_es + 1, 3, *shape), np.float32)
    img0, lab0 = render(flat)
    for i in range(n_frames):
        img, lab = img0.copy(), lab0.copy()
        if s_all[i] > 0:
            ref = motion.forward(pts, s_all[i])
            img[moving], lab[moving] = render(ref)
        else:
            ref = pts
        frames[i], labels[i] = img.reshape(shape), lab.reshape(shape)
        if i <= i_es:
            for out, target in ((u_t0, ref), (u_t1, motion.inverse(ref, 1.0))):  # s(ES) = 1
                field = np.zeros((3, flat.shape[1]), np.float32)
                field[:, moving] = (target - pts) / grid.spacing.reshape(3, 1)
                out[i] = field.reshape(3, *shape)
    if bias_field is not None:
        frames *= bias_field
    lv = (labels == CARDIAC_LABELS["lv"]).reshape(n_frames, -1).sum(1)
    params = dict(
        kind="cardiac",
        patient_id=patient_id,
        shape=list(shape),
        spacing=list(spacing),
        n_frames=n_frames,
        noise=float(noise),
        amplitude=float(amplitude),
        seed=int(seed),
        bias=float(bias),
        heart_rate_bpm=heart_rate,
        es_frac=es_frac,
        p_eject=p_eject,
        contraction=[float(v) for v in s_all],
        ejection_fraction=float(1.0 - lv[i_es] / max(lv[0], 1)),
        geometry={k: float(v) for k, v in geo.items()},
    )
    ph = _finish("cardiac", patient_id, frames, grid, 0, i_es, u_t0, u_t1, noise, rng, params, rician=True)
    ph.labels = labels
    return ph


# --------------------------------------------------------------------------- lung
def lung_breathing(tau, n_exp, lag):
    """Superior-inferior amount ``b`` and anterior-posterior amount ``a`` at cycle phase ``tau``
    (0 = end-inhale, 0.5 = end-exhale): ``b = 1 - cos^{2n}(pi tau)``; ``a`` is the same curve
    delayed by ``lag`` (fraction of a cycle), minus its value at tau = 0 (hysteresis loop)."""
    tau = np.asarray(tau, dtype=np.float64)
    b = 1.0 - (np.cos(np.pi * tau) ** 2) ** n_exp
    a = (1.0 - (np.cos(np.pi * (tau - lag)) ** 2) ** n_exp) - (1.0 - (np.cos(np.pi * lag) ** 2) ** n_exp)
    return b, a


class _LungMotion:
    """Backward map: AP step (depends on x, z), then SI step (depends on x, y, piecewise linear in z)."""

    def __init__(self, g):
        self.__dict__.update(g)

    def _profile(self, z):
        # 0 above the lung apex, 1 at and below the diaphragm level (motion grows toward the diaphragm)
        return np.clip((self.z_top - z) / (self.z_top - self.z_dia), 0.0, 1.0)

    def _w_x(self, x):
        return np.exp(-(((np.abs(x) - self.x_lung) / (1.3 * self.r_lung_x)) ** 2))

    def _w_xy(self, x, y):
        return self._w_x(x) * np.exp(-(((y - self.y_lung) / (1.2 * self.r_lung_y)) ** 4))

    def forward(self, p, b, a):
        x, y, z = p
        y = y + self.ap * a * self._w_x(x) * self._profile(z)  # AP (anterior wall sinks at exhale)
        c = self.si * b * self._w_xy(x, y)  # SI shift at/below the diaphragm, mm
        z = z - c * self._profile(z)  # came from lower down (inhale)
        return np.stack([x, y, z])

    def inverse(self, q, b, a):
        x, y, z_ref = q
        c = self.si * b * self._w_xy(x, y)
        L = self.z_top - self.z_dia
        z_mid = (z_ref + c * self.z_top / L) / (1.0 + c / L)
        z = np.where(z_ref >= self.z_top, z_ref, np.where(z_ref <= self.z_dia - c, z_ref + c, z_mid))
        y = y - self.ap * a * self._w_x(x) * self._profile(z)
        return np.stack([x, y, z])


#: lung anatomies: "a" is the default thorax; "b" a second family for testing away from the
#: training data (flatter, wider body, larger lungs with a higher, steeper diaphragm dome, a
#: larger tumour, coarser parenchyma texture, a different breathing exponent and less
#: anterior-posterior motion). Factors of the body half-axes / field of view.
LUNG_ANATOMIES = {
    "a": dict(
        body=(0.88, 0.62),
        lung_x=0.45,
        r_lung=(0.36, 0.72),
        z_top=0.70,
        z_dia=-0.45,
        dome=0.22,
        tumour=0.08,
        texture=1.5,
        n_exp=2.5,
        ap=1.0,
    ),
    "b": dict(
        body=(0.94, 0.52),
        lung_x=0.50,
        r_lung=(0.40, 0.80),
        z_top=0.80,
        z_dia=-0.30,
        dome=0.32,
        tumour=0.12,
        texture=2.2,
        n_exp=3.0,
        ap=0.6,
    ),
}


def make_lung_phantom(
    shape=(128, 128, 128),
    spacing=(2.5, 2.5, 2.5),
    n_frames=10,
    noise=0.01,
    amplitude=1.0,
    seed=0,
    patient_id="lung001",
    anatomy: str = "a",
) -> Phantom4D:
    """A breathing thorax, phases 0 %..90 %, frames in HU; see the module docstring.
    ``noise`` is a fraction of the HU window (0.01 -> 16 HU); ``anatomy``: a key of
    :data:`LUNG_ANATOMIES` ("b" is a second family, for tests away from the training data)."""
    if anatomy not in LUNG_ANATOMIES:
        raise ValueError(f"lung phantom: anatomy must be one of {sorted(LUNG_ANATOMIES)}, got {anatomy!r}")
    an = LUNG_ANATOMIES[anatomy]
    shape, spacing, n_frames, grid = _check_common("lung", shape, spacing, n_frames, noise, amplitude)
    if n_frames % 2:
        raise ValueError(f"lung phantom: n_frames must be even (phase 50 % is frame n/2), got {n_frames}")
    rng = np.random.default_rng(seed)
    Hx, Hy, Hz = (float(h) for h in grid.half)
    bx, by = an["body"][0] * Hx, an["body"][1] * Hy  # body ellipse (mm)
    geo = dict(
        x_lung=an["lung_x"] * bx,
        y_lung=0.02 * by,
        r_lung_x=_jitter(rng, an["r_lung"][0] * bx, 0.05),
        r_lung_y=_jitter(rng, an["r_lung"][1] * by, 0.05),
        z_top=an["z_top"] * Hz,
        z_dia=an["z_dia"] * Hz,
        dome=_jitter(rng, an["dome"] * Hz, 0.1),
        si=_jitter(rng, min(15.0, 0.12 * 2 * Hz)) * amplitude,  # diaphragm excursion, mm
        ap=_jitter(rng, min(2.5, 0.025 * 2 * Hy)) * amplitude * an["ap"],  # anterior-posterior, mm
    )
    n_exp = _jitter(rng, an["n_exp"])
    lag = _jitter(rng, 0.08)
    motion = _LungMotion(geo)
    sp = grid.spacing
    tex_body = _texture(rng, shape, an["texture"], 20.0)  # HU
    tex_paren = _texture(rng, shape, an["texture"], 60.0)  # parenchyma: small vessels, septa (visible motion)
    vessel_noise = _texture(rng, shape, an["texture"], 1.0)
    vessels = (650.0 * expit((vessel_noise - 1.4) / 0.35)).astype(np.float32)  # bright branching blobs
    side = 1.0 if rng.uniform() < 0.5 else -1.0
    tumour = (
        side * geo["x_lung"],
        geo["y_lung"] + 0.15 * geo["r_lung_y"],
        geo["z_dia"] + geo["dome"] + 0.25 * (geo["z_top"] - geo["z_dia"]),
    )
    r_tumour = _jitter(rng, an["tumour"] * min(Hx, Hz))

    def render(ref_mm):
        vox = grid.to_voxels(ref_mm)
        x, y, z = ref_mm
        body = _soft(_ellipsoid_inside(ref_mm, (0.0, 0.0, 0.0), (bx, by, np.inf), sp))
        lungs = np.zeros(x.shape, np.float64)
        for sgn in (-1.0, 1.0):
            ell = _soft(
                _ellipsoid_inside(
                    ref_mm,
                    (sgn * geo["x_lung"], geo["y_lung"], geo["z_dia"]),
                    (geo["r_lung_x"], geo["r_lung_y"], geo["z_top"] - geo["z_dia"]),
                    sp,
                )
            )
            # diaphragm dome under each lung: the lung ends above z_d(x, y)
            rr = ((x - sgn * geo["x_lung"]) / geo["r_lung_x"]) ** 2 + ((y - geo["y_lung"]) / geo["r_lung_y"]) ** 2
            z_d = geo["z_dia"] + geo["dome"] * np.exp(-1.5 * rr)
            lungs = lungs + ell * _soft((z - z_d) / sp[2])
        spine = _soft(_ellipsoid_inside(ref_mm, (0.0, -0.75 * by, 0.0), (0.12 * bx, 0.14 * by, np.inf), sp))
        tum = _soft(_ellipsoid_inside(ref_mm, tumour, (r_tumour,) * 3, sp))
        soft_tissue = 40.0 + _sample(tex_body, vox)
        hu = -1000.0 + body * (soft_tissue + 1000.0)  # air outside, soft tissue in body
        lung_hu = -850.0 + _sample(tex_paren, vox) + _sample(vessels, vox)
        hu = hu + lungs * (lung_hu - hu)
        hu = hu + tum * (20.0 + 0.5 * _sample(tex_body, vox) - hu)  # tumour moves with the lung
        hu = hu + spine * (350.0 - hu)
        return hu.astype(np.float32)

    tau = np.arange(n_frames) / n_frames
    b_all, a_all = lung_breathing(tau, n_exp, lag)
    i1 = n_frames // 2
    frames = np.empty((n_frames, *shape), np.float32)
    u_t0 = np.empty((i1 + 1, 3, *shape), np.float32)
    u_t1 = np.empty((i1 + 1, 3, *shape), np.float32)
    for i in range(n_frames):
        ref = motion.forward(grid.mm, b_all[i], a_all[i]) if i > 0 else grid.mm
        frames[i] = render(ref)
        if i <= i1:
            u_t0[i] = grid.field(ref)
            u_t1[i] = grid.field(motion.inverse(ref, b_all[i1], a_all[i1]))
    params = dict(
        kind="lung",
        anatomy=anatomy,
        patient_id=patient_id,
        shape=list(shape),
        spacing=list(spacing),
        n_frames=n_frames,
        noise=float(noise),
        amplitude=float(amplitude),
        seed=int(seed),
        phases=[int(round(100 * k / n_frames)) for k in range(n_frames)],
        cos_exponent_n=n_exp,
        ap_lag=lag,
        si_amount=[float(v) for v in b_all],
        ap_amount=[float(v) for v in a_all],
        tumour_mm=[float(v) for v in tumour],
        tumour_radius_mm=float(r_tumour),
        geometry_mm={k: float(v) for k, v in geo.items()},
    )
    return _finish(
        "lung",
        patient_id,
        frames,
        grid,
        0,
        i1,
        u_t0,
        u_t1,
        noise * (HU_WINDOW[1] - HU_WINDOW[0]),
        rng,
        params,
        clip=None,
    )


# --------------------------------------------------------------------------- linear
def make_linear_phantom(
    shape=(128, 128, 32),
    spacing=(1.5, 1.5, 5.0),
    n_frames=6,
    noise=0.01,
    amplitude=1.0,
    seed=0,
    patient_id="patient001",
) -> Phantom4D:
    """Uniform translation by ``t * v``, ``v = amplitude * (3, 2, 1)`` voxels: the control case."""
    shape, spacing, n_frames, grid = _check_common("linear", shape, spacing, n_frames, noise, amplitude)
    rng = np.random.default_rng(seed)
    v_vox = amplitude * np.array([3.0, 2.0, 1.0])
    v_mm = v_vox * grid.spacing
    half = grid.half
    tex = _texture(rng, shape, 1.5, 0.08)
    sp = grid.spacing
    blob_c = tuple(float(rng.uniform(-0.1, 0.1) * h) for h in half)
    inner_c = tuple(blob_c[a] + 0.2 * half[a] for a in range(3))

    def render(ref_mm):
        blob = _soft(_ellipsoid_inside(ref_mm, blob_c, tuple(0.5 * half), sp))
        inner = _soft(_ellipsoid_inside(ref_mm, inner_c, tuple(0.15 * half), sp))
        img = blob * (0.5 + _sample(tex, grid.to_voxels(ref_mm)))
        return (img + inner * (0.9 - img)).astype(np.float32)

    i0, i1 = 0, n_frames - 1
    t = _times(n_frames, i0, i1).astype(np.float64)
    frames = np.empty((n_frames, *shape), np.float32)
    u_t0 = np.empty((n_frames, 3, *shape), np.float32)
    u_t1 = np.empty((n_frames, 3, *shape), np.float32)
    for i in range(n_frames):
        ref = grid.mm - (t[i] * v_mm).reshape(3, 1, 1, 1)  # content moves by +t v
        frames[i] = render(ref)
        u_t0[i] = (-t[i] * v_vox).reshape(3, 1, 1, 1)
        u_t1[i] = ((1.0 - t[i]) * v_vox).reshape(3, 1, 1, 1)
    params = dict(
        kind="linear",
        patient_id=patient_id,
        shape=list(shape),
        spacing=list(spacing),
        n_frames=n_frames,
        noise=float(noise),
        amplitude=float(amplitude),
        seed=int(seed),
        velocity_voxels=[float(v) for v in v_vox],
    )
    return _finish("linear", patient_id, frames, grid, i0, i1, u_t0, u_t1, noise, rng, params)


def _finish(
    phantom, patient_id, frames, grid, i0, i1, u_t0, u_t1, noise_std, rng, params, clip=(0.0, 1.0), rician=False
):
    """Add the noise (Gaussian; ``rician``: the magnitude of complex Gaussian noise,
    ``sqrt((s + n1)^2 + n2^2)``), clip, and pack the :class:`Phantom4D`."""
    if noise_std > 0:
        if rician:
            for f in frames:  # frame by frame: small temporaries
                n1 = rng.normal(0.0, noise_std, size=f.shape).astype(np.float32)
                n2 = rng.normal(0.0, noise_std, size=f.shape).astype(np.float32)
                np.sqrt((f + n1) ** 2 + n2 * n2, out=f)
        else:
            frames += rng.normal(0.0, noise_std, size=frames.shape).astype(np.float32)
    if clip is not None:
        np.clip(frames, *clip, out=frames)
    return Phantom4D(
        phantom=phantom,
        patient_id=patient_id,
        frames=frames,
        spacing=tuple(float(s) for s in grid.spacing),
        affine=grid.affine(),
        i0=int(i0),
        i1=int(i1),
        times=_times(frames.shape[0], i0, i1),
        u_t0=u_t0,
        u_t1=u_t1,
        params=params,
    )


_MAKERS = {"cardiac": make_cardiac_phantom, "lung": make_lung_phantom, "linear": make_linear_phantom}


def make_phantom(
    phantom: str, shape=None, spacing=None, n_frames=None, noise=None, amplitude=1.0, seed=0, patient_id=None, **options
) -> Phantom4D:
    """Dispatch to ``make_<phantom>_phantom``; ``None`` arguments take that phantom's defaults
    (``DEFAULT_SHAPES``, ``DEFAULT_SPACING``, ``DEFAULT_FRAMES``, ``DEFAULT_NOISE``)."""
    if phantom not in _MAKERS:
        raise ValueError(f"unknown phantom {phantom!r}; choose one of {', '.join(PHANTOMS)}")
    kw = dict(
        shape=shape or DEFAULT_SHAPES[phantom],
        spacing=spacing or DEFAULT_SPACING[phantom],
        n_frames=n_frames or DEFAULT_FRAMES[phantom],
        noise=DEFAULT_NOISE[phantom] if noise is None else noise,
        amplitude=amplitude,
        seed=seed,
    )
    if patient_id is not None:
        kw["patient_id"] = patient_id
    return _MAKERS[phantom](**kw, **options)  # options: the generator's own, e.g. anatomy="b" for the lung


# --------------------------------------------------------------------------- writers
def _save_4d(path: Path, frames: np.ndarray, affine: np.ndarray, dtype=np.int16, scale: float = 1.0):
    data = np.moveaxis(frames, 0, -1) * scale  # (T,X,Y,Z) -> (X,Y,Z,T)
    img = nib.Nifti1Image(np.round(data).astype(dtype) if dtype == np.int16 else data.astype(dtype), affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    nib.save(img, str(path))


def _save_truth(folder: Path, ph: Phantom4D):
    idx = np.arange(ph.i0, ph.i1 + 1)
    np.savez(
        folder / f"{ph.patient_id}_truth.npz",
        u_t0=ph.u_t0.astype(np.float32),
        u_t1=ph.u_t1.astype(np.float32),
        frame_indices=idx,
        times=ph.times[idx],
    )
    (folder / "phantom.json").write_text(json.dumps(ph.params, indent=1))


def write_acdc_layout(root, phantom: Phantom4D, truth: bool = True) -> Path:
    """``root/<id>/<id>_4d.nii.gz`` (int16, intensities 0..1000) and ``Info.cfg`` with 1-based
    ED/ES, as ACDC; plus ``<id>_truth.npz`` and ``phantom.json``. Returns the patient folder."""
    folder = Path(root) / phantom.patient_id
    folder.mkdir(parents=True, exist_ok=True)
    _save_4d(folder / f"{phantom.patient_id}_4d.nii.gz", phantom.unit_frames(), phantom.affine, scale=1000.0)
    (folder / "Info.cfg").write_text(
        f"ED: {phantom.i0 + 1}\nES: {phantom.i1 + 1}\nGroup: PHANTOM\nHeight: 170.0\n"
        f"NbFrame: {phantom.n_frames}\nWeight: 70.0\n"
    )
    if truth:
        _save_truth(folder, phantom)
    return folder


def write_lung_layout(root, phantom: Phantom4D, truth: bool = True) -> Path:
    """``root/<id>/<id>_4d.nii.gz`` (int16 HU, phases in order) and ``phases.json``; plus truth."""
    if phantom.phantom != "lung":
        raise ValueError(f"write_lung_layout needs a lung phantom, got a {phantom.phantom} phantom")
    folder = Path(root) / phantom.patient_id
    folder.mkdir(parents=True, exist_ok=True)
    _save_4d(folder / f"{phantom.patient_id}_4d.nii.gz", phantom.frames, phantom.affine)
    phases = phantom.params["phases"]
    (folder / "phases.json").write_text(
        json.dumps(
            {
                "phases": phases,
                "input_phases": [phases[phantom.i0], phases[phantom.i1]],
                "units": "HU",
                "source": "interp4d_lite lung phantom",
            },
            indent=1,
        )
    )
    if truth:
        _save_truth(folder, phantom)
    return folder


def write_phantom_dataset(
    root,
    phantom="cardiac",
    n_patients=3,
    shape=None,
    spacing=None,
    n_frames=None,
    noise=None,
    amplitude=1.0,
    seed=0,
    truth=True,
    verbose=False,
    **options,
) -> dict:
    """Generate ``n_patients`` phantoms (patient ``k`` uses ``patient_seed(seed, k)``) and write
    them in the layout of their data kind (cardiac/linear: ACDC, lung: our 4D-Lung layout), plus
    ``root/dataset.json`` listing the patients. Existing files of the same names are overwritten;
    nothing else in ``root`` is touched. Returns the dataset.json content (plus ``seconds``)."""
    if phantom not in PHANTOMS:
        raise ValueError(f"unknown phantom {phantom!r}; choose one of {', '.join(PHANTOMS)}")
    if int(n_patients) < 1:
        raise ValueError(f"n_patients must be >= 1, got {n_patients}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    ids, summary = [], []
    for k in range(int(n_patients)):
        pid = f"lung{k + 1:03d}" if phantom == "lung" else f"patient{k + 1:03d}"
        ph = make_phantom(
            phantom,
            shape=shape,
            spacing=spacing,
            n_frames=n_frames,
            noise=noise,
            amplitude=amplitude,
            seed=patient_seed(seed, k),
            patient_id=pid,
            **options,
        )
        (write_lung_layout if phantom == "lung" else write_acdc_layout)(root, ph, truth=truth)
        ids.append(pid)
        summary.append({"patient": pid, "i0": ph.i0, "i1": ph.i1, "n_frames": ph.n_frames})
        if verbose:
            print(f"  {pid}: {ph.n_frames} frames, i0={ph.i0} i1={ph.i1} (0-based)", flush=True)
    manifest = {
        "kind": phantom,  # the file key of dataset.json (as the download tools write it)
        "layout": "lung4d" if phantom == "lung" else "acdc",
        "patients": ids,
        "shape": list(ph.shape),
        "spacing": list(ph.spacing),
        "n_frames": ph.n_frames,
        "seed": int(seed),
        "noise": float(ph.params["noise"]),
        "amplitude": float(amplitude),
        **options,
        "frames": summary,
    }
    (root / "dataset.json").write_text(json.dumps(manifest, indent=1))
    return {**manifest, "seconds": time.perf_counter() - start}
