"""Device choice and seeding, done once for the whole package."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def get_device(device: str | torch.device = "auto") -> torch.device:
    """Return a torch.device; ``"auto"`` picks CUDA when available, else CPU.

    >>> get_device("cpu").type
    'cpu'
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was requested but CUDA is not available; use device='auto' or 'cpu'")
    return dev


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; ``deterministic=True`` also asks torch for
    deterministic kernels (slower on CUDA, a no-op cost on CPU)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
