"""Notebook-friendly helpers: load a model from its checkpoint, or train one quickly
when no checkpoint exists yet (``ensure_checkpoint``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..device import get_device
from .checkpoint import load_checkpoint
from .config import BaselineTrainConfig, DistillConfig, TeacherTrainConfig

__all__ = ["load_model", "ensure_checkpoint", "CHECKPOINT_NAMES"]

# ensure_checkpoint kinds -> (model kind in the checkpoint, file name, config class)
CHECKPOINT_NAMES = {
    "teacher": ("teacher", "teacher.pt", TeacherTrainConfig),
    "baseline": ("registration", "baseline.pt", BaselineTrainConfig),
    "student": ("student", "student.pt", DistillConfig),
    "student_nokd": ("student", "student_nokd.pt", DistillConfig),
}


def load_model(path: str | os.PathLike, device: str | torch.device = "auto",
               expected_kind: str | Sequence[str] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint (eval mode, on ``device``).

    Returns ``(model, info)`` with ``info`` = ``{"kind", "model_config", "train_config",
    "step", "history", "split", "extra", "path"}``. Raises ``CheckpointError`` naming
    the file when it is missing/corrupt or holds another kind than ``expected_kind``.
    """
    from ..errors import CheckpointError
    from ..models import MODEL_REGISTRY

    ck = load_checkpoint(path, expected_kind=expected_kind)
    kind = ck["kind"]
    if kind not in MODEL_REGISTRY:
        raise CheckpointError(f"{path}: unknown model kind {kind!r}")
    cls, cfg_cls = MODEL_REGISTRY[kind]
    try:
        model = cls(cfg_cls.from_dict(dict(ck["model_config"])))
        model.load_state_dict(ck["model_state"])
    except (ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit a {kind!r} model of the stored config: {str(exc).splitlines()[0][:200]}") from exc
    model = model.to(get_device(device)).eval()
    info = {k: ck.get(k) for k in ("kind", "model_config", "train_config", "step", "history", "split", "extra")}
    info["path"] = str(path)
    return model, info


def ensure_checkpoint(kind: str, out_dir: str | os.PathLike, patients: Sequence | None = None, config=None, *,
                      data_root=None, data_kind: str | None = None, volume_shape=None, teacher=None,
                      device: str | torch.device = "auto", retrain: bool = False) -> tuple[nn.Module, list[dict]]:
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
    common = dict(data_root=data_root, kind=data_kind, volume_shape=volume_shape, out_dir=out_dir,
                  checkpoint_name=name, resume=not retrain)
    if kind == "teacher":
        model, hist = train_teacher(patients, cfg, **common)
    elif kind == "baseline":
        model, hist = train_baseline(patients, cfg, **common)
    else:
        if cfg.distill_weight or cfg.feature_weight:
            teacher = teacher if teacher is not None else Path(out_dir) / "teacher.pt"
        model, hist = distill_student(patients, teacher, cfg, **common)
    return model.to(get_device(device)).eval(), hist
