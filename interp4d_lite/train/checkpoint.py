"""Checkpoint I/O lives in the model layer, :mod:`interp4d_lite.models.checkpoint`; this module
re-exports it for the training loops and for code that imports it from here."""

from ..models.checkpoint import *  # noqa: F403
from ..models.checkpoint import __all__  # noqa: F401
