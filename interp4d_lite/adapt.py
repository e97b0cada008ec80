"""Adaptation of a trained student to one scan, and the self-check against the linear blend.

A student trained on phantoms meets a real scan it has never seen. The scan itself holds
what the student lacks: its other frames. To interpolate between frames ``I`` and ``J``,
:func:`adapt_student` fine-tunes the student on triplets ``(frame a, frame k, frame b)`` of
the same series whose frames all lie **outside the open interval (I, J)** -- for a cardiac
cine the rest of the beat (ES -> ED), for a breath the other half -- at the spacing of
(I, J) and at others. Each triplet's real middle frame gives the image losses and, as the
privileged teacher does on phantoms, a per-scan distillation target: the two inputs
registered to it by instance optimisation (:func:`~interp4d_lite.models.teacher.register_to_frame`).
Frames strictly between I and J are never read.

A few windows are held back from the fine-tuning; :func:`self_check` scores a model on
them against the linear blend, before and after, and :func:`interpolate_files` scores the
model it is given on the windows of the series that lie outside the target interval. A
model below the blend is reported, with its numbers, and ``--fallback blend`` writes the
blend instead.

Frames are min-max normalised one by one, as :mod:`interp4d_lite.interpolate` does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.windows import Window

__all__ = [
    "Window",
    "allowed_frames",
    "scan_windows",
    "split_windows",
    "ScanTriplets",
    "TimeReversed",
    "self_check",
    "SelfCheck",
    "adapt_student",
    "read_scan_frames",
]


def allowed_frames(n: int, i: int, j: int) -> list[int]:
    """The frames of an ``n``-frame series that adaptation may read when ``(i, j)`` is to be
    interpolated: every frame but those strictly between ``i`` and ``j``."""
    lo, hi = min(i, j), max(i, j)
    return [k for k in range(n) if not lo < k < hi]


def scan_windows(n: int, i: int, j: int, cyclic: bool = True, min_gap: int = 2) -> list[Window]:
    """Every window of the series whose frames all avoid the open interval ``(i, j)``, with gaps from ``min_gap`` up to ``|j - i|`` (the spacing to
    interpolate; longer gaps are not needed to learn it). ``cyclic``: windows may wrap from
    the last frame to the first (one heartbeat, one breath)."""
    allowed = set(allowed_frames(n, i, j))
    out = []
    for gap in range(min_gap, abs(j - i) + 1):
        for a in range(n if cyclic else n - gap):
            w = Window(a, gap, n)
            if (not cyclic and a + gap >= n) or gap >= n:
                continue
            if set(w.frames) <= allowed:  # for a cycle this includes J -> I the other way round
                out.append(w)
    return out


def split_windows(windows: Sequence[Window], gap: int, holdout: int) -> tuple[list[Window], list[Window]]:
    """``(train, held_out)``: ``holdout`` windows held back for the self-check, those at the
    spacing closest to ``gap`` and spread over the series; the training windows share none of
    their frame pairs. Deterministic."""
    windows = list(windows)
    if holdout <= 0 or len(windows) <= holdout:
        return windows, []
    best = min(abs(w.gap - gap) for w in windows)
    at_gap = [w for w in windows if abs(w.gap - gap) == best]
    step = max(1, len(at_gap) // holdout)
    held = at_gap[::step][:holdout]
    return [w for w in windows if w not in held], held


def _pick_triplets(windows: Sequence[Window], gap: int, limit: int, seed: int) -> list[tuple[int, int, int, float]]:
    """At most ``limit`` triplets of ``windows``, the spacing closest to ``gap`` first (ties in
    an order drawn by ``seed``): a budget that cuts the list keeps the most useful ones."""
    triplets = [(tr, w.gap) for w in windows for tr in w.triplets()]
    order = np.random.default_rng(seed).permutation(len(triplets))
    ranked = sorted(range(len(triplets)), key=lambda k: (abs(triplets[k][1] - gap), int(order[k])))
    chosen = ranked if limit <= 0 else ranked[:limit]
    return [triplets[k][0] for k in chosen]


class ScanTriplets:
    """Triplets of one scan as training items (the items of
    :class:`~interp4d_lite.data.TripletDataset`): ``I0``, ``I1``, ``It`` ``(1, X, Y, Z)``
    float32, ``t`` 0-d tensor, ``patient``, ``frame``. ``frames`` maps a frame index to its
    normalised ``(X, Y, Z)`` volume; only the frames the triplets name are touched."""

    def __init__(self, frames: dict[int, np.ndarray], triplets: Sequence[tuple[int, int, int, float]], name="scan"):
        self.frames, self.triplets, self.name = frames, list(triplets), name
        if not self.triplets:
            raise ValueError("no triplets to adapt on")

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, k: int) -> dict:
        import torch

        a, m, b, t = self.triplets[k]
        vol = lambda i: torch.from_numpy(np.ascontiguousarray(self.frames[i], dtype=np.float32))[None]  # noqa: E731
        return {"I0": vol(a), "I1": vol(b), "It": vol(m), "t": torch.tensor(float(t)), "patient": self.name, "frame": m}


class TimeReversed:
    """Each item of ``dataset`` (with its cached targets) forward, then again played backwards:
    ``I0`` and ``I1`` swapped, ``t -> 1 - t``, ``target_u_t0`` and ``target_u_t1`` swapped. A
    scan's frames outside (I, J) run the other way in time (ES -> ED against ED -> ES): without
    the reversed copies a student fine-tuned on them learns the motion's direction for the wrong
    order of its inputs."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.has_targets = bool(getattr(dataset, "has_targets", False))

    def __len__(self) -> int:
        return 2 * len(self.dataset)

    def __getitem__(self, k: int) -> dict:
        n = len(self.dataset)
        item = dict(self.dataset[k % n])
        if k >= n:
            item["I0"], item["I1"] = item["I1"], item["I0"]
            item["t"] = 1 - item["t"]
            if "target_u_t0" in item:
                item["target_u_t0"], item["target_u_t1"] = item["target_u_t1"], item["target_u_t0"]
        return item


