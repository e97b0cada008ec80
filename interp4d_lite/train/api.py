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
from ..models.checkpoint import CheckpointError, load_model
from .config import describe_differences, warn_other_settings
from .recipes import RECIPES, get_recipe

__all__ = ["load_model", "ensure_checkpoint", "load_finished"]


def ensure_checkpoint(
    method: str,
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
    """Load ``out_dir/<checkpoint>`` of the recipe ``method`` if it holds a finished run, else
    train it (resuming a partial run) and save it. ``method``: a name of the recipe table
    (:data:`~interp4d_lite.train.recipes.RECIPES`): ``"teacher"``, ``"baseline"`` (the
    registration net; wrap in ``LinearMotionBaseline``), ``"student"`` (needs ``teacher``: a
    model or checkpoint path; default ``out_dir/teacher.pt``), ``"student_nokd"``, or an ablated
    student (``"student_no_film"``, ``"student_no_fusion"``) or the field-space fusion option
    (``"student_field_fusion"``); these need a teacher like ``"student"``.
    Returns ``(model, history)``.
    """
    from .loops import fit

    if method not in RECIPES:
        raise ValueError(f"method must be one of {sorted(RECIPES)}, not {method!r}")
    recipe = get_recipe(method)
    cfg = recipe.config(config)
    path = Path(out_dir) / recipe.checkpoint
    if path.exists() and not retrain:
        model, info = load_model(path, device=device, model_kind=recipe.model_kind)
        if int(info["step"]) >= int((info.get("train_config") or {}).get("steps", 0)):
            warn_other_settings(
                path, cfg, info.get("train_config"), "loaded a finished run",
                "retrain=True (or another folder) trains it with the settings asked for",
            )  # fmt: skip
            return model, list(info.get("history") or [])
    if recipe.needs_teacher(cfg) and teacher is None:
        teacher = Path(out_dir) / get_recipe("teacher").checkpoint
    model, hist = fit(
        recipe, patients, cfg, teacher=teacher, data_root=data_root, data_kind=data_kind,
        volume_shape=volume_shape, out_dir=out_dir, resume=not retrain,
    )  # fmt: skip
    return model.to(get_device(device)).eval(), hist


def load_finished(path: str | os.PathLike, config, recipe) -> nn.Module | None:
    """The model in ``path`` (on the CPU) when it holds a finished run of the recipe ``recipe`` (a
    name of the table or a ``Recipe``) with ``config`` (its ``steps`` done), else ``None`` (no
    file, or a partial run to resume). A checkpoint made with other settings
    (:meth:`~interp4d_lite.train.config.TrainConfig.differences`, after the recipe's own
    overrides) raises ``CheckpointError`` naming them: a benchmark must not score a model it did
    not ask for."""
    path = Path(path)
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    if not path.exists():
        return None
    cfg = recipe.config(config)
    model, info = load_model(path, device="cpu", model_kind=recipe.model_kind)
    diff = cfg.differences(info.get("train_config"))
    if diff:
        raise CheckpointError(f"{path}: made with {describe_differences(diff)}; remove it or give another folder")
    return model if int(info["step"]) >= cfg.steps else None
