"""The training loop: one :func:`fit` for every recipe of :mod:`interp4d_lite.train.recipes`.

:func:`fit` prepares a run from its recipe (patients, the frozen teacher when distilling, the
targets cached once per sample, the model) and hands it to :func:`train_loop`, which does the
bookkeeping -- device, DDP, mixed precision, (seed, step)-derived data order and augmentation,
progress bar, history, atomic checkpoints and exact resume -- in four parts that each read in
one screen: restore, step, record, finish. ``train_teacher``, ``train_baseline`` and
``distill_student`` are thin wrappers for the notebooks.

Every entry takes either a list of :class:`~interp4d_lite.data.Patient4D` (all used for
training) or a ``data_root`` (patients split with ``split_patients``; the training part is used,
the split goes into the checkpoint), and returns ``(model, history)`` with ``history`` a list of
dicts: the step, the weighted loss, every unweighted term by name, the learning rate and time.
"""

from __future__ import annotations

import gc
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..device import seed_everything
from ..io_utils import atomic_write_json
from ..models import build_model
from ..models.checkpoint import get_rng_state, load_checkpoint, load_model, save_checkpoint, set_rng_state
from .config import BaselineTrainConfig, DistillConfig, TeacherTrainConfig, TrainConfig, warn_other_settings
from .datasets import CachedTargets, PairDataset, compute_targets, resolve_patients
from .distributed import DistEnv, all_reduce_mean, barrier, gather_weight_hashes, init_distributed
from .history import save_history
from .recipes import Recipe, get_recipe, teacher_output, training_step
from .sampling import StepSampler, augment_sample, collate, step_rng, to_device

__all__ = [
    "fit",
    "with_targets",
    "train_loop",
    "train_teacher",
    "train_baseline",
    "distill_student",
    "resolve_patients",
    "PairDataset",
    "CachedTargets",
    "compute_targets",
]


# ---------------------------------------------------------------------- generic loop
def _autocast(cfg: TrainConfig, device: torch.device):
    if cfg.precision in (None, "", "fp32"):
        return nullcontext(), None
    if cfg.precision not in ("bf16", "fp16"):
        raise ValueError(f"precision must be 'fp32', 'bf16' or 'fp16', not {cfg.precision!r}")
    if device.type == "cpu" and cfg.precision == "bf16":
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16), None
    if device.type != "cuda":
        warnings.warn(
            f"precision={cfg.precision!r} is only used on CUDA; training in fp32 on {device.type}", stacklevel=3
        )
        return nullcontext(), None
    dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.precision == "fp16")
    return torch.autocast(device_type="cuda", dtype=dtype), scaler


def _memory_format(cfg: TrainConfig, device: torch.device) -> torch.memory_format:
    """Channels-last (3D) on CPU when ``cfg.channels_last`` (oneDNN's 3D convolutions and their
    backward are faster so), else the default layout. Not under bf16 autocast: there oneDNN's
    channels-last weight gradients come out wrong on grids of a few voxels (by 1e13 on a 2x2x1
    level; torch 2.13), and the run stops learning."""
    if getattr(cfg, "channels_last", False) and device.type == "cpu" and cfg.precision != "bf16":
        return torch.channels_last_3d
    return torch.contiguous_format


def _cosine(cfg: TrainConfig) -> Callable[[int], float]:
    lo = float(cfg.lr_final_fraction)
    n = max(1, int(cfg.steps))

    def f(step: int) -> float:
        return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * min(step, n) / n))

    return f


@dataclass
class _Run:
    """The mutable state of one run: what :func:`train_loop`'s parts share."""

    model: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    scaler: object
    amp_ctx: object
    start: int = 0
    history: list = field(default_factory=list)
    split: dict | None = None
    t0: float = field(default_factory=time.perf_counter)


