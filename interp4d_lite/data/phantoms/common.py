"""What every phantom shares: :class:`Phantom4D`, the defaults, the voxel grid, soft shapes
and texture, the argument checks, the noise (Gaussian; Rician for the cardiac cine) and the
coil bias field; see :mod:`interp4d_lite.data.phantoms` for how a phantom is made."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates
from scipy.special import expit

from .. import DATA_KINDS
from ..preprocess import HU_WINDOW

#: the phantom generators (one per data kind)
PHANTOMS = DATA_KINDS
DEFAULT_SHAPES = {"cardiac": (128, 128, 10), "lung": (128, 128, 128), "linear": (128, 128, 32)}
DEFAULT_SPACING = {"cardiac": (1.5, 1.5, 8.0), "lung": (2.5, 2.5, 2.5), "linear": (1.5, 1.5, 5.0)}
DEFAULT_FRAMES = {"cardiac": 25, "lung": 10, "linear": 6}
DEFAULT_NOISE = {"cardiac": 0.02, "lung": 0.01, "linear": 0.01}
MIN_FRAMES = {"cardiac": 6, "lung": 4, "linear": 3}
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
    """HU -> [0, 1] with the CT window [-1400, 200] (``data.preprocess.HU_WINDOW``): a fixed
    window, to look at a lung phantom's frames; scans reach the models through
    ``data.preprocess.normalize_scan`` (the window's clip, then min-max per frame)."""
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


def _generator_params(patient_id, shape, spacing, n_frames, noise, amplitude, seed) -> dict:
    """The arguments every generator records in ``Phantom4D.params`` (JSON types), in one order."""
    return dict(
        patient_id=patient_id,
        shape=list(shape),
        spacing=list(spacing),
        n_frames=n_frames,
        noise=float(noise),
        amplitude=float(amplitude),
        seed=int(seed),
    )


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


def _bias_field(rng, grid, strength):
    """Smooth multiplicative coil sensitivity: exp of a random low-order polynomial of the
    normalised coordinates, with log-std ``strength``, scaled to a maximum of 1."""
    n = grid.mm / grid.half.reshape(3, 1, 1, 1).astype(np.float32)
    terms = [n[0], n[1], 0.3 * n[2], n[0] * n[0], n[1] * n[1], n[0] * n[1]]
    f = sum(float(rng.normal()) * t for t in terms)
    f = f * (strength / (float(f.std()) + 1e-8))
    b = np.exp(f)
    return (b / b.max()).astype(np.float32)


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
