"""The linear phantom: the control case.

A uniform translation linear in time, ``v = amplitude * (3, 2, 1)``
voxels over ``t in [0, 1]``; ``i0 = 0``, ``i1 = n_frames - 1``. The linear-motion
assumption is exact here: ``u_t0 = -t v``, ``u_t1 = (1 - t) v``.
"""

from __future__ import annotations

import numpy as np

from .common import (
    Phantom4D,
    _check_common,
    _ellipsoid_inside,
    _finish,
    _generator_params,
    _sample,
    _soft,
    _texture,
    _times,
)


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
        **_generator_params(patient_id, shape, spacing, n_frames, noise, amplitude, seed),
        velocity_voxels=[float(v) for v in v_vox],
    )
    return _finish("linear", patient_id, frames, grid, i0, i1, u_t0, u_t1, noise, rng, params)
