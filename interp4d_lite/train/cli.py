"""Subcommands ``train-teacher``, ``train-baseline``, ``distill``, ``evaluate`` and
``interpolate`` of ``interp4d-lite`` (also ``python -m interp4d_lite.train`` for torchrun).

Wrong arguments raise :class:`~interp4d_lite.errors.CLIError` (one line, exit 2)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import CLIError

__all__ = ["add_commands"]


def _shape(values):
    if values is None:
        return None
    if len(values) != 3 or any(v < 1 for v in values):
        raise CLIError(f"a shape needs three positive integers X Y Z, got {values}")
    return tuple(values)


def _check_data(path) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise CLIError(f"{p}: data directory not found")
    return p


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", required=True, metavar="DIR", help="dataset root (ACDC or 4D-Lung layout; e.g. from `interp4d-lite phantom`)")
    g.add_argument("--kind", choices=["cardiac", "lung", "linear"], default=None, help="data kind (default: detected from the layout)")
    g.add_argument("--volume-shape", type=int, nargs=3, metavar=("X", "Y", "Z"), default=None,
                   help="crop/pad every volume to this grid (default: the data's preprocessing default)")
    g.add_argument("--split-seed", type=int, default=0, help="seed of the patient-level train/val/test split (default 0)")


def _add_train_args(p: argparse.ArgumentParser, cfg_cls) -> None:
    d = cfg_cls()
    _add_data_args(p)
    g = p.add_argument_group("training")
    g.add_argument("--out", default=None, metavar="DIR", help="run folder for the checkpoint and history (default runs/<command>)")
    g.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps (default {d.steps})")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help=f"samples per step and process (default {d.batch_size})")
    g.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate, cosine-decayed (default {d.lr})")
    g.add_argument("--crop", type=int, nargs=3, metavar=("X", "Y", "Z"), default=None, help="random crop size (default: whole volume)")
    g.add_argument("--no-flip", action="store_true", help="no random flips (flips negate the matching field channel)")
    g.add_argument("--seed", type=int, default=d.seed, help="seed of init, data order and augmentation (default 0)")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    g.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32", help="mixed precision on CUDA (ignored with a warning on CPU)")
    g.add_argument("--deterministic", action="store_true", help="deterministic kernels (slower on CUDA)")
    g.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints (default 50; 0 = only at the end)")
    g.add_argument("--log-every", type=int, default=d.log_every, help="steps between history records")
    g.add_argument("--no-resume", action="store_true", help="start afresh even if the run folder holds a checkpoint")
    g.add_argument("--stop-at", type=int, default=None, help="stop after this step (as an interruption would; resume later)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--model-config", default=None, metavar="JSON", help="model config overrides as JSON, e.g. '{\"decoder_channels\": [16, 16, 8]}'")


def _train_cfg(args, cfg_cls, **extra):
    if args.steps < 1 or args.batch_size < 1:
        raise CLIError("--steps and --batch-size must be >= 1")
    model = {}
    if args.model_config:
        try:
            model = json.loads(args.model_config)
        except json.JSONDecodeError as exc:
            raise CLIError(f"--model-config is not valid JSON: {exc}") from exc
    return cfg_cls(steps=args.steps, batch_size=args.batch_size, lr=args.lr, crop_shape=_shape(args.crop),
                   flip_axes=() if args.no_flip else (0, 1, 2), seed=args.seed, device=args.device,
                   precision=args.precision, deterministic=args.deterministic, log_every=args.log_every,
                   checkpoint_every=args.checkpoint_every, progress=not args.no_progress, model=model, **extra)


def _report(name, model, history, out_dir):
    from .distributed import is_main

    if is_main():
        last = history[-1] if history else {}
        loss = f"loss {last.get('loss', float('nan')):.4f} at step {last.get('step', 0)}" if last else "no steps run"
        print(f"{name}: {loss}; checkpoint in {out_dir}")


def _run_train(args, which: str) -> int:
    from .config import BaselineTrainConfig, DistillConfig, TeacherTrainConfig
    from .loops import distill_student, train_baseline, train_teacher

    data = _check_data(args.data)
    out = Path(args.out or f"runs/{args.command}")
    common = dict(data_root=data, kind=args.kind, volume_shape=_shape(args.volume_shape), split_seed=args.split_seed,
                  out_dir=out, resume=not args.no_resume, stop_at=args.stop_at)
    if which == "teacher":
        model, hist = train_teacher(None, _train_cfg(args, TeacherTrainConfig), **common)
        name = "teacher.pt"
    elif which == "baseline":
        model, hist = train_baseline(None, _train_cfg(args, BaselineTrainConfig), **common)
        name = "baseline.pt"
    else:
        cfg = _train_cfg(args, DistillConfig, distill_weight=args.distill_weight, feature_weight=args.feature_weight,
                         teacher_better=not args.no_teacher_better)
        if cfg.distill_weight < 0 or cfg.feature_weight < 0:
            raise CLIError("--distill-weight and --feature-weight must be >= 0")
        teacher = None
        if cfg.distill_weight or cfg.feature_weight:
            if args.teacher is None:
                raise CLIError("distill needs --teacher CHECKPOINT (or --distill-weight 0 --feature-weight 0 for the ablation)")
            if not Path(args.teacher).exists():
                raise CLIError(f"{args.teacher}: teacher checkpoint not found")
            teacher = args.teacher
        name = args.name or ("student.pt" if cfg.distill_weight else "student_nokd.pt")
        model, hist = distill_student(None, teacher, cfg, checkpoint_name=name, **common)
    _report(args.command, model, hist, out / name)
    return 0


def _run_evaluate(args) -> int:
    from ..models import LinearMotionBaseline
    from .checkpoint import load_model
    from .evaluate import evaluate_methods, format_summary, summarize
    from .loops import resolve_patients

    data = _check_data(args.data)
    methods = {"linear_blend": "linear_blend"}
    for flag, kind, name in ((args.baseline, "registration", "linear_motion"), (args.teacher, "teacher", "teacher"),
                             (args.student, "student", "student"), (args.student_nokd, "student", "student_nokd")):
        if flag is not None:
            model, _ = load_model(flag, device=args.device, expected_kind=kind)
            methods[name] = LinearMotionBaseline(model) if kind == "registration" else model
    patients, _ = resolve_patients(None, data, kind=args.kind, volume_shape=_shape(args.volume_shape),
                                   split_seed=args.split_seed, part=args.part)
    if not patients:
        raise CLIError(f"{data}: the {args.part!r} part of the split holds no patients")
    if any(getattr(p, "u_t0", None) is not None for p in patients):
        methods["true_fields"] = "true_fields"
    out = Path(args.out or "runs/evaluate")
    rows = evaluate_methods(methods, patients, device=args.device, out_dir=out, dataset=args.dataset_name or data.name)
    print(format_summary(summarize(rows)))
    print(f"per-frame metrics and summary written to {out}")
    return 0


def _run_interpolate(args) -> int:
    from ..interpolate import interpolate_files

    if not Path(args.checkpoint).exists():
        raise CLIError(f"{args.checkpoint}: checkpoint not found")
    if args.n is None and args.times is None:
        raise CLIError("give --times T [T ...] or --n N")
    path = interpolate_files(args.checkpoint, args.out, input_4d=args.input, frames=args.frames, inputs=args.inputs,
                             times=args.times, n=args.n, device=args.device)
    print(f"wrote {path}")
    return 0


def add_commands(subparsers) -> None:
    from .config import BaselineTrainConfig, DistillConfig, TeacherTrainConfig

    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = subparsers.add_parser(
        "train-teacher", help="train the privileged teacher (sees I0, I1 and the true I_t)",
        description="Train the privileged teacher on (I0, I1, I_t) triplets of the training patients: "
        "Charbonnier + local NCC of its output (and of each warped input) against the true I_t, plus smoothness. "
        "Writes OUT/teacher.pt and OUT/teacher_history.json; resumes from OUT/teacher.pt if present.")
    _add_train_args(p, TeacherTrainConfig)
    p.set_defaults(func=lambda a: _run_train(a, "teacher"))

    p = subparsers.add_parser(
        "train-baseline", help="train the linear-motion baseline's registration net on (I0, I1) pairs",
        description="Train the bidirectional registration network of the linear-motion (UVI-Net-style) baseline on "
        "(I0, I1) pairs only -- no intermediate frames: warp(I1,u_01)~I0, warp(I0,u_10)~I1, plus smoothness. "
        "At inference u_t0 = t u_10, u_t1 = (1-t) u_01. Writes OUT/baseline.pt.")
    _add_train_args(p, BaselineTrainConfig)
    p.set_defaults(func=lambda a: _run_train(a, "baseline"))

    p = subparsers.add_parser(
        "distill", help="train the student (I0, I1, t) with knowledge distillation from a teacher",
        description="Train the student, which sees only I0, I1 and t: image loss against I_t + "
        "DISTILL_WEIGHT x field distillation from the frozen teacher (weighted toward voxels where the teacher "
        "is better) + smoothness. --distill-weight 0 is the ablation (no teacher needed). Writes OUT/student.pt "
        "(or OUT/student_nokd.pt for the ablation).")
    _add_train_args(p, DistillConfig)
    g = p.add_argument_group("distillation")
    g.add_argument("--teacher", default=None, metavar="CKPT", help="teacher checkpoint (from train-teacher)")
    g.add_argument("--distill-weight", type=float, default=DistillConfig().distill_weight, help="weight of field distillation; 0 = ablation")
    g.add_argument("--feature-weight", type=float, default=DistillConfig().feature_weight, help="weight of decoder-feature distillation")
    g.add_argument("--no-teacher-better", action="store_true", help="distil everywhere, not only where the teacher beats the student")
    g.add_argument("--name", default=None, help="checkpoint file name in OUT (default student.pt / student_nokd.pt)")
    p.set_defaults(func=lambda a: _run_train(a, "distill"))

    p = subparsers.add_parser(
        "evaluate", help="compare every method on held-out patients (PSNR, NCC, SSIM, NMSE, EPE, folding)",
        description="Evaluate linear blend and every given checkpoint (and, for phantoms, the true fields) on every "
        "intermediate frame of the test patients. Writes OUT/metrics.{json,csv} (per frame) and "
        "OUT/summary.{json,csv} (per method: mean over frames, at mid-cycle t, and per t).", formatter_class=fmt)
    _add_data_args(p)
    p.add_argument("--part", choices=["train", "val", "test"], default="test", help="which part of the patient split")
    p.add_argument("--baseline", default=None, metavar="CKPT", help="registration checkpoint (train-baseline)")
    p.add_argument("--teacher", default=None, metavar="CKPT", help="teacher checkpoint (privileged: sees I_t)")
    p.add_argument("--student", default=None, metavar="CKPT", help="student checkpoint (distill)")
    p.add_argument("--student-nokd", default=None, metavar="CKPT", help="student trained without distillation")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default runs/evaluate)")
    p.add_argument("--dataset-name", default=None, help="name of the data set in the table (default: folder name)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_run_evaluate)

    p = subparsers.add_parser(
        "interpolate", help="write interpolated frames between two volumes with a student checkpoint",
        description="Interpolate frames at the given timestamps between two volumes -- two frames of a 4D NIfTI "
        "(--input, --frames) or two 3D NIfTI files (--inputs) -- and write them as one 4D NIfTI on the input's own "
        "grid and affine. Each input is min-max normalised, the student runs on the native grid (padding internally "
        "to its multiple and cropping back, no resampling) and the output is mapped back to the inputs' intensity "
        "range (interpolated linearly in t).", formatter_class=fmt)
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="student checkpoint (from distill)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", default=None, metavar="NII4D", help="a 4D NIfTI (X, Y, Z, T)")
    src.add_argument("--inputs", nargs=2, default=None, metavar=("NII0", "NII1"), help="two 3D NIfTI files on one grid")
    p.add_argument("--frames", type=int, nargs=2, default=None, metavar=("I", "J"), help="0-based frame indices of --input")
    tg = p.add_mutually_exclusive_group()
    tg.add_argument("--times", type=float, nargs="+", default=None, metavar="T", help="timestamps in [0, 1], e.g. 0.25 0.5 0.75")
    tg.add_argument("--n", type=int, default=None, help="N evenly spaced timestamps strictly between 0 and 1")
    p.add_argument("--out", required=True, metavar="NII", help="output 4D NIfTI (X, Y, Z, N)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_run_interpolate)
