"""Loss history: a list of dicts ``{"step": int, "loss": float, <component>: float, ...}``,
saved as JSON and plotted with :func:`plot_history`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from ..io_utils import atomic_write_json

__all__ = ["save_history", "load_history", "plot_history"]


def save_history(history: list[dict], path: str | os.PathLike) -> Path:
    """Write the history as JSON (atomically, :func:`interp4d_lite.io_utils.atomic_write`)."""
    return atomic_write_json(path, list(history), indent=1)


def load_history(path: str | os.PathLike) -> list[dict]:
    return json.loads(Path(path).read_text())


def plot_history(
    history: list[dict], keys: Iterable[str] | None = None, ax=None, title: str | None = None, logy: bool = True
):
    """Plot loss curves against the optimiser step; returns the matplotlib Axes.

    ``keys`` defaults to every numeric entry except ``step``, ``lr`` and ``time_s``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    if not history:
        ax.set_title("empty history")
        return ax
    skip = {"step", "lr", "time_s"}
    if keys is None:
        keys = [k for k in history[0] if k not in skip and isinstance(history[0][k], (int, float))]
    steps = [h["step"] for h in history]
    for k in keys:
        vals = [h.get(k, float("nan")) for h in history]
        ax.plot(steps, vals, label=k, lw=2 if k == "loss" else 1)
    if logy and all(v > 0 for k in keys for v in (h.get(k, 1.0) for h in history)):
        ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (unitless)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
