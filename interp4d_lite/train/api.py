"""Notebook-friendly helpers: load a model from its checkpoint (``load_model``, from
:mod:`.checkpoint`), or train one quickly when no checkpoint exists yet
(``ensure_checkpoint``). Imports :mod:`.loops`; nothing imports this module back."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..device import get_device
from .checkpoint import load_model
from .config import BaselineTrainConfig, DistillConfig, TeacherTrainConfig

__all__ = ["load_model", "ensure_checkpoint", "CHECKPOINT_NAMES"]

# ensure_checkpoint kinds -> (model kind in the checkpoint, file name, config class)
CHECKPOINT_NAMES = {
    "teacher": ("teacher", "teacher.pt", TeacherTrainConfig),
    "baseline": ("registration", "baseline.pt", BaselineTrainConfig),
    "student": ("student", "student.pt", DistillConfig),
    "student_nokd": ("student", "student_nokd.pt", DistillConfig),
}


def ensure_checkpoint(
    kind: str,
    out_dir: str | os.PathLike,
    patients: Sequence | None = None,
    config=None,
    *,
    data_root=None,
    data_kind: str | None = None,
    volume_shape=None,
    teacher=None,
    device: str | torch.device = "auto",
    retrain: bool = False,
) -> tuple[nn.Module, list[dict]]:
    """Load ``out_dir/<kind>.pt`` if it holds a finished run, else train (resuming a
    partial one) and save it. ``kind``: ``"teacher"``, ``"baseline"`` (the registration
    net; wrap in ``LinearMotionBaseline``), ``"student"`` (needs ``teacher``: a model or
    checkpoint path; default ``out_dir/teacher.pt``) or ``"student_nokd"`` (ablation).
    Returns ``(model, history)``.
    """
    from .loops import distill_student, train_baseline, train_teacher

    if kind not in CHECKPOINT_NAMES:
        raise ValueError(f"kind must be one of {sorted(CHECKPOINT_NAMES)}, not {kind!r}")
    model_kind, name, cfg_cls = CHECKPOINT_NAMES[kind]
    cfg = config or cfg_cls()
    if kind == "student_nokd":
        cfg = cfg.replace(distill_weight=0.0, feature_weight=0.0)
    path = Path(out_dir) / name
    if path.exists() and not retrain:
        model, info = load_model(path, device=device, expected_kind=model_kind)
        if int(info["step"]) >= int((info.get("train_config") or {}).get("steps", 0)):
            return model, list(info.get("history") or [])
    common = dict(
        data_root=data_root,
        kind=data_kind,
        volume_shape=volume_shape,
        out_dir=out_dir,
        checkpoint_name=name,
        resume=not retrain,
    )
    if kind == "teacher":
        model, hist = train_teacher(patients, cfg, **common)
    elif kind == "baseline":
        model, hist = train_baseline(patients, cfg, **common)
    else:
        if cfg.distill_weight or cfg.feature_weight:
            teacher = teacher if teacher is not None else Path(out_dir) / "teacher.pt"
        model, hist = distill_student(patients, teacher, cfg, **common)
    return model.to(get_device(device)).eval(), hist
