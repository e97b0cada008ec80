"""Checkpoints (the model layer: loading a model needs nothing of ``train/``): one ``torch.save`` dict, written atomically and read with
``torch.load(..., weights_only=True)``.

Contents (plain types and tensors only, so ``weights_only=True`` loading works)::

    format        "interp4d_lite.checkpoint/1"
    model_kind    a key of ``interp4d_lite.models.MODEL_REGISTRY`` (files written before the key was
                  named so say ``kind``; both are read)
    model_config  dict (``Config.to_dict()``) -- the checkpoint rebuilds its own model
    model_state   state_dict
    train_config  dict of the training config (may be empty)
    step          optimiser steps done
    optimizer     optimiser state_dict (or None)
    scaler        GradScaler state_dict (or None)
    rng           {"torch": ByteTensor, "cuda": [ByteTensor], "numpy": {...}, "python": [...]}
    split         {"train": [...], "val": [...], "test": [...]} patient ids (or None)
    history       list of dicts (step, losses, ...)
    extra         dict of anything else JSON-like

Writing goes to a temporary file in the same directory, then ``os.replace`` -- a crash
mid-write never leaves a half-written checkpoint under the real name.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError
from ..io_utils import atomic_write

FORMAT = "interp4d_lite.checkpoint/1"

__all__ = [
    "FORMAT",
    "save_checkpoint",
    "load_checkpoint",
    "get_rng_state",
    "set_rng_state",
    "atomic_torch_save",
    "load_model",
]


# ---------------------------------------------------------------------- RNG state
def get_rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as tensors / plain types (weights_only-safe)."""
    py = random.getstate()  # (version, tuple of 625 ints, gauss_next)
    np_state = np.random.get_state()  # ('MT19937', uint32[624], pos, has_gauss, cached)
    state = {
        "python": [int(py[0]), torch.tensor(py[1], dtype=torch.int64), py[2]],
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`get_rng_state`."""
    py = state["python"]
    random.setstate((int(py[0]), tuple(int(v) for v in py[1].tolist()), py[2]))
    n = state["numpy"]
    np.random.set_state(
        (
            n["name"],
            n["keys"].numpy().astype(np.uint32),
            int(n["pos"]),
            int(n["has_gauss"]),
            float(n["cached_gaussian"]),
        )
    )
    torch.set_rng_state(state["torch"].cpu().to(torch.uint8))
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu().to(torch.uint8) for s in cuda])


# ---------------------------------------------------------------------- saving
def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through :func:`interp4d_lite.io_utils.atomic_write`."""
    with atomic_write(path, "wb") as f:
        torch.save(obj, f)
    return Path(path)


def _plain(obj: Any) -> Any:
    """Tuples -> lists, numpy scalars/arrays -> python/tensors, paths -> str (recursively)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return str(obj)
    return obj


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model_kind: str,
    model: torch.nn.Module,
    model_config: dict,
    step: int = 0,
    train_config: dict | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: Any = None,
    split: dict | None = None,
    history: list | None = None,
    extra: dict | None = None,
    rng: dict | None = None,
) -> Path:
    """Write a checkpoint atomically; returns its path. ``model`` may be DDP-wrapped."""
    net = model.module if hasattr(model, "module") else model
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    ckpt = {
        "format": FORMAT,
        "model_kind": str(model_kind),
        "model_config": _plain(model_config or {}),
        "model_state": state,
        "train_config": _plain(train_config or {}),
        "step": int(step),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "rng": rng if rng is not None else get_rng_state(),
        "split": _plain(split) if split is not None else None,
        "history": _plain(history or []),
        "extra": _plain(extra or {}),
    }
    return atomic_torch_save(ckpt, path)


# ---------------------------------------------------------------------- loading
def _why_unreadable(path: Path, exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused ``path``, in a few words (torch's own
    message is long and suggests the unsafe ``weights_only=False``)."""
    if path.stat().st_size == 0:
        return "the file is empty"
    if isinstance(exc, pickle.UnpicklingError) and "Unsupported global" in str(exc):
        return "it stores Python objects, not only tensors and plain values as our checkpoints do"
    if zipfile.is_zipfile(path):
        return "a zip archive that torch cannot read: corrupt, or not written by torch.save"
    return "not written by torch.save, or truncated or corrupt"


def load_checkpoint(
    path: str | os.PathLike,
    model_kind: str | tuple[str, ...] | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``.

    Raises :class:`CheckpointError` naming the file when it is missing, truncated or
    corrupt, not one of ours, or of another model kind than ``model_kind``.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        KeyError,
        AttributeError,
    ) as exc:
        raise CheckpointError(f"{path}: not an interp4d_lite checkpoint ({_why_unreadable(path, exc)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "model_state" not in ckpt:
        raise CheckpointError(f"{path}: not an interp4d_lite checkpoint (no '{FORMAT}' header)")
    if "model_kind" not in ckpt and "kind" in ckpt:  # written before the key was renamed
        ckpt["model_kind"] = ckpt.pop("kind")
    if model_kind is not None:
        kinds = (model_kind,) if isinstance(model_kind, str) else tuple(model_kind)
        if ckpt.get("model_kind") not in kinds:
            want = " or ".join(repr(k) for k in kinds)
            raise CheckpointError(f"{path}: checkpoint holds a {ckpt.get('model_kind')!r} model, expected {want}")
    return ckpt


def load_model(
    path: str | os.PathLike, device: str | torch.device = "auto", model_kind: str | Sequence[str] | None = None
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint (:func:`interp4d_lite.models.build_model`),
    in eval mode, on ``device``.

    Returns ``(model, info)`` with ``info`` = ``{"model_kind", "model_config", "train_config",
    "step", "history", "split", "extra", "path"}``. Raises ``CheckpointError`` naming
    the file when it is missing/corrupt or holds another model kind than ``model_kind``.
    """
    from ..device import get_device
    from . import build_model

    ck = load_checkpoint(path, model_kind=model_kind)
    model_kind = ck["model_kind"]
    try:
        model = build_model(model_kind, ck["model_config"])
        model.load_state_dict(ck["model_state"])
    except (ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: weights do not fit a {model_kind!r} model of the stored config: {str(exc).splitlines()[0][:200]}"
        ) from exc
    model = model.to(get_device(device)).eval()
    info = {k: ck.get(k) for k in ("model_kind", "model_config", "train_config", "step", "history", "split", "extra")}
    info["path"] = str(path)
    return model, info
