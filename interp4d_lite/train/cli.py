"""Subcommands ``train-teacher``, ``train-baseline``, ``distill`` and ``evaluate`` of
``interp4d-lite`` (also ``python -m interp4d_lite.train`` for torchrun; ``interpolate`` is
registered by :mod:`interp4d_lite.interpolate`).

Wrong arguments raise :class:`~interp4d_lite.errors.CLIError` (one line, exit 2)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data import DATA_KINDS
from ..errors import CLIError
from .config import TrainConfig
from .recipes import RECIPES

__all__ = ["add_commands", "add_config_args", "config_from_args", "given_config_values"]


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


def _add_data_args(p: argparse.ArgumentParser, single_scan: bool = False) -> None:
    g = p.add_argument_group("data")
    src = g.add_mutually_exclusive_group(required=True) if single_scan else g
    src.add_argument(
        "--data",
        required=not single_scan,
        metavar="DIR",
        help="dataset root (ACDC or 4D-Lung layout; e.g. from `interp4d-lite phantom`)",
    )
    if single_scan:
        src.add_argument("--input", default=None, metavar="NII4D", help="one 4D NIfTI series instead (with --frames)")
        g.add_argument(
            "--frames", type=int, nargs=2, default=None, metavar=("I", "J"), help="--input's two input frames (0-based)"
        )
    g.add_argument(
        "--data-kind", choices=DATA_KINDS, default=None, help="data kind (default: detected from the layout)"
    )
    g.add_argument(
        "--volume-shape",
        type=int,
        nargs=3,
        metavar=("X", "Y", "Z"),
        default=None,
        help="crop/pad every volume to this grid (default: the data's preprocessing default)",
    )
    g.add_argument(
        "--split-seed", type=int, default=0, help="seed of the patient-level train/val/test split (default 0)"
    )


def add_config_args(
    p: argparse.ArgumentParser,
    cfg_cls,
    title: str = "training",
    only: Sequence[str] | None = None,
    unset: bool = False,
) -> None:
    """One flag per field of the config dataclass ``cfg_cls``: ``--field-name`` (or the
    field's ``metadata["flag"]``, the field name's flag then being an alias), its type and
    default from the field, its help from ``metadata["help"]``. Booleans get ``--name`` /
    ``--no-name``; tuples take their values in a row; ``metadata["off_flag"]`` adds a flag
    setting ``metadata["off"]``; fields with ``cli=False`` get none. ``only``: these fields
    alone (a script that sets a few knobs of a config it builds itself); ``unset``: every
    default ``None``, so :func:`given_config_values` returns only the flags given."""
    hints = typing.get_type_hints(cfg_cls)
    base = {f.name for f in dataclasses.fields(TrainConfig)} if only is None else set()
    shared = p.add_argument_group(title)
    own = None
    for f in dataclasses.fields(cfg_cls):
        meta = f.metadata
        if meta.get("cli", True) is False or (only is not None and f.name not in only):
            continue
        if f.name not in base and own is None:
            own = p.add_argument_group("loss weights and options of this model") if only is None else shared
        g = shared if f.name in base else own
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        natural = "--" + f.name.replace("_", "-")
        flags = [meta["flag"], natural] if meta.get("flag", natural) != natural else [natural]
        kw: dict[str, Any] = {"dest": f.name, "default": default, "help": meta.get("help", "")}
        hint = hints[f.name]
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(inner) == 1:
            hint = inner[0]  # X | None -> X
        if hint is bool:
            kw["action"] = argparse.BooleanOptionalAction
            kw["help"] += f" (default: {'on' if default else 'off'})"
        elif typing.get_origin(hint) is tuple:
            items = typing.get_args(hint)
            kw["type"] = items[0]
            kw["nargs"] = "*" if len(items) == 2 and items[1] is Ellipsis else len(items)
        elif hint is dict or typing.get_origin(hint) is dict:
            kw["type"], kw["default"] = str, None  # JSON text, parsed by config_from_args
        else:
            kw["type"] = hint
        for key in ("choices", "metavar"):
            if key in meta:
                kw[key] = meta[key]
        if default not in (None, {}, ()) and hint is not bool:
            shown = " ".join(str(v) for v in default) if isinstance(default, tuple) else default
            kw["help"] += f" (default: {shown})"
        if unset:
            kw["default"] = None
        g.add_argument(*flags, **kw)
        if "off_flag" in meta:
            g.add_argument(
                meta["off_flag"],
                dest=f.name,
                action="store_const",
                const=meta.get("off"),
                help=meta.get("off_help", f"set {f.name} to {meta.get('off')!r}"),
            )


def given_config_values(args: argparse.Namespace, only: Sequence[str]) -> dict[str, Any]:
    """``{field: value}`` of the flags of ``add_config_args(..., only=only, unset=True)`` that were
    given: ``cfg.replace(**given_config_values(args, only))`` applies them to a config."""
    return {k: getattr(args, k) for k in only if getattr(args, k, None) is not None}


def config_from_args(args: argparse.Namespace, cfg_cls, **overrides):
    """The config ``cfg_cls`` from the flags of :func:`add_config_args` (+ ``overrides``)."""
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(cfg_cls):
        if f.metadata.get("cli", True) is False or not hasattr(args, f.name):
            continue
        v = getattr(args, f.name)
        if isinstance(v, list):
            v = tuple(v)
        if f.name == "model":
            try:
                v = json.loads(v) if v else {}
            except json.JSONDecodeError as exc:
                raise CLIError(f"--model-config is not valid JSON: {exc}") from exc
            if not isinstance(v, dict):
                raise CLIError(f"--model-config must be a JSON object, got {type(v).__name__}")
        kw[f.name] = v
    kw.update(overrides)
    if kw["steps"] < 1 or kw["batch_size"] < 1:
        raise CLIError("--steps and --batch-size must be >= 1")
    if kw.get("crop_shape") is not None:
        kw["crop_shape"] = _shape(kw["crop_shape"])
    return cfg_cls(**kw)


def _add_train_args(p: argparse.ArgumentParser, cfg_cls) -> None:
    _add_data_args(p)
    g = p.add_argument_group("run")
    g.add_argument(
        "--out", default=None, metavar="DIR", help="run folder for the checkpoint and history (default runs/<command>)"
    )
    g.add_argument("--no-resume", action="store_true", help="start afresh even if the run folder holds a checkpoint")
    g.add_argument(
        "--stop-at", type=int, default=None, help="stop after this step (as an interruption would; resume later)"
    )
    add_config_args(p, cfg_cls)


def _report(name, model, history, out_dir):
    from .distributed import is_main

    if is_main():
        last = history[-1] if history else {}
        loss = f"loss {last.get('loss', float('nan')):.4f} at step {last.get('step', 0)}" if last else "no steps run"
        print(f"{name}: {loss}; checkpoint in {out_dir}")


def _run_train(args, recipe_name: str) -> int:
    from .loops import fit
    from .recipes import get_recipe

    recipe = get_recipe(recipe_name)
    from ..io_utils import check_output_path

    data = _check_data(args.data)
    out = check_output_path(args.out or f"runs/{args.command}", suffixes=None)
    cfg = config_from_args(args, recipe.config_cls)
    if any(getattr(cfg, t.weight) < 0 for t in recipe.terms):
        raise CLIError("loss weights must be >= 0")
    teacher = None
    if recipe.needs_teacher(cfg):
        if args.teacher is None:
            raise CLIError(f"{args.command} needs --teacher CHECKPOINT (or set the distillation weights to 0)")
        if not Path(args.teacher).exists():
            raise CLIError(f"{args.teacher}: teacher checkpoint not found")
        teacher = args.teacher
    elif recipe.targets == "teacher":
        recipe = get_recipe(recipe.name + "_nokd")  # every distillation weight 0: the ablation
    name = getattr(args, "name", None) or recipe.checkpoint
    model, hist = fit(
        recipe, None, cfg, teacher=teacher, data_root=data, data_kind=args.data_kind,
        volume_shape=_shape(args.volume_shape), split_seed=args.split_seed, out_dir=out, checkpoint_name=name,
        resume=not args.no_resume, stop_at=args.stop_at,
    )  # fmt: skip
    _report(args.command, model, hist, out / name)
    return 0


def _evaluation_patients(args) -> tuple[list, str]:
    """The patients ``evaluate`` scores: one series (``--input``, ``--frames``) or the chosen part
    of a data root's split; and the data set's name."""
    from .datasets import resolve_patients

    if args.input is not None:
        from ..data.io import load_series
        from ..io_utils import check_frames

        i, j = sorted(check_frames(args.frames))
        if j - i < 2:
            raise CLIError(
                f"--frames {args.frames[0]} {args.frames[1]}: no frame lies between I and J to score the methods on; "
                "give two frames with at least one frame between them"
            )
        shape = _shape(args.volume_shape) or "native"
        return [load_series(args.input, (i, j), data_kind=args.data_kind, volume_shape=shape)], Path(args.input).name
    data = _check_data(args.data)
    patients, _ = resolve_patients(
        None, data, data_kind=args.data_kind, volume_shape=_shape(args.volume_shape), split_seed=args.split_seed,
        part=args.part,
    )  # fmt: skip
    if not patients:
        raise CLIError(f"{data}: the {args.part!r} part of the split holds no patients")
    return patients, data.name


def _run_evaluate(args) -> int:
    from ..io_utils import check_output_path
    from ..models.checkpoint import load_model
    from ..weights import resolve_checkpoint
    from .evaluate import classical_methods, evaluate_methods, format_summary, summarize

    out = check_output_path(args.out or "runs/evaluate", suffixes=None)
    patients, name = _evaluation_patients(args)
    if args.registered_steps < 0:
        raise CLIError(f"--registered-steps must be >= 0, got {args.registered_steps}")
    methods = classical_methods(args.registered_steps)
    for recipe in RECIPES.values():
        path = getattr(args, recipe.name, None)
        if path is not None:
            if recipe.model_kind == "student":
                path = resolve_checkpoint(path)  # a pretrained name (cardiac, lung) or a path
            model, _ = load_model(path, device=args.device, model_kind=recipe.model_kind)
            methods[recipe.method] = recipe.as_method(model) if recipe.as_method else model
    if any(getattr(p, "u_t0", None) is not None for p in patients):
        methods["true_fields"] = "true_fields"
    rows = evaluate_methods(methods, patients, device=args.device, out_dir=out, dataset=args.dataset_name or name)
    print(format_summary(summarize(rows)))
    print(f"per-frame metrics and summary written to {out}")
    return 0


def add_commands(subparsers) -> None:
    """Register the training commands (one per recipe with a command) and ``evaluate``."""
    _add_training_commands(subparsers)
    _add_evaluate_command(subparsers)


def _add_training_commands(subparsers) -> None:
    for recipe in RECIPES.values():
        if recipe.command is None:
            continue
        p = subparsers.add_parser(
            recipe.command,
            help=f"train {recipe.description}",
            description=f"{recipe.help or 'Train ' + recipe.description + '.'} Writes OUT/{recipe.checkpoint} and "
            "its history; resumes from it if present.",
        )
        _add_train_args(p, recipe.config_cls)
        p.set_defaults(func=lambda a, name=recipe.name: _run_train(a, name))
        if recipe.targets == "teacher":
            g = p.add_argument_group("distillation")
            g.add_argument("--teacher", default=None, metavar="CKPT", help="teacher checkpoint (from train-teacher)")
            g.add_argument("--name", default=None, help="checkpoint file name in OUT (default: the recipe's)")


def _add_evaluate_command(subparsers) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = subparsers.add_parser(
        "evaluate",
        help="compare every method on held-out patients (PSNR, NCC, SSIM, NMSE, EPE, folding)",
        description="Evaluate linear blend and every given checkpoint (and, for phantoms, the true fields) on every "
        "intermediate frame of the test patients. Writes OUT/metrics.{json,csv} (per frame) and "
        "OUT/summary.{json,csv} (per method: mean over frames, at mid-cycle t, and per t).",
        formatter_class=fmt,
    )
    _add_data_args(p, single_scan=True)
    p.add_argument("--part", choices=["train", "val", "test"], default="test", help="which part of the patient split")
    p.add_argument(
        "--registered-steps",
        type=int,
        default=60,
        metavar="N",
        help="Adam steps of registered_linear_motion (the inputs registered to each other, no network); 0 = leave it out",
    )
    for recipe in RECIPES.values():
        flag = "--" + recipe.name.replace("_", "-")
        name = " or a pretrained name (cardiac, lung)" if recipe.model_kind == "student" else ""
        p.add_argument(
            flag, dest=recipe.name, default=None, metavar="CKPT", help=f"checkpoint of {recipe.description}{name}"
        )
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default runs/evaluate)")
    p.add_argument("--dataset-name", default=None, help="name of the data set in the table (default: folder name)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_run_evaluate)
