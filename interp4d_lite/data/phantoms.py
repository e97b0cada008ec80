"""Synthetic 4D phantoms with exact ground-truth motion (cardiac, lung, linear).

How a phantom is made (the same for every kind):

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
  map at fixed height, piecewise-linear maps along one axis), so ``phi_1^{-1}`` is
  exact rather than iterated.

Temporal profiles are clearly non-linear and shared across patients, with modest
per-patient jitter drawn from the seed (docs/METHOD.md, "What a student can and cannot
learn"). Axes follow the NIfTI voxel axes ``(X, Y, Z)``; the affine is RAS with the
grid centre at world (0, 0, 0).

* **cardiac** -- X, Y in-plane, Z = long axis (base superior, apex inferior), default
  spacing (1.5, 1.5, 5.0) mm. ED = frame 0; ES = ``round(es_frac * n_frames)`` with
  ``es_frac`` in [0.35, 0.40]. Contraction ``s`` (0 at ED, 1 at ES) follows
  ``1 - (1 - u)^p`` over ejection (``p ~ 2.2 +- 10 %``: fast early) and a slower
  half-cosine over filling. Radial wall thickening (in-plane area of the wall
  preserved, so the blood pool shrinks more than the epicardium), longitudinal
  shortening (base moves toward the fixed apex), twist (base and apex rotate in
  opposite directions). ``frames`` in [0, 1]. Default 20 frames per cycle; fewer (>= 6)
  are allowed for quick CPU tutorials.
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

from . import KINDS

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
    "PHANTOM_KINDS",
    "DEFAULT_SHAPES",
    "HU_WINDOW",
    "LUNG_ANATOMIES",
]

PHANTOM_KINDS = KINDS
DEFAULT_SHAPES = {"cardiac": (128, 128, 32), "lung": (128, 128, 128), "linear": (128, 128, 32)}
DEFAULT_SPACING = {"cardiac": (1.5, 1.5, 5.0), "lung": (2.5, 2.5, 2.5), "linear": (1.5, 1.5, 5.0)}
DEFAULT_FRAMES = {"cardiac": 20, "lung": 10, "linear": 6}
MIN_FRAMES = {"cardiac": 6, "lung": 4, "linear": 3}
HU_WINDOW = (-1400.0, 200.0)
EDGE_WIDTH = 0.6  # logistic edge width in voxels (keeps trilinear warping >= 35 dB)


@dataclass
class Phantom4D:
    """One synthetic patient; see docs/ARCHITECTURE.md ("Phantoms")."""

    kind: str
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

    @property
    def shape(self) -> tuple:
        return tuple(self.frames.shape[1:])

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    def unit_frames(self) -> np.ndarray:
        """Frames on the loader's [0, 1] intensity scale (lung: HU window [-1400, 200])."""
        return hu_to_unit(self.frames) if self.kind == "lung" else self.frames


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


