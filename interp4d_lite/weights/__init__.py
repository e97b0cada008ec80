"""Pretrained students shipped with the package, and one loader for a student given by name
or by checkpoint path.

``pretrained("cardiac")`` returns the student distilled on the anatomical cardiac phantoms,
``pretrained("lung")`` the one distilled on the lung phantoms (``MODEL_CARD.md`` beside this
file: data, steps, time, hardware, measured numbers, limits). They are trained by
``scripts/pretrain.py`` and stored as float16 weights in the package's checkpoint format.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError

__all__ = ["PRETRAINED", "pretrained", "pretrained_path", "load_student", "resolve_checkpoint"]

HERE = Path(__file__).resolve().parent
# name -> (file, the data kind it fits)
PRETRAINED = {"cardiac": ("student_cardiac.pt", "cardiac"), "lung": ("student_lung.pt", "lung")}
DEFAULT_FOR_DATA_KIND = {"cardiac": "cardiac", "linear": "cardiac", "lung": "lung"}


def pretrained_path(name: str) -> Path:
    """The shipped checkpoint of the pretrained student ``name`` (``"cardiac"`` or ``"lung"``)."""
    if name not in PRETRAINED:
        raise CheckpointError(f"no pretrained student called {name!r}; choose one of {', '.join(PRETRAINED)}")
    path = HERE / PRETRAINED[name][0]
    if not path.is_file():
        raise CheckpointError(
            f"{path}: the pretrained {name!r} student is not in this installation; "
            "build it with scripts/pretrain.py or pass a checkpoint path"
        )
    return path


def resolve_checkpoint(name_or_path: str | os.PathLike | None, data_kind: str | None = None) -> Path:
    """A checkpoint path from a pretrained name, a path, or ``None`` (the pretrained student
    that fits ``data_kind``, cardiac by default)."""
    if name_or_path is None:
        return pretrained_path(DEFAULT_FOR_DATA_KIND.get(data_kind or "cardiac", "cardiac"))
    if str(name_or_path) in PRETRAINED and not Path(name_or_path).exists():
        return pretrained_path(str(name_or_path))
    return Path(name_or_path)


def load_student(name_or_path=None, device="auto", data_kind: str | None = None):
    """A student (eval mode, on ``device``) from a pretrained name or a checkpoint path
    (:func:`resolve_checkpoint`); errors name the file."""
    from ..models.checkpoint import load_model

    model, _ = load_model(resolve_checkpoint(name_or_path, data_kind), device=device, model_kind="student")
    return model


def pretrained(name: str = "cardiac", device="auto"):
    """The pretrained student ``name`` (``"cardiac"`` or ``"lung"``), ready to interpolate."""
    return load_student(pretrained_path(name), device=device)
