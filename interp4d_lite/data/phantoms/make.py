"""``make_phantom``: one entry point for every generator, with each phantom's defaults."""

from __future__ import annotations

from .cardiac import make_cardiac_phantom
from .common import DEFAULT_FRAMES, DEFAULT_NOISE, DEFAULT_SHAPES, DEFAULT_SPACING, PHANTOMS, Phantom4D
from .linear import make_linear_phantom
from .lung import make_lung_phantom

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
