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

The modules, by job:

* :mod:`.common`: :class:`Phantom4D`, the defaults (``DEFAULT_SHAPES``, ...), the voxel grid,
  soft shapes and texture, the argument checks, the noise and the coil bias field;
* :mod:`.cardiac` (anatomy, generator) and :mod:`.cardiac_motion` (contraction curve, the
  heart's backward map): the short-axis cine of a beating heart in a thorax;
* :mod:`.lung`: the breathing thorax in HU; :mod:`.linear`: uniform translation, the control case;
* :mod:`.breathing`: the same kind of series from a real static chest CT (a breathing model on its
  lungs, rendered from the scan with exact fields; the scans are in :mod:`interp4d_lite.data.chest_ct`);
* :mod:`.make`: :func:`make_phantom`, one entry point with each phantom's defaults;
* :mod:`.writers`: the ACDC and 4D-Lung layouts on disk and whole datasets.

Every public name is importable from here (``from interp4d_lite.data.phantoms import make_phantom``).
"""

from .breathing import BREATHING_RANGES, BreathingMotion, BreathingParams, chest_masks, make_breathing_series
from .cardiac import CARDIAC_LABELS, CARDIAC_REFERENCE_FOV, SSFP_INTENSITY, make_cardiac_phantom
from .cardiac_motion import LV_SHAPE_POWER, cardiac_contraction
from .common import (
    DEFAULT_FRAMES,
    DEFAULT_NOISE,
    DEFAULT_SHAPES,
    DEFAULT_SPACING,
    EDGE_WIDTH,
    HU_WINDOW,
    MIN_FRAMES,
    PHANTOMS,
    Phantom4D,
    hu_to_unit,
    patient_seed,
)
from .linear import make_linear_phantom
from .lung import LUNG_ANATOMIES, lung_breathing, make_lung_phantom
from .make import make_phantom
from .writers import write_acdc_layout, write_lung_layout, write_phantom_dataset

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
    "MIN_FRAMES",
    "HU_WINDOW",
    "EDGE_WIDTH",
    "LUNG_ANATOMIES",
    "lung_breathing",
    "CARDIAC_LABELS",
    "CARDIAC_REFERENCE_FOV",
    "SSFP_INTENSITY",
    "LV_SHAPE_POWER",
    "cardiac_contraction",
    "BREATHING_RANGES",
    "BreathingParams",
    "BreathingMotion",
    "chest_masks",
    "make_breathing_series",
]