def _check_common(kind, shape, spacing, n_frames, noise, amplitude):
    """Check the generator arguments shared by every kind (ValueError naming the kind);
    returns ``(shape, spacing, n_frames, grid)`` normalised to ints/floats and the grid."""
    shape, spacing = tuple(int(s) for s in shape), tuple(float(s) for s in spacing)
    if len(shape) != 3 or any(int(s) < 8 for s in shape):
        raise ValueError(f"{kind} phantom: shape must be three sizes >= 8, got {tuple(shape)}")
    if len(spacing) != 3 or any(not np.isfinite(s) or s <= 0 for s in spacing):
        raise ValueError(f"{kind} phantom: spacing must be three positive numbers (mm), got {tuple(spacing)}")
    if int(n_frames) < MIN_FRAMES[kind]:
        raise ValueError(f"{kind} phantom: n_frames must be >= {MIN_FRAMES[kind]}, got {n_frames}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"{kind} phantom: noise must be >= 0, got {noise}")
    if not np.isfinite(amplitude) or amplitude < 0 or amplitude > 2.0:
        raise ValueError(f"{kind} phantom: amplitude must be in [0, 2] (1 = typical motion), got {amplitude}")
    return shape, spacing, int(n_frames), _Grid(shape, spacing)


def _jitter(rng, value, rel=0.1):
    return float(value * rng.uniform(1.0 - rel, 1.0 + rel))


# --------------------------------------------------------------------------- cardiac
def cardiac_contraction(tau, es_frac, p_eject):
    """Contraction ``s(tau)`` in [0, 1] over one cycle ``tau in [0, 1)`` (0 = ED, 1 = ES):
    ``1 - (1 - u)^p`` over ejection (fast early), half-cosine over the longer filling."""
    tau = np.asarray(tau, dtype=np.float64) % 1.0
    u = np.clip(tau / es_frac, 0.0, 1.0)
    v = np.clip((tau - es_frac) / (1.0 - es_frac), 0.0, 1.0)
    return np.where(tau <= es_frac, 1.0 - (1.0 - u) ** p_eject, 0.5 * (1.0 + np.cos(np.pi * v)))


class _CardiacMotion:
    """Backward map ``phi_s`` of the LV for contraction ``s``: twist (A), radial (B), longitudinal (C),
    ``phi = C o B o A`` applied to frame coordinates; each step is inverted in closed form."""

    def __init__(self, g):
        self.__dict__.update(g)

    def _weights(self, r, z):
        w_r = np.where(r <= self.a_ep, 1.0, np.exp(-(((r - self.a_ep) / (0.6 * self.a_ep)) ** 2)))
        # longitudinal position: -0.4 at the base, +1 at the apex (base and apex twist oppositely)
        h = -0.4 + 1.4 * np.clip((self.z_base - z) / (self.z_base - self.z_apex), 0.0, 1.0)
        g_z = expit((self.z_base + 4.0 - z) / 4.0) * expit((z - self.z_apex) / 4.0)
        return w_r, h, g_z

    def _polar(self, p):
        dx, dy = p[0] - self.cx, p[1] - self.cy
        return dx, dy, np.sqrt(dx * dx + dy * dy)

    def forward(self, p, s):
        """phi_s: (3, ...) mm frame points -> reference points."""
        dx, dy, r = self._polar(p)
        z = p[2]
        w_r, h, g_z = self._weights(r, z)
        ang = np.deg2rad(self.twist_deg) * s * h * w_r  # A: twist
        c, sn = np.cos(ang), np.sin(ang)
        dx, dy = c * dx - sn * dy, sn * dx + c * dy
        r_ref = self._radial(r, s * self.alpha * g_z, inverse=False)  # B: radial
        scale = r_ref / np.maximum(r, 1e-6)
        dx, dy = dx * scale, dy * scale
        w_r2 = np.where(r_ref <= self.a_ep, 1.0, np.exp(-(((r_ref - self.a_ep) / (0.6 * self.a_ep)) ** 2)))
        z = self._longitudinal(z, 1.0 + self.ell * s * w_r2, inverse=False)  # C: longitudinal
        return np.stack([self.cx + dx, self.cy + dy, z])

    def inverse(self, q, s):
        """phi_s^{-1}: (3, ...) mm reference points -> frame points."""
        dx, dy, r_ref = self._polar(q)
        w_r2 = np.where(r_ref <= self.a_ep, 1.0, np.exp(-(((r_ref - self.a_ep) / (0.6 * self.a_ep)) ** 2)))
        z = self._longitudinal(q[2], 1.0 + self.ell * s * w_r2, inverse=True)  # C^-1 (r unchanged by C)
        _, _, g_z = self._weights(r_ref, z)
        r = self._radial(r_ref, s * self.alpha * g_z, inverse=True)  # B^-1 (z unchanged by B)
        scale = r / np.maximum(r_ref, 1e-6)
        dx, dy = dx * scale, dy * scale
        w_r, h, _ = self._weights(r, z)
        ang = -np.deg2rad(self.twist_deg) * s * h * w_r  # A^-1 (r, z unchanged by A)
        c, sn = np.cos(ang), np.sin(ang)
        dx, dy = c * dx - sn * dy, sn * dx + c * dy
        return np.stack([self.cx + dx, self.cy + dy, z])

    def _radial(self, r, q, inverse):
        """In-plane radial map at one height: inside radius b = R0 (1 - q) scale by R0 / b,
        outside keep the ring area: r_ref^2 = r^2 + (R0^2 - b^2) (wall thickens, decays as 1/r)."""
        R0 = self.a_en
        b = R0 * (1.0 - q)
        c = R0**2 - b**2
        if not inverse:
            return np.where(r < b, r * R0 / b, np.sqrt(r * r + c))
        return np.where(r < R0, r * b / R0, np.sqrt(np.maximum(r * r - c, 0.0)))

    def _longitudinal(self, z, k, inverse):
        """Piecewise-linear along Z: identity below the apex, stretch by k (>= 1) from the apex to
        the base, then a constant shift D (the base descends by D toward the fixed apex)."""
        za, zb = self.z_apex, self.z_base
        D = (zb - za) * (1.0 - 1.0 / k)
        if not inverse:
            zb_frame = za + (zb - za) / k
            return np.where(z <= za, z, np.where(z <= zb_frame, za + (z - za) * k, z + D))
        return np.where(z <= za, z, np.where(z <= zb, za + (z - za) / k, z - D))


def make_cardiac_phantom(
    shape=(128, 128, 32),
    spacing=(1.5, 1.5, 5.0),
    n_frames=20,
    noise=0.01,
    amplitude=1.0,
    seed=0,
    patient_id="patient001",
) -> Phantom4D:
    """A beating left ventricle from ED (frame 0) to ES and back; see the module docstring."""
    shape, spacing, n_frames, grid = _check_common("cardiac", shape, spacing, n_frames, noise, amplitude)
    rng = np.random.default_rng(seed)
    R = float(min(grid.half[0], grid.half[1]))  # in-plane half field of view, mm
    Hz = float(grid.half[2])
    a_en = _jitter(rng, 0.24 * R)
    geo = dict(
        cx=float(rng.uniform(-0.04, 0.04) * R),
        cy=float(rng.uniform(-0.04, 0.04) * R),
        a_en=a_en,
        a_ep=a_en + _jitter(rng, 0.10 * R),
        z_base=float(0.45 * Hz),
        z_apex=float(0.45 * Hz - _jitter(rng, 1.15 * Hz, 0.05)),
        alpha=_jitter(rng, 0.30) * amplitude,  # endocardial radius shrinks ~30 % at ES
        ell=_jitter(rng, 0.12) * amplitude,  # ~12 % base-apex shortening
        twist_deg=_jitter(rng, 10.0) * amplitude,  # apex +10 deg, base -4 deg at ES
    )
    es_frac = float(rng.uniform(0.35, 0.40))
    i_es = max(2, int(round(es_frac * n_frames)))
    es_frac = i_es / n_frames  # ES exactly on a frame
    p_eject = _jitter(rng, 2.2)
    motion = _CardiacMotion(geo)
    L_en = geo["z_base"] - geo["z_apex"] - (geo["a_ep"] - geo["a_en"])
    L_ep = geo["z_base"] - geo["z_apex"]
    body = (0.92 * grid.half[0], 0.85 * grid.half[1])
    # texture everywhere, blood pool included (trabeculae, flow artefacts): without it much of
    # the true motion is invisible to any image loss and field errors are ill-posed
    tex_tissue = _texture(rng, shape, 1.5, 0.12)
    sp = grid.spacing

    def render(ref_mm):
        vox = grid.to_voxels(ref_mm)
        base = _soft((geo["z_base"] - ref_mm[2]) / sp[2])
        centre_en = (geo["cx"], geo["cy"], geo["z_base"])
        endo = _soft(_ellipsoid_inside(ref_mm, centre_en, (geo["a_en"], geo["a_en"], L_en), sp)) * base
        epi = _soft(_ellipsoid_inside(ref_mm, centre_en, (geo["a_ep"], geo["a_ep"], L_ep), sp)) * base
        inside = _soft(_ellipsoid_inside(ref_mm, (0.0, 0.0, 0.0), (body[0], body[1], np.inf), sp))
        tex = _sample(tex_tissue, vox)  # one texture sample per frame (speed)
        img = inside * (0.45 + tex)  # textured tissue, air outside the body
        img = img + epi * (0.15 + 0.6 * tex - img)  # myocardium (dark, fainter texture)
        img = img + endo * (0.80 + 0.8 * tex - img)  # bright, textured blood pool
        return img.astype(np.float32)

    tau = np.arange(n_frames) / n_frames
    s_all = cardiac_contraction(tau, es_frac, p_eject)
    frames = np.empty((n_frames, *shape), np.float32)
    u_t0 = np.empty((i_es + 1, 3, *shape), np.float32)
    u_t1 = np.empty((i_es + 1, 3, *shape), np.float32)
    for i in range(n_frames):
        ref = motion.forward(grid.mm, s_all[i]) if s_all[i] > 0 else grid.mm  # (3, X, Y, Z) mm
        frames[i] = render(ref)
        if i <= i_es:
            u_t0[i] = grid.field(ref)
            u_t1[i] = grid.field(motion.inverse(ref, 1.0))  # phi_ES^{-1}(phi_t(x)), s(ES) = 1
    params = dict(
        kind="cardiac",
        patient_id=patient_id,
        shape=list(shape),
        spacing=list(spacing),
        n_frames=n_frames,
        noise=float(noise),
        amplitude=float(amplitude),
        seed=int(seed),
        es_frac=es_frac,
        p_eject=p_eject,
        contraction=[float(v) for v in s_all],
        geometry_mm={k: float(v) for k, v in geo.items()},
    )
    return _finish("cardiac", patient_id, frames, grid, 0, i_es, u_t0, u_t1, noise, rng, params)


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


def _finish(kind, patient_id, frames, grid, i0, i1, u_t0, u_t1, noise_std, rng, params, clip=(0.0, 1.0)):
    if noise_std > 0:
        frames += rng.normal(0.0, noise_std, size=frames.shape).astype(np.float32)
        if clip is not None:
            np.clip(frames, *clip, out=frames)
    return Phantom4D(
        kind=kind,
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
    kind: str, shape=None, spacing=None, n_frames=None, noise=0.01, amplitude=1.0, seed=0, patient_id=None, **options
) -> Phantom4D:
    """Dispatch to ``make_<kind>_phantom``; ``None`` arguments take that kind's defaults
    (``DEFAULT_SHAPES``, ``DEFAULT_SPACING``, ``DEFAULT_FRAMES``)."""
    if kind not in _MAKERS:
        raise ValueError(f"unknown phantom kind {kind!r}; choose one of {', '.join(PHANTOM_KINDS)}")
    kw = dict(
        shape=shape or DEFAULT_SHAPES[kind],
        spacing=spacing or DEFAULT_SPACING[kind],
        n_frames=n_frames or DEFAULT_FRAMES[kind],
        noise=noise,
        amplitude=amplitude,
        seed=seed,
    )
    if patient_id is not None:
        kw["patient_id"] = patient_id
    return _MAKERS[kind](**kw, **options)  # options: kind-specific, e.g. anatomy="b" for the lung


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
    if phantom.kind != "lung":
        raise ValueError(f"write_lung_layout needs a lung phantom, got kind {phantom.kind!r}")
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
    kind="cardiac",
    n_patients=3,
    shape=None,
    spacing=None,
    n_frames=None,
    noise=0.01,
    amplitude=1.0,
    seed=0,
    truth=True,
    verbose=False,
    **options,
) -> dict:
    """Generate ``n_patients`` phantoms (patient ``k`` uses ``patient_seed(seed, k)``) and write
    them in the layout of their kind (cardiac/linear: ACDC, lung: our 4D-Lung layout), plus
    ``root/dataset.json`` listing the patients. Existing files of the same names are overwritten;
    nothing else in ``root`` is touched. Returns the dataset.json content (plus ``seconds``)."""
    if kind not in PHANTOM_KINDS:
        raise ValueError(f"unknown phantom kind {kind!r}; choose one of {', '.join(PHANTOM_KINDS)}")
    if int(n_patients) < 1:
        raise ValueError(f"n_patients must be >= 1, got {n_patients}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    ids, summary = [], []
    for k in range(int(n_patients)):
        pid = f"lung{k + 1:03d}" if kind == "lung" else f"patient{k + 1:03d}"
        ph = make_phantom(
            kind,
            shape=shape,
            spacing=spacing,
            n_frames=n_frames,
            noise=noise,
            amplitude=amplitude,
            seed=patient_seed(seed, k),
            patient_id=pid,
            **options,
        )
        (write_lung_layout if kind == "lung" else write_acdc_layout)(root, ph, truth=truth)
        ids.append(pid)
        summary.append({"patient": pid, "i0": ph.i0, "i1": ph.i1, "n_frames": ph.n_frames})
        if verbose:
            print(f"  {pid}: {ph.n_frames} frames, i0={ph.i0} i1={ph.i1} (0-based)", flush=True)
    manifest = {
        "kind": kind,
        "layout": "lung4d" if kind == "lung" else "acdc",
        "patients": ids,
        "shape": list(ph.shape),
        "spacing": list(ph.spacing),
        "n_frames": ph.n_frames,
        "seed": int(seed),
        "noise": float(noise),
        "amplitude": float(amplitude),
        **options,
        "frames": summary,
    }
    (root / "dataset.json").write_text(json.dumps(manifest, indent=1))
    return {**manifest, "seconds": time.perf_counter() - start}