@dataclass
class SelfCheck:
    """PSNR (dB, peak 1, normalised frames) of a model and of the linear blend on windows of
    the scan that the model did not train on."""

    model_db: float
    blend_db: float
    n_frames: int
    windows: list

    @property
    def gain_db(self) -> float:
        return self.model_db - self.blend_db

    def line(self, name: str = "model") -> str:
        """One line for the user: the two PSNRs, the gain, and a warning when below the blend."""
        where = ", ".join(f"{w.a}->{w.b}" for w in self.windows)
        text = (
            f"self-check on {self.n_frames} frames of the scan's own windows ({where}): {name} {self.model_db:.2f} dB, "
            f"linear blend {self.blend_db:.2f} dB ({self.gain_db:+.2f} dB)"
        )
        if self.gain_db < 0:
            text += f"; WARNING: the {name} is below the linear blend on this scan"
        return text


def self_check(model, frames: dict[int, np.ndarray], windows: Sequence[Window], device="cpu") -> SelfCheck | None:
    """Score ``model`` (a student) and the linear blend on every middle frame of ``windows``,
    each window played both ways (``a -> b`` and ``b -> a`` with ``t -> 1 - t``: the held-out
    windows run the other way in time than the interval to interpolate); ``None`` when there are
    no windows. PSNR per frame, averaged."""
    import torch

    from .metrics import psnr
    from .models.baselines import linear_blend

    windows = list(windows)
    if not windows:
        return None
    model = model.to(device).eval()
    vol = lambda i: torch.from_numpy(frames[i])[None, None].float().to(device)  # noqa: E731
    got, blend = [], []
    with torch.no_grad():
        for w in windows:
            trip = w.triplets()
            gt = torch.cat([vol(tr[1]) for tr in trip])
            for I0, I1, t in (
                (vol(w.a), vol(w.b), [tr[3] for tr in trip]),
                (vol(w.b), vol(w.a), [1 - tr[3] for tr in trip]),
            ):
                tt = torch.tensor(t, dtype=torch.float32, device=device)
                n = len(trip)
                out = model(I0.expand(n, -1, -1, -1, -1), I1.expand(n, -1, -1, -1, -1), tt)["image"]
                got += psnr(out.clamp(0, 1).float(), gt, reduction="none").tolist()
                blend += psnr(linear_blend(I0, I1, tt)["image"], gt, reduction="none").tolist()
    return SelfCheck(float(np.mean(got)), float(np.mean(blend)), len(got), windows)


def read_scan_frames(path, indices: Sequence[int]) -> tuple[dict[int, np.ndarray], object, int]:
    """``({index: (X, Y, Z) float32 in [0, 1]}, image, n_frames)``: only the frames ``indices``
    of a 4D NIfTI are read (each min-max normalised), so frames not named are never touched.
    Errors are one line naming the file (:class:`~interp4d_lite.errors.DataError`)."""
    from .data.io import read_nifti_frames
    from .data.preprocess import minmax_per_frame

    data, img, n = read_nifti_frames(path, indices)
    return {k: minmax_per_frame(v[None])[0] for k, v in data.items()}, img, n


