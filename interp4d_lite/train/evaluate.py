"""Evaluation: every method on the same patients, every intermediate frame, the
docs/METHOD.md metrics per frame, then averaged (over all frames, at mid-cycle t, per t).

Methods are given as a dict ``name -> method`` where a method is
``"linear_blend"``, ``"true_fields"`` (phantoms: the ground-truth fields, blended with
``m = 1 - t``: the ceiling of warping-based interpolation), ``"linear_motion_oracle"``
(phantoms: the true *endpoint* fields scaled linearly in t, ``u_t0 = t u_10``,
``u_t1 = (1 - t) u_01``, blended with ``m = 1 - t``: the best any linear-motion method can
do, which separates the linear assumption from a registration network's quality), a
:class:`~interp4d_lite.models.LinearMotionBaseline` (also
:class:`~interp4d_lite.models.RegisteredLinearMotion`, the classical baseline: the inputs
registered to each other by instance optimisation, no network; named
``"registered_linear_motion"`` by :func:`classical_methods`), a ``Student`` (sees I0, I1, t) or a
``Teacher`` (privileged: also sees the true I_t -- an upper reference, not a competitor).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..device import get_device
from ..io_utils import atomic_write

__all__ = [
    "METRICS",
    "predict_patient",
    "evaluate_methods",
    "summarize",
    "method_table",
    "save_table",
    "format_summary",
    "mid_frames",
    "classical_methods",
    "fusion_weights",
    "REGISTERED_STEPS",
]

#: Adam steps of the registered-linear-motion baseline's instance optimisation (at 1/4 resolution)
REGISTERED_STEPS = 60

#: the per-frame metrics (columns of :func:`evaluate_methods`' frame)
METRICS = ("psnr", "ncc", "ssim", "nmse", "epe", "epe_moving", "folding")
# epe_moving: the field error where tissue moves, over the voxels whose true motion
# |u_t0| + |u_t1| exceeds MOVING_THRESHOLD voxels. Plain EPE averages over a mostly static
# volume and rewards a zero field; a model can draw the right image with the wrong motion.
MOVING_THRESHOLD = 1.0
# higher is better for these; lower for the rest
HIGHER_BETTER = {"psnr", "ncc", "ssim"}


def classical_methods(registered_steps: int | None = REGISTERED_STEPS) -> dict[str, Any]:
    """The methods that need no trained model, for :func:`evaluate_methods`:
    ``{"linear_blend": "linear_blend", "registered_linear_motion": RegisteredLinearMotion(steps)}``;
    ``registered_steps=None`` (or 0) leaves the registered baseline out."""
    from ..models import RegisteredLinearMotion

    methods: dict[str, Any] = {"linear_blend": "linear_blend"}
    if registered_steps:
        methods["registered_linear_motion"] = RegisteredLinearMotion(steps=int(registered_steps))
    return methods


def _method_type(method) -> str:
    from ..models import LinearMotionBaseline, Student, Teacher

    if isinstance(method, str):
        if method not in ("linear_blend", "true_fields", "linear_motion_oracle"):
            raise ValueError(f"unknown method {method!r}")
        return method
    if isinstance(method, LinearMotionBaseline):
        return "linear_motion"
    if isinstance(method, Student):
        return "student"
    if isinstance(method, Teacher):
        return "teacher"
    raise TypeError(f"cannot evaluate a {type(method).__name__}")


@torch.no_grad()
def predict_patient(
    method, patient, device="cpu", frames: Sequence[int] | None = None, chunk: int = 4
) -> dict[int, dict]:
    """``{frame: {"image", "u_t0", "u_t1"}}`` (numpy, ``(X,Y,Z)`` / ``(3,X,Y,Z)``) for the
    intermediate ``frames`` of one patient (default: all targets)."""
    from ..models import linear_blend, linear_motion_interpolate

    device = get_device(device)
    method_type = _method_type(method)
    frames = list(patient.target_indices if frames is None else frames)
    f = torch.as_tensor(np.asarray(patient.frames, dtype=np.float32))
    I0 = f[patient.i0][None, None].to(device)
    I1 = f[patient.i1][None, None].to(device)
    if method_type in ("true_fields", "linear_motion_oracle") and getattr(patient, "u_t0", None) is None:
        raise ValueError(f"{method_type} needs the true fields of a phantom; patient {patient.patient_id} has none")
    if method_type in ("student", "teacher", "linear_motion"):
        method = method.to(device).eval()
    feats = method.encode(I0, I1) if method_type == "student" else None
    reg = method.reg(I0, I1) if method_type == "linear_motion" else None
    out: dict[int, dict] = {}
    for k in range(0, len(frames), chunk):
        fr = frames[k : k + chunk]
        t = torch.tensor([float(patient.times[i]) for i in fr], dtype=torch.float32, device=device)
        n = len(fr)
        if method_type == "linear_blend":
            o = linear_blend(I0, I1, t)
        elif method_type == "linear_motion":
            o = linear_motion_interpolate(I0, I1, reg["u_01"], reg["u_10"], t)
        elif method_type == "student":
            o = method.decode(feats, t)
        elif method_type == "teacher":
            It = f[fr][:, None].to(device)
            o = method(I0.expand(n, -1, -1, -1, -1), I1.expand(n, -1, -1, -1, -1), It, t)
        elif method_type == "linear_motion_oracle":  # true endpoint fields, scaled by t
            u01 = torch.as_tensor(patient.u_t1[0]).float()[None].to(device)  # on frame i0's grid, into frame 1
            u10 = torch.as_tensor(patient.u_t0[-1]).float()[None].to(device)  # on frame i1's grid, into frame 0
            o = linear_motion_interpolate(I0, I1, u01, u10, t)
        else:  # true fields, m = 1 - t
            from ..models import warp

            u0 = torch.as_tensor(np.stack([patient.u_t0[i - patient.i0] for i in fr])).float().to(device)
            u1 = torch.as_tensor(np.stack([patient.u_t1[i - patient.i0] for i in fr])).float().to(device)
            m = (1 - t).view(-1, 1, 1, 1, 1)
            o = {"image": m * warp(I0, u0) + (1 - m) * warp(I1, u1), "u_t0": u0, "u_t1": u1}
        img = o["image"].float().cpu().numpy()
        u0 = o["u_t0"].float().cpu().numpy()
        u1 = o["u_t1"].float().cpu().numpy()
        if u0.shape[0] != n:
            u0, u1 = np.broadcast_to(u0, (n,) + u0.shape[1:]), np.broadcast_to(u1, (n,) + u1.shape[1:])
        for j, i in enumerate(fr):
            out[i] = {"image": img[j, 0], "u_t0": u0[j], "u_t1": u1[j]}
    return out


def fusion_weights(student, patient, frame: int | None = None, device="cpu", static: float = 0.05) -> dict:
    """Where does a student's fusion put its weight? Its per-voxel scale weights at one
    intermediate ``frame`` of a phantom (default: the middle target), averaged where the tissue
    moves (true ``|u_t0| + |u_t1|`` above :data:`MOVING_THRESHOLD` voxels) and where it is
    static (below ``static``; NaN where no voxel is), and their spread over the grid: ``{"moving", "static",
    "spatial_sd"}``, each a list over the scales, coarse -> fine (on the fusion's grid,
    repeated to full resolution)."""
    if getattr(patient, "u_t0", None) is None:
        raise ValueError(f"fusion_weights needs a phantom's true fields; patient {patient.patient_id} has none")
    device = get_device(device)
    frame = patient.target_indices[len(patient.target_indices) // 2] if frame is None else frame
    f = torch.as_tensor(np.asarray(patient.frames, dtype=np.float32))
    I0, I1 = (f[i][None, None].to(device) for i in (patient.i0, patient.i1))
    student = student.to(device).eval()
    with torch.no_grad():
        t = torch.tensor([float(patient.times[frame])], device=device)
        weights = student.decode(student.encode(I0, I1), t)["scale_weights"][0].cpu().numpy()  # (L, X, Y, Z)
    k = frame - patient.i0
    motion = np.linalg.norm(patient.u_t0[k], axis=0) + np.linalg.norm(patient.u_t1[k], axis=0)

    def mean_where(mask):  # NaN per scale where no voxel qualifies (nothing moves that much)
        return weights[:, mask].mean(1).tolist() if mask.any() else [float("nan")] * len(weights)

    return {
        "moving": mean_where(motion > MOVING_THRESHOLD),
        "static": mean_where(motion < static),
        "spatial_sd": weights.reshape(len(weights), -1).std(1).tolist(),
    }


def _metrics(pred: dict, gt: np.ndarray, true_u0, true_u1, spacing) -> dict[str, float]:
    from .. import metrics as M

    p = torch.as_tensor(np.clip(pred["image"], 0, 1))[None, None]
    g = torch.as_tensor(gt)[None, None]
    row = {
        "psnr": float(M.psnr(p, g)),
        "ncc": float(M.local_ncc(p, g)),
        "ssim": float(M.ssim3d(p, g)),
        "nmse": float(M.nmse(p, g)),
    }
    u0 = torch.as_tensor(np.ascontiguousarray(pred["u_t0"]))[None]
    u1 = torch.as_tensor(np.ascontiguousarray(pred["u_t1"]))[None]
    if true_u0 is not None:
        g0, g1 = torch.as_tensor(true_u0)[None], torch.as_tensor(true_u1)[None]
        row["epe"] = 0.5 * (float(M.endpoint_error(u0, g0)) + float(M.endpoint_error(u1, g1)))
        row["epe_moving"] = M.epe_moving(u0, u1, g0, g1, threshold=MOVING_THRESHOLD)
    else:
        row["epe"] = row["epe_moving"] = float("nan")
    row["folding"] = 0.5 * (float(M.folding_percent(u0)) + float(M.folding_percent(u1)))
    return row


def _frame(results) -> pd.DataFrame:
    """The results as a DataFrame (a list of row dicts is accepted too)."""
    return results if isinstance(results, pd.DataFrame) else pd.DataFrame(list(results))


def evaluate_methods(
    methods: dict[str, Any],
    patients: Sequence,
    device="auto",
    out_dir=None,
    dataset: str = "data",
    progress: bool = True,
    keep_predictions: bool = False,
) -> pd.DataFrame:
    """Every method on every intermediate frame of every patient.

    Returns a :class:`pandas.DataFrame` with one row per (method, patient, frame): columns
    ``dataset, method, patient, frame, t`` and :data:`METRICS` (EPE NaN without true
    fields; fields and EPE in voxels); with ``keep_predictions`` also ``prediction``, the
    predicted ``(X, Y, Z)`` volume (for :class:`interp4d_lite.viz.MethodComparison`).
    With ``out_dir``: writes ``metrics.json/csv`` (these rows) and ``summary.json/csv``
    (:func:`summarize`)."""
    rows: list[dict] = []
    todo = [
        (name, m, p)
        for p in patients
        for name, m in methods.items()
        if not (_method_type(m) in ("true_fields", "linear_motion_oracle") and getattr(p, "u_t0", None) is None)
    ]
    it = todo
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(todo, desc="evaluate", leave=False)
    for name, m, p in it:
        preds = predict_patient(m, p, device=device)
        for fr, pred in preds.items():
            k = fr - p.i0
            tu0 = p.u_t0[k] if getattr(p, "u_t0", None) is not None else None
            tu1 = p.u_t1[k] if getattr(p, "u_t1", None) is not None else None
            row = {
                "dataset": dataset,
                "method": name,
                "patient": p.patient_id,
                "frame": int(fr),
                "t": round(float(p.times[fr]), 4),
                **_metrics(pred, np.asarray(p.frames[fr]), tu0, tu1, p.spacing),
            }
            if keep_predictions:
                row["prediction"] = pred["image"]
            rows.append(row)
    results = pd.DataFrame(rows, columns=None if rows else ["dataset", "method", "patient", "frame", "t", *METRICS])
    if out_dir is not None:
        save_table(results, Path(out_dir) / "metrics")
        save_table(summarize(results), Path(out_dir) / "summary")
    return results


def mid_frames(results) -> pd.Series:
    """Boolean mask of the rows at each patient's frame closest to t = 0.5 (per data set;
    on a tie the first such row's frame)."""
    df = _frame(results)
    keys = ["dataset", "patient", "frame"]
    best = (df["t"] - 0.5).abs().groupby([df["dataset"], df["patient"]], sort=False).idxmin()
    chosen = pd.MultiIndex.from_frame(df.loc[best.to_numpy(), keys])
    return pd.Series(pd.MultiIndex.from_frame(df[keys]).isin(chosen), index=df.index)