def _restore(run: _Run, ckpt_path: Path | None, model_kind: str, device, cfg: TrainConfig) -> None:
    """Continue from ``ckpt_path`` when it exists: weights, optimiser, LR schedule, scaler,
    RNG, history and split. A checkpoint made with other settings is continued with a warning
    that names them."""
    if ckpt_path is None or not ckpt_path.exists():
        return
    ck = load_checkpoint(ckpt_path, model_kind=model_kind, map_location=device)
    warn_other_settings(
        ckpt_path,
        cfg,
        ck.get("train_config"),
        "continuing a run",
        "another output folder (or resume=False) trains anew",
    )
    run.model.load_state_dict(ck["model_state"])
    for obj, key in ((run.opt, "optimizer"), (run.sched, "scheduler")):
        if ck.get(key):
            obj.load_state_dict(ck[key])
    if run.scaler is not None and ck.get("scaler"):
        run.scaler.load_state_dict(ck["scaler"])
    if ck.get("rng"):
        set_rng_state(ck["rng"])
    run.start = int(ck["step"])
    run.history = list(ck.get("history") or [])
    if run.split is None:
        run.split = ck.get("split")


def _step(run: _Run, net: nn.Module, batch: dict, step_fn, cfg: TrainConfig) -> tuple[torch.Tensor, dict]:
    """One optimiser step: the loss and its parts, backward, clipping, step, schedule."""
    with run.amp_ctx:
        loss, parts = step_fn(net, batch)
    run.opt.zero_grad(set_to_none=True)
    scaled = run.scaler is not None and run.scaler.is_enabled()
    if scaled:
        run.scaler.scale(loss).backward()
        run.scaler.unscale_(run.opt)
    else:
        loss.backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
    if scaled:
        run.scaler.step(run.opt)
        run.scaler.update()
    else:
        run.opt.step()
    run.sched.step()
    return loss, parts


def _record(run: _Run, done: int, end: int, loss, parts: dict, cfg: TrainConfig, device) -> dict:
    """The step's record; every ``log_every`` steps (and at the end) averaged over ranks and
    appended to the history."""
    rec = {"loss": float(loss.detach()), **parts}
    if done % max(1, cfg.log_every) == 0 or done == cfg.steps or done == end:
        rec = all_reduce_mean(rec, device)
        run.history.append(
            {
                "step": done,
                **{k: round(v, 6) for k, v in rec.items()},
                "lr": run.sched.get_last_lr()[0],
                "time_s": round(time.perf_counter() - run.t0, 3),
            }
        )
    return rec


def _wrap(model: nn.Module, env: DistEnv) -> nn.Module:
    """The model as the steps call it: DDP-wrapped in a distributed run."""
    if not env.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[env.device.index] if env.device.type == "cuda" else None)


def _batch(dataset, sampler: StepSampler, step: int, cfg: TrainConfig, env: DistEnv) -> dict:
    """Step ``step``'s batch on the device: the sampler's items, each cropped and flipped by
    its own (seed, step, rank, position) generator; volumes in the run's memory format; and
    ``"progress"``, ``step / cfg.steps`` (the scheduled loss weights', recipes.weight_schedule)."""
    samples = [
        augment_sample(dataset[i], step_rng(cfg.seed, step, env.rank, j), cfg.crop_shape, cfg.flip_axes)
        for j, i in enumerate(sampler.indices(step))
    ]
    batch = to_device(collate(samples), env.device)
    layout = _memory_format(cfg, env.device)
    if layout != torch.contiguous_format:
        batch = {k: v.contiguous(memory_format=layout) if torch.is_tensor(v) and v.dim() == 5 else v
                 for k, v in batch.items()}  # fmt: skip
    batch["progress"] = step / max(1, int(cfg.steps))
    return batch


def _progress(cfg: TrainConfig, env: DistEnv, start: int, end: int, desc: str):
    """A tqdm bar on rank 0 when there are steps to run (``None`` otherwise)."""
    if not (cfg.progress and env.is_main and end > start):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.steps, initial=start, desc=desc, leave=False, dynamic_ncols=True)