def _with_targets(triplets: ScanTriplets, cfg, started: float):
    """The triplets with their per-scan registration targets (each triplet's inputs registered
    to its real middle frame), computed in order within ``cfg.target_share`` of the time budget;
    the triplets without a target are dropped; each is also played backwards (:class:`TimeReversed`).
    Returns ``(dataset, count of triplets)``."""
    from .device import get_device
    from .models.teacher import register_to_frame
    from .train.datasets import CachedTargets, compute_targets

    def register(b):
        return register_to_frame(
            b["I0"], b["I1"], b["It"], steps=cfg.target_steps, smooth=cfg.target_smooth, blur=cfg.target_blur
        )

    deadline = started + 60 * cfg.minutes * cfg.target_share if cfg.minutes else None
    device = get_device(cfg.device)
    targets = compute_targets(register, triplets, device, progress=cfg.progress, desc="scan targets", deadline=deadline)
    kept = ScanTriplets(triplets.frames, triplets.triplets[: len(targets)], name=triplets.name)
    return TimeReversed(CachedTargets(kept, targets)), len(targets)


def _save_student(model, out, cfg) -> None:
    """Write ``model`` (a student) to ``out`` as a checkpoint of the ``adapt`` recipe."""
    from .train.checkpoint import save_checkpoint

    save_checkpoint(
        out, model_kind="student", model=model, model_config=model.config.to_dict(), train_config=cfg.to_dict(),
        extra={"recipe": "adapt", "kept": "original"},
    )  # fmt: skip


def _budget_left(started: float, minutes: float) -> float:
    return math.inf if not minutes else 60 * minutes - (time.perf_counter() - started)


def adapt_student(
    frames: dict[int, np.ndarray],
    n_frames: int,
    pair: tuple[int, int],
    student,
    config=None,
    *,
    out=None,
    name: str = "scan",
    device: str | None = None,
) -> tuple[object, dict]:
    """Fine-tune ``student`` on one scan for interpolating between frames ``pair = (I, J)``.

    Args:
        frames: ``{index: (X, Y, Z)}`` normalised frames of the scan; frames strictly between
            I and J are not needed (and are refused).
        n_frames: the number of frames of the series.
        pair: the two input frames ``(I, J)`` (0-based).
        student: the student to start from (it is copied; the original is unchanged).
        config: an :class:`~interp4d_lite.train.config.AdaptConfig` (steps, time budget, weights).
        out: where to write the adapted checkpoint (a ``.pt`` path), or ``None``.
        name: the scan's name in the history and reports.
        device: overrides ``config.device``.
    Returns:
        ``(adapted student, report)``: the report holds the windows used, the steps, the
        seconds, and the self-check before and after (:class:`SelfCheck`) on the held-out windows.
        When the fine-tuned student scores below the student it started from there, the start is
        returned (and written to ``out``) instead: ``report["kept"]`` is ``"original"``.
    """
    import copy

    from .train.config import AdaptConfig
    from .train.loops import fit

    started = time.perf_counter()
    cfg = config or AdaptConfig()
    if device is not None:
        cfg = cfg.replace(device=device)
    i, j = (int(v) for v in pair)
    inside = [k for k in frames if min(i, j) < k < max(i, j)]
    if inside:
        raise ValueError(f"adaptation must not see the target frames strictly between {i} and {j}; got {inside}")
    windows = scan_windows(n_frames, i, j, cyclic=cfg.cyclic)
    if not windows:
        from .errors import DataError

        raise DataError(
            f"frames {i} and {j} of {n_frames} leave no window of the scan outside them to adapt on "
            "(a series needs frames beyond the interval, or --cyclic)"
        )
    train_w, held = split_windows(windows, abs(j - i), cfg.holdout)
    trip = _pick_triplets(train_w, abs(j - i), cfg.max_triplets, cfg.seed)
    before = self_check(copy.deepcopy(student).cpu(), frames, held, device="cpu")
    dataset, n_targets = _with_targets(ScanTriplets(frames, trip, name=name), cfg, started)
    model, history = fit(
        "adapt",
        config=cfg.replace(minutes=max(_budget_left(started, cfg.minutes) / 60, 1e-3) if cfg.minutes else 0.0),
        dataset=dataset,
        model=copy.deepcopy(student),
        out_dir=Path(out).parent if out is not None else None,
        checkpoint_name=Path(out).name if out is not None else None,
        resume=False,
    )
    after = self_check(model, frames, held, device=next(model.parameters()).device)
    kept = "adapted"
    if before is not None and after is not None and after.model_db < before.model_db:
        model, kept = copy.deepcopy(student), "original"  # adaptation made the self-check worse: undo it
        if out is not None:
            _save_student(model, out, cfg)
    report = {
        "pair": [i, j],
        "windows": len(windows),
        "train_triplets": n_targets,
        "held_out": [[w.a, w.b] for w in held],
        "steps": int(history[-1]["step"]) if history else 0,
        "seconds": round(time.perf_counter() - started, 1),
        "before": before,
        "after": after,
        "kept": kept,
    }
    return model, report