def summarize(results) -> pd.DataFrame:
    """Per (dataset, method): ``scope="all"`` (every frame), ``"mid"`` (each patient's
    frame nearest t = 0.5) and ``"t=0.xx"`` (per timestamp); the mean of each metric
    (NaNs skipped) and ``n``, the number of rows averaged. Ordered by dataset, then scope
    (``all``, ``mid``, then the timestamps), methods in the order they were evaluated."""
    df = _frame(results)
    metrics = [m for m in METRICS if m in df]
    parts = [
        df.assign(scope="all"),
        df[mid_frames(df)].assign(scope="mid"),
        df.assign(scope=df["t"].map(lambda t: f"t={t:.2f}")),
    ]
    cat = pd.concat(parts, ignore_index=True)
    out = (
        cat.groupby(["dataset", "method", "scope"], sort=False)
        .agg(n=("frame", "size"), **{m: (m, "mean") for m in metrics})
        .reset_index()
    )
    out = out[["dataset", "method", "scope", "n", *metrics]]
    rank = out["scope"].map({"all": 0, "mid": 1}).fillna(2)
    order = sorted(range(len(out)), key=lambda i: (out["dataset"].iat[i], rank.iat[i], out["scope"].iat[i]))
    return out.iloc[order].reset_index(drop=True)


