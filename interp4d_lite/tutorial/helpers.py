"""What the notebooks import for their set-up (:func:`start_notebook`: run folder, device,
seed and data in one call), their data (phantoms, or the real cines the package ships), the
patients they evaluate on, and their metrics file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

from ..io_utils import atomic_write_json

__all__ = [
    "start_notebook",
    "ensure_phantom_data",
    "ensure_real_cine_data",
    "held_out_patients",
    "verdict",
    "save_metrics",
]


def verdict(
    a: float,
    b: float,
    names: tuple[str, str],
    yes: str,
    no: str,
    unit: str = "",
    better: str = "higher",
    fmt: str = ".2f",
    margin: float = 0.0,
    missing: str = "not measured on this data",
) -> str:
    """One printed line that states a claim the way this run's numbers have it: ``"<name a>
    <a> vs <name b> <b> <unit>: <yes>"`` when ``a`` is better than ``b`` (``better``:
    ``"higher"`` or ``"lower"``) by more than ``margin``, else the same numbers with ``no``; a
    NaN (a metric this data cannot give) gives ``"<name a> vs <name b>: <missing>"``.

    >>> verdict(0.52, 0.58, ("distilled", "no distillation"), "distillation helped here",
    ...         "distillation did not help here", "voxels", better="lower")
    'distilled 0.52 vs no distillation 0.58 voxels: distillation helped here'
    """
    if better not in ("higher", "lower"):
        raise ValueError(f"verdict: better must be 'higher' or 'lower', not {better!r}")
    a, b = float(a), float(b)
    if a != a or b != b:
        return f"{names[0]} vs {names[1]}: {missing}"
    wins = a - b > margin if better == "higher" else b - a > margin
    u = f" {unit}" if unit else ""
    return f"{names[0]} {a:{fmt}} vs {names[1]} {b:{fmt}}{u}: {yes if wins else no}"


def start_notebook(
    out_dir="runs/notebooks",
    device="auto",
    seed: int = 0,
    volume_shape=(48, 48, 16),
    data_root="",
    n_patients: int = 10,
    n_frames: int = 20,
    data: bool = True,
) -> SimpleNamespace:
    """The set-up every notebook shares, from its parameters: the run folder and its
    ``checkpoints/``, the device, the seed, and the data (``data_root`` when given, else a
    cardiac phantom dataset in ``out_dir/data/cardiac``, made once by
    :func:`ensure_phantom_data`). Prints one line on each.

    Returns a namespace: ``out_dir``, ``ckpt_dir`` (Paths), ``device`` (torch.device),
    ``volume_shape`` (tuple, or None as given), ``data_root`` (Path, None with ``data=False``), ``has_truth``
    (whether the patients carry true fields: phantoms do, real scans do not) and ``reference``
    (what stands in for the truth: ``"true motion"`` or ``"registration to each real frame"``).
    Sets ``OMP_WAIT_POLICY=PASSIVE`` (when unset) before torch is imported: spinning OpenMP
    threads slow every step on a busy machine."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ..device import get_device, seed_everything
    from ..train.motion import REGISTERED_REFERENCE, TRUE_REFERENCE

    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    volume_shape = None if volume_shape is None else tuple(int(s) for s in volume_shape)
    device = get_device(device)
    seed_everything(seed)
    shape = "the data's own grid" if volume_shape is None else volume_shape
    print(f"device: {device} | volume_shape (X, Y, Z): {shape} | out_dir: {out_dir.resolve()}")
    root, has_truth = None, True
    if data:
        from ..data import discover_patients, load_patient

        if data_root:
            root = Path(data_root)
        else:
            root = ensure_phantom_data(
                out_dir / "data" / "cardiac",
                phantom="cardiac",
                n_patients=n_patients,
                volume_shape=volume_shape,
                n_frames=n_frames,
                seed=seed,
            )
        patients = discover_patients(root)
        has_truth = load_patient(patients[0], volume_shape=volume_shape).has_truth
        kind = (
            "phantoms with true motion"
            if has_truth
            else "scans without true motion: cells that need it use the registration to each real frame"
        )
        print(f"data: {root} ({len(patients)} patient{'s' if len(patients) != 1 else ''}, {kind})")
    return SimpleNamespace(
        out_dir=out_dir,
        ckpt_dir=ckpt_dir,
        device=device,
        volume_shape=volume_shape,
        data_root=root,
        has_truth=has_truth,
        reference=TRUE_REFERENCE if has_truth else REGISTERED_REFERENCE,
    )


def ensure_real_cine_data(root: str | os.PathLike, volume_shape=(48, 48, 16)) -> Path:
    """Return ``root`` after making sure it holds every real cine the package ships
    (:func:`interp4d_lite.data.write_real_cine_dataset`) in ACDC layout, each brought down in
    plane to fit ``volume_shape``: a ``data_root`` of real scans with no true fields. An
    existing folder made for the same cines and in-plane size is reused."""
    from ..data.real_cine import shipped_real_cines, write_real_cine_dataset

    root = Path(root)
    in_plane = int(min(volume_shape[:2]))
    want = {"cines": [c.name for c in shipped_real_cines()], "in_plane": in_plane}
    stamp = root / ".tutorial_real_cines.json"
    if stamp.exists():
        try:
            if json.loads(stamp.read_text()) == want and all((root / c).is_dir() for c in want["cines"]):
                return root
        except (OSError, ValueError):
            pass
    root.mkdir(parents=True, exist_ok=True)
    write_real_cine_dataset(root, in_plane=in_plane)
    atomic_write_json(stamp, want)
    return root


def held_out_patients(data_root, volume_shape, seed: int = 0) -> list:
    """The test part of the patient-level split of ``data_root`` (loaded at ``volume_shape``),
    as every notebook evaluates. A folder too small for a test part (a single scan) gives all
    its patients instead, and a printed line says that they were trained on."""
    from ..data import discover_patients, load_patient
    from ..train.datasets import resolve_patients

    test, _ = resolve_patients(data_root=data_root, volume_shape=volume_shape, part="test", split_seed=seed)
    if test:
        return test
    dirs = discover_patients(data_root)
    print(
        f"only {len(dirs)} patient(s) in {data_root}: no held-out patient, so the evaluation uses "
        f"{', '.join(d.name for d in dirs)}, which the models trained on (it measures fitting, not generalisation)"
    )
    return [load_patient(d, volume_shape=volume_shape) for d in dirs]


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