def adapt_file(
    input_4d, frames: Sequence[int], out, *, checkpoint=None, steps=None, minutes=None, seed=0, device="auto", **cfg
):
    """The ``adapt`` command: read the allowed frames of ``input_4d``, adapt the student
    (``checkpoint``: a path or a pretrained name; default the pretrained one), write ``out``."""
    from .io_utils import check_frames, check_output_path
    from .train.config import AdaptConfig

    out = check_output_path(out, suffixes=(".pt",))
    i, j = check_frames(frames)
    n = _n_frames(input_4d)
    for f in (i, j):
        if not 0 <= f < n:
            from .errors import CLIError

            raise CLIError(f"frame index {f} out of range for {input_4d}: it has {n} frames (0-based: 0..{n - 1})")
    student = _load_student(checkpoint, device)
    data, _, _ = read_scan_frames(input_4d, allowed_frames(n, i, j))
    config = AdaptConfig(seed=seed, device=device, **cfg)
    if steps is not None:
        config = config.replace(steps=int(steps))
    if minutes is not None:
        config = config.replace(minutes=float(minutes))
    return adapt_student(data, n, (i, j), student, config, out=out, name=Path(str(input_4d)).name)


def _n_frames(path) -> int:
    from .data.io import read_nifti_frames

    return read_nifti_frames(path, [])[2]


def _load_student(checkpoint, device):
    from .weights import load_student

    return load_student(checkpoint, device=device)


def _fmt(report: dict) -> list[str]:
    lines = [
        f"adapted on {report['train_triplets']} triplets of {report['windows']} windows outside frames "
        f"{report['pair'][0]}..{report['pair'][1]}: {report['steps']} steps, {report['seconds']:.0f} s"
    ]
    for key, label in (("before", "student before adaptation"), ("after", "adapted student")):
        if report[key] is not None:
            lines.append(report[key].line(label))
    if report["after"] is None:
        lines.append("self-check: no window of the scan was left to hold back; nothing compares it to the blend")
    elif report.get("kept") == "original":
        lines.append(
            "the fine-tuned student scored below the one it started from on the held-out windows: kept the original"
        )
    return lines


def add_commands(subparsers) -> None:
    """Register ``interp4d-lite adapt``."""
    import argparse

    p = subparsers.add_parser(
        "adapt",
        help="fine-tune a student on your own scan (its frames outside the interval to interpolate)",
        description="Adapt a trained student to one 4D series before interpolating frames I..J of it: fine-tune on "
        "triplets of the series' own frames outside the open interval (I, J) (for a cine ED->ES: the rest of the "
        "beat), with image losses against their real middle frames and per-scan registration targets. The frames "
        "strictly between I and J are never read. Some windows are held back and the adapted student is scored "
        "on them against the linear blend (printed). Writes a student checkpoint that interpolate and evaluate load.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--input", required=True, metavar="NII4D", help="the 4D NIfTI series (X, Y, Z, T)")
    p.add_argument("--frames", type=int, nargs=2, required=True, metavar=("I", "J"), help="the frames to interpolate")
    p.add_argument(
        "--checkpoint", default=None, metavar="CKPT_OR_NAME", help="student to start from (default: cardiac)"
    )
    p.add_argument("--steps", type=int, default=None, help="optimiser steps at most (default 300)")
    p.add_argument("--minutes", type=float, default=None, help="time budget in minutes (default 5; 0 = no limit)")
    p.add_argument("--seed", type=int, default=0, help="seed of the triplet choice, data order and augmentation")
    p.add_argument("--cyclic", action=argparse.BooleanOptionalAction, default=True, help="the series is one cycle")
    p.add_argument("--out", required=True, metavar="CKPT", help="the adapted student checkpoint (.pt)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_run_adapt)


def _run_adapt(args) -> int:
    from .errors import CLIError

    if args.steps is not None and args.steps < 1:
        raise CLIError(f"--steps must be >= 1, got {args.steps}")
    if args.minutes is not None and args.minutes < 0:
        raise CLIError(f"--minutes must be >= 0, got {args.minutes}")
    _, report = adapt_file(
        args.input, args.frames, args.out, checkpoint=args.checkpoint, steps=args.steps, minutes=args.minutes,
        seed=args.seed, device=args.device, cyclic=args.cyclic,
    )  # fmt: skip
    for line in _fmt(report):
        print(line)
    print(f"wrote {args.out}")
    return 0