def method_table(
    results, metrics: Sequence[str] = ("psnr", "ssim", "ncc", "nmse", "epe", "folding"), by: str = "method"
) -> pd.DataFrame:
    """The main table: per ``by`` (method), ``n`` and the mean and standard deviation
    (population, over every frame of every patient) of each metric: columns ``<metric>``
    and ``<metric>_std``, one row per method in the order they were evaluated. A metric
    that is NaN everywhere (EPE on real data) is left out."""
    df = _frame(results)
    g = df.groupby(by, sort=False)
    out = pd.DataFrame({"n": g.size()})
    for m in metrics:
        if m not in df or not df[m].notna().any():
            continue
        out[m] = g[m].mean()
        out[f"{m}_std"] = g[m].std(ddof=0)
    return out


def save_table(table, stem: str | os.PathLike) -> tuple[Path, Path]:
    """Write a results or summary table as ``stem.json`` (a list of records) and ``stem.csv``,
    each atomically; array columns (``prediction``) are left out, a named index is kept."""
    df = _frame(table)
    if df.index.name is not None:
        df = df.reset_index()
    df = df[[c for c in df.columns if c != "prediction"]]
    stem = Path(stem)
    js, cs = stem.with_suffix(".json"), stem.with_suffix(".csv")
    with atomic_write(js, "w") as fh:
        fh.write(df.to_json(orient="records", indent=1))
    with atomic_write(cs, "w", newline="") as fh:
        df.to_csv(fh, index=False)
    return js, cs