def _save(run: _Run, path: Path, step: int, model_kind: str, model_config: dict, cfg: TrainConfig, extra) -> None:
    """The checkpoint (atomic) and its ``_history.json``."""
    save_checkpoint(
        path, model_kind=model_kind, model=run.model, model_config=model_config, step=step, train_config=cfg.to_dict(),
        optimizer=run.opt, scheduler=run.sched, scaler=run.scaler, split=run.split, history=run.history,
        extra=extra, rng=get_rng_state(),
    )  # fmt: skip
    save_history(run.history, path.with_name(path.stem + "_history.json"))


def _finish(run: _Run, net: nn.Module, env: DistEnv, ckpt_path: Path | None) -> None:
    """Under DDP: record the replicas' weight hashes and free the wrapper while the process
    group is alive."""
    if not env.distributed:
        return
    hashes = gather_weight_hashes(run.model)
    if env.is_main and ckpt_path is not None:
        atomic_write_json(
            ckpt_path.with_name(ckpt_path.stem + "_replicas.json"),
            {"world_size": env.world_size, "backend": env.backend, "weight_hashes": hashes},
            indent=1,
        )
    # a DDP wrapper sits in reference cycles: only the garbage collector frees it, possibly
    # after destroy_process_group() or during interpreter shutdown, where its reducer's
    # teardown can abort the process; free it now
    del net
    gc.collect()
    barrier()


