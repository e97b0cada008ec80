"""Checkpoint I/O lives in the model layer, :mod:`interp4d_lite.models.checkpoint`; this module
re-exports it for the training loops and for code that imports it from here."""

from ..models.checkpoint import (
    FORMAT,
    atomic_torch_save,
    get_rng_state,
    load_checkpoint,
    load_model,
    save_checkpoint,
    set_rng_state,
)

__all__ = [
    "FORMAT",
    "save_checkpoint",
    "load_checkpoint",
    "get_rng_state",
    "set_rng_state",
    "atomic_torch_save",
    "load_model",
]