def format_summary(summary, scopes: Sequence[str] = ("mid", "all"), methods: Sequence[str] | None = None) -> str:
    """Plain-text table of :func:`summarize` rows for the given scopes; the text columns are as
    wide as their longest entry, so every row lines up."""
    records = _frame(summary).to_dict("records")
    rows = [r for s in scopes for r in records if r["scope"] == s and (methods is None or r["method"] in methods)]
    wd = max([9, *(len(str(r["dataset"])) for r in rows)])  # at least the widths the table always had
    ws = max([5, *(len(str(r["scope"])) for r in rows)])
    wm = max([20, *(len(str(r["method"])) for r in rows)])
    head = (
        f"{'dataset':<{wd}} {'scope':<{ws}} {'method':<{wm}} {'PSNR':>7} {'NCC':>6} {'SSIM':>6} {'NMSE':>8} "
        f"{'EPE':>6} {'EPEmov':>6} {'fold%':>6} {'n':>4}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['dataset']:<{wd}} {r['scope']:<{ws}} {r['method']:<{wm}} {r['psnr']:7.2f} {r['ncc']:6.3f} "
            f"{r['ssim']:6.3f} {r['nmse']:8.4f} {r['epe']:6.3f} {r['epe_moving']:6.3f} {r['folding']:6.2f} {r['n']:4d}"
        )
    return "\n".join(lines)
