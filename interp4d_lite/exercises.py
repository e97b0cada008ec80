"""The notebooks' self-checking exercises live in :mod:`interp4d_lite.tutorial.exercises`; this
name is that same module (``from interp4d_lite import exercises as ex`` keeps working)."""

import sys

from .tutorial import exercises as _exercises

sys.modules[__name__] = _exercises
