"""What the notebooks import for their set-up: their phantom data and their metrics file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..io_utils import atomic_write_json

__all__ = ["ensure_phantom_data", "save_metrics"]


def ensure_phantom_data(
    root: str | os.PathLike,
    phantom: str = "cardiac",
    n_patients: int = 4,
    volume_shape=(48, 48, 16),
    n_frames: int = 10,
    seed: int = 0,
) -> Path:
    """Return ``root`` after making sure it holds a phantom dataset of ``n_patients``.

    The dataset is written with the data module's own writer
    (:func:`interp4d_lite.data.phantoms.write_phantom_dataset`) in ACDC layout for cardiac
    phantoms and in our 4D-Lung layout for lung phantoms; an existing dataset of the same
    phantom, shape, frame count and size is reused, anything else is regenerated.
    """
    from ..data.phantoms import write_phantom_dataset

    root = Path(root)
    manifest = root / "dataset.json"
    want = {
        "phantom": phantom,
        "n_patients": int(n_patients),
        "volume_shape": [int(s) for s in volume_shape],
        "n_frames": int(n_frames),
        "seed": int(seed),
    }
    stamp = root / ".tutorial_phantoms.json"
    if manifest.exists() and stamp.exists():
        try:
            if json.loads(stamp.read_text()) == want:
                return root
        except (OSError, ValueError):
            pass
    root.mkdir(parents=True, exist_ok=True)
    write_phantom_dataset(
        root,
        phantom=phantom,
        n_patients=int(n_patients),
        shape=tuple(want["volume_shape"]),
        n_frames=int(n_frames),
        seed=int(seed),
    )
    atomic_write_json(stamp, want)
    return root


def save_metrics(out_dir: str | os.PathLike, notebook: str, metrics: dict, key: list[str] | None = None) -> Path:
    """Write ``out_dir/metrics/<notebook>.json``: ``{"key": {...}, "all": {...}}``.

    ``key`` names the entries of ``metrics`` that the runner's summary table shows
    (all scalar entries when omitted)."""
    out = Path(out_dir) / "metrics"
    out.mkdir(parents=True, exist_ok=True)
    clean = _jsonable(metrics)
    if key is None:
        key = [k for k, v in clean.items() if isinstance(v, (int, float))]
    payload = {"notebook": notebook, "key": {k: clean[k] for k in key if k in clean}, "all": clean}
    path = out / f"{notebook}.json"
    return atomic_write_json(path, payload, indent=2)


def _jsonable(obj):
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # a pandas DataFrame: its records, named index first
        return _jsonable((obj.reset_index() if obj.index.name is not None else obj).to_dict("records"))
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if np is not None and isinstance(obj, np.generic):
        return obj.item()
    if np is not None and isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    if isinstance(obj, float) and obj != obj:  # NaN -> null
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)