def train_loop(
    *,
    model_kind: str,
    model: nn.Module,
    model_config: dict,
    dataset: torch.utils.data.Dataset,
    step_fn: Callable[[nn.Module, dict], tuple[torch.Tensor, dict]],
    cfg: TrainConfig,
    env: DistEnv,
    checkpoint_path: str | os.PathLike | None = None,
    resume: bool = True,
    stop_at: int | None = None,
    split: dict | None = None,
    extra: dict | None = None,
    desc: str = "train",
    deadline: float | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Run ``cfg.steps`` optimiser steps of ``step_fn(net, batch) -> (loss, parts)``.

    * Data: step ``s`` uses :class:`StepSampler` indices and ``step_rng(seed, s, rank, j)``
      augmentation -- a function of (seed, step) only, so resuming is exact.
    * ``resume=True`` and an existing ``checkpoint_path``: continue from it (weights,
      optimiser, LR schedule, scaler, RNG, history).
    * ``stop_at``: stop after that step as an interruption would (checkpoint written);
      a later call with ``resume=True`` finishes the run. Ctrl-C also checkpoints.
    * ``deadline`` (a ``time.perf_counter()`` value): stop after the step that passes it, as
      ``stop_at`` would (the time budget of ``cfg.minutes``).
    * Under DDP only rank 0 writes; all ranks return the same weights.
    """
    device = env.device
    model.to(device)
    model.to(memory_format=_memory_format(cfg, device))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)
    amp_ctx, scaler = _autocast(cfg, device)
    run = _Run(model, opt, torch.optim.lr_scheduler.LambdaLR(opt, _cosine(cfg)), scaler, amp_ctx, split=split)
    ckpt_path = Path(checkpoint_path) if checkpoint_path is not None else None
    if resume:
        _restore(run, ckpt_path, model_kind, device, cfg)
    net = _wrap(model, env)
    sampler = StepSampler(len(dataset), cfg.batch_size, seed=cfg.seed, rank=env.rank, world_size=env.world_size)
    end = cfg.steps if stop_at is None else min(cfg.steps, int(stop_at))

    def save(step: int) -> None:
        if ckpt_path is not None and env.is_main:
            _save(run, ckpt_path, step, model_kind, model_config, cfg, extra)

    bar = _progress(cfg, env, run.start, end, desc)
    model.train()
    step = run.start
    try:
        for step in range(run.start, end):
            loss, parts = _step(run, net, _batch(dataset, sampler, step, cfg, env), step_fn, cfg)
            done = step + 1
            if deadline is not None and time.perf_counter() >= deadline:
                end = done  # the time budget is spent: this is the last step
            rec = _record(run, done, end, loss, parts, cfg, device)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.4f}" for k, v in rec.items()}, refresh=False)
            if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < end:
                save(done)
            step = done
            if done >= end:
                break
    except KeyboardInterrupt:
        save(step)
        raise
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    model.to(memory_format=torch.contiguous_format)  # the trained model in the default layout
    if end > run.start or (ckpt_path is not None and not ckpt_path.exists()):
        save(end)
    _finish(run, net, env, ckpt_path)
    return model, run.history


# ---------------------------------------------------------------------- one entry per recipe
def _frozen_teacher(recipe: Recipe, cfg: TrainConfig, teacher, device) -> tuple[nn.Module | None, TrainConfig]:
    """The frozen teacher a run needs (``None`` when it needs none), loaded when ``teacher`` is a
    checkpoint path (recorded in the config as ``teacher_checkpoint``)."""
    if not recipe.needs_teacher(cfg):
        return None, cfg
    if teacher is None:
        raise ValueError(
            f"recipe {recipe.name!r} with these weights distils from a teacher: pass teacher= (a model or checkpoint)"
        )
    if isinstance(teacher, (str, os.PathLike)):
        cfg = cfg.replace(teacher_checkpoint=str(teacher))
        teacher, _ = load_model(teacher, device=device, model_kind="teacher")
    teacher = teacher.to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher, cfg


def _targets_fn(recipe: Recipe, cfg: TrainConfig, teacher: nn.Module | None):
    """``(fn(batch) -> tensors, channels, description)`` of the targets this run caches, or ``None``."""
    which = recipe.cached_targets(cfg, teacher)
    if which == "registration":
        from ..models.registration import register_to_frame

        def register(b):
            return register_to_frame(
                b["I0"], b["I1"], b["It"], steps=cfg.target_steps, smooth=cfg.target_smooth, lr=cfg.target_lr
            )

        return register, 6, "registration targets"
    if which == "teacher":
        with_image = bool(cfg.teacher_better)

        def fields(b):
            out = teacher_output(teacher, b, cfg.distill_refined)
            return (out["u_t0"], out["u_t1"], out["image"]) if with_image else (out["u_t0"], out["u_t1"])

        return fields, 7 if with_image else 6, "teacher targets"
    return None


def _with_targets(recipe: Recipe, cfg: TrainConfig, tnet, dataset, device, progress: bool):
    targets = _targets_fn(recipe, cfg, tnet)
    if targets is None or getattr(dataset, "has_targets", False):  # a dataset may bring its own
        return dataset
    if hasattr(dataset, "with_parts"):  # a mixture (data.MixedTriplets): once per item of each part
        return dataset.with_parts(lambda part: _with_targets(recipe, cfg, tnet, part, device, progress))
    fn, channels, desc = targets
    cached = compute_targets(fn, dataset, device, desc=desc, progress=progress, channels=channels)
    return CachedTargets(dataset, cached)


def with_targets(recipe: Recipe | str, dataset, config: TrainConfig | None = None, *, teacher=None, device="cpu"):
    """``dataset`` with the targets ``recipe`` caches (a :class:`CachedTargets`), computed once, e.g.
    to train several students on the same teacher targets (``fit(..., dataset=...)``); the dataset
    itself when the recipe caches none. ``teacher`` as for :func:`fit`."""
    recipe = get_recipe(recipe)
    cfg = recipe.config(config)
    tnet, cfg = _frozen_teacher(recipe, cfg, teacher, device)
    return _with_targets(recipe, cfg, tnet, dataset, device, cfg.progress)


def fit(
    recipe: Recipe | str,
    patients: Sequence | None = None,
    config: TrainConfig | None = None,
    *,
    teacher: nn.Module | str | os.PathLike | None = None,
    data_root=None,
    data_kind: str | None = None,
    volume_shape=None,
    split_seed: int = 0,
    out_dir=None,
    checkpoint_name: str | None = None,
    resume: bool = True,
    stop_at: int | None = None,
    dataset: torch.utils.data.Dataset | None = None,
    model: nn.Module | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Train the method of ``recipe`` (a :class:`~interp4d_lite.train.recipes.Recipe` or its
    name in the table); returns ``(model, history)``.

    Writes ``out_dir/<checkpoint>`` (the recipe's name unless ``checkpoint_name``) and its
    ``_history.json`` when ``out_dir`` is given, resuming a partial run there. ``dataset``
    replaces the dataset built from the patients (items as :class:`~interp4d_lite.data.TripletDataset`'s;
    one whose ``has_targets`` is true, as :class:`CachedTargets`, carries the targets the recipe needs,
    which are then not computed);
    ``model`` is trained instead of a new one (fine-tuning: its weights are the start). A
    ``config.minutes`` budget covers the cached targets and the steps together.
    """
    started = time.perf_counter()
    recipe = get_recipe(recipe)
    cfg = recipe.config(config)
    env = init_distributed(cfg.device)
    seed_everything(cfg.seed, deterministic=cfg.deterministic)  # same seed on every rank: same init
    split = None
    if dataset is None:
        chosen, split = resolve_patients(
            patients, data_root, data_kind=data_kind, volume_shape=volume_shape, split_seed=split_seed
        )
        if not chosen:
            raise ValueError("no training patients")
        if recipe.data == "pairs":
            dataset = PairDataset(chosen)
        else:
            from ..data import TripletDataset

            dataset = TripletDataset(chosen)
    if model is None:
        model = build_model(recipe.model_kind, cfg.model)  # right after the seed: the same init on every rank
    tnet, cfg = _frozen_teacher(recipe, cfg, teacher, env.device)
    dataset = _with_targets(recipe, cfg, tnet, dataset, env.device, cfg.progress and env.is_main)

    def step_fn(net, batch):
        return training_step(recipe, net, batch, cfg, tnet)

    extra = {"recipe": recipe.name}
    if hasattr(cfg, "distill_weight"):
        extra["distill_weight"] = cfg.distill_weight
    return train_loop(
        model_kind=recipe.model_kind,
        model=model,
        model_config=model.config.to_dict(),
        dataset=dataset,
        step_fn=step_fn,
        cfg=cfg,
        env=env,
        checkpoint_path=Path(out_dir) / (checkpoint_name or recipe.checkpoint) if out_dir is not None else None,
        resume=resume,
        stop_at=stop_at,
        split=split,
        extra=extra,
        desc=recipe.name,
        deadline=started + 60 * cfg.minutes if cfg.minutes else None,
    )


# ---------------------------------------------------------------------- thin wrappers for the notebooks
def train_teacher(patients: Sequence | None = None, config: TeacherTrainConfig | None = None, **kw):
    """Train the privileged teacher on (I0, I1, I_t) triplets: ``fit("teacher", ...)``.
    Returns ``(teacher, history)``; keywords as :func:`fit`'s."""
    return fit("teacher", patients, config, **kw)


def train_baseline(patients: Sequence | None = None, config: BaselineTrainConfig | None = None, **kw):
    """Train the registration net of the linear-motion baseline on (I0, I1) pairs only:
    ``fit("baseline", ...)``. Wrap the result in ``LinearMotionBaseline`` to interpolate."""
    return fit("baseline", patients, config, **kw)


def distill_student(patients: Sequence | None = None, teacher=None, config: DistillConfig | None = None, **kw):
    """Train the student (sees I0, I1, t): image loss on I_t plus distillation of the frozen
    ``teacher``'s fields (a model or a teacher checkpoint path). With ``distill_weight = 0`` and
    ``feature_weight = 0`` this is the ablation (``fit("student_nokd", ...)``; no teacher needed),
    saved as the recipe's ``student_nokd.pt`` as the ``distill`` command and ``ensure_checkpoint``
    name it (``checkpoint_name`` overrides)."""
    cfg = config or DistillConfig()
    recipe = "student" if get_recipe("student").needs_teacher(cfg) else "student_nokd"
    return fit(recipe, patients, cfg, teacher=teacher, **kw)
