"""Training loops: teacher, linear-motion baseline (registration on pairs) and the
distilled student. One generic loop (:func:`fit`) does the bookkeeping -- device,
DDP, mixed precision, (seed, step)-derived data order and augmentation, progress bar,
history, atomic checkpoints and exact resume; each ``train_*`` function only
supplies the model and its loss.

Every ``train_*`` takes either a list of :class:`~interp4d_lite.data.Patient4D`
(all used for training) or a ``data_root`` (patients split with ``split_patients``;
the training part is used, the split goes into the checkpoint), and returns
``(model, history)`` with ``history`` a list of dicts.
"""

from __future__ import annotations

import gc
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from torch import nn

from ..device import seed_everything
from ..io_utils import atomic_write_json
from ..models import build_model
from .checkpoint import get_rng_state, load_checkpoint, load_model, save_checkpoint, set_rng_state
from .config import BaselineTrainConfig, DistillConfig, TeacherTrainConfig, TrainConfig
from .distributed import DistEnv, all_reduce_mean, barrier, gather_weight_hashes, init_distributed
from .history import save_history
from .sampling import StepSampler, augment_sample, collate, step_rng

__all__ = [
    "fit",
    "train_teacher",
    "train_baseline",
    "distill_student",
    "resolve_patients",
    "PairDataset",
    "CachedTargets",
    "compute_targets",
    "teacher_loss",
    "baseline_loss",
    "distill_loss",
]


# ---------------------------------------------------------------------- data
def resolve_patients(
    patients: Sequence | None = None,
    data_root: str | os.PathLike | None = None,
    kind: str | None = None,
    volume_shape: Sequence[int] | None = None,
    split_fractions: Sequence[float] = (0.7, 0.15, 0.15),
    split_seed: int = 0,
    part: str = "train",
) -> tuple[list, dict | None]:
    """``(patients of `part`, split)``: the given list as is, or the ``part`` of the
    deterministic patient-level split of ``data_root``."""
    if patients is not None:
        patients = list(patients)
        return patients, {"train": [p.patient_id for p in patients]}
    if data_root is None:
        raise ValueError("give either patients=[Patient4D, ...] or data_root=DIR")
    from ..data import discover_patients, load_patient, split_patients

    dirs = discover_patients(data_root)
    by_id = {Path(d).name: d for d in dirs}
    split = split_patients(sorted(by_id), fractions=tuple(split_fractions), seed=split_seed)
    split = {k: [str(i) for i in v] for k, v in split.items()}
    vs = tuple(volume_shape) if volume_shape is not None else None
    chosen = [load_patient(by_id[i], kind=kind, volume_shape=vs) for i in split[part]]
    return chosen, split


class CachedTargets(torch.utils.data.Dataset):
    """The items of ``dataset`` plus fixed target fields ``target_u_t0``, ``target_u_t1``
    ``(3, X, Y, Z)`` (voxels) per item, computed once before training on the un-augmented
    item; :func:`~interp4d_lite.train.sampling.augment_sample` then crops and flips them
    with the sample (a flip negates their channel, as for any field)."""

    def __init__(self, dataset: torch.utils.data.Dataset, targets: torch.Tensor):
        if len(targets) != len(dataset):
            raise ValueError(f"{len(targets)} cached targets for a dataset of {len(dataset)} items")
        self.dataset, self.targets = dataset, targets  # targets: (N, 6, X, Y, Z)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.dataset[i])
        u = self.targets[i].float()
        item["target_u_t0"], item["target_u_t1"] = u[:3].clone(), u[3:].clone()
        return item


@torch.no_grad()
def compute_targets(
    fn: Callable[[dict], tuple[torch.Tensor, torch.Tensor]],
    dataset,
    device,
    batch_size: int = 4,
    desc: str = "targets",
    progress: bool = True,
) -> torch.Tensor:
    """``(N, 6, X, Y, Z)`` float32 CPU tensor of ``fn(batch) -> (u_t0, u_t1)`` over every item of
    ``dataset`` (un-augmented, in order, ``batch_size`` items at a time on ``device``).
    Stored as float16 when float32 would take more than 2 GB."""
    n = len(dataset)
    first = dataset[0]["I0"]
    nbytes = n * 6 * first[0].numel() * 4
    dtype = torch.float16 if nbytes > 2 * 1024**3 else torch.float32
    out = torch.empty((n, 6, *first.shape[1:]), dtype=dtype)
    it = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=desc, leave=False, dynamic_ncols=True)
    for k in it:
        batch = _to(collate([dataset[i] for i in range(k, min(n, k + batch_size))]), device)
        u0, u1 = fn(batch)
        out[k : k + u0.shape[0]] = torch.cat([u0, u1], dim=1).float().cpu().to(dtype)
    return out


class PairDataset(torch.utils.data.Dataset):
    """(I0, I1) of every patient: what the linear-motion baseline trains on (no
    intermediate frames). Items: ``I0, I1 (1, X, Y, Z)``, ``patient``."""

    def __init__(self, patients: Sequence):
        self.patients = list(patients)

    def __len__(self) -> int:
        return len(self.patients)

    def __getitem__(self, i: int) -> dict:
        p = self.patients[i]
        f = torch.as_tensor(p.frames)
        return {"I0": f[p.i0][None].float().clone(), "I1": f[p.i1][None].float().clone(), "patient": p.patient_id}


# ---------------------------------------------------------------------- losses
def _f(x) -> float:
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


def _smooth(u: torch.Tensor) -> torch.Tensor:
    from ..losses import gradient_smoothness

    return gradient_smoothness(u)


def _image_terms(pred: torch.Tensor, target: torch.Tensor, w_charb: float, w_ncc: float) -> tuple[torch.Tensor, dict]:
    from ..losses import charbonnier, local_ncc_loss

    c = charbonnier(pred, target)
    n = local_ncc_loss(pred, target) if w_ncc else torch.zeros((), device=pred.device)
    return w_charb * c + w_ncc * n, {"charb": _f(c), "ncc": _f(n)}


def teacher_loss(out: dict, batch: dict, cfg: TeacherTrainConfig) -> tuple[torch.Tensor, dict]:
    """Image loss of the blend vs I_t (+ of each warped input) + smoothness."""
    from ..losses import charbonnier

    It = batch["It"]
    loss, parts = _image_terms(out["image"].float(), It, cfg.w_charbonnier, cfg.w_ncc)
    if cfg.w_warped:
        w = 0.5 * (charbonnier(out["warped0"].float(), It) + charbonnier(out["warped1"].float(), It))
        loss = loss + cfg.w_warped * w
        parts["warped"] = _f(w)
    s = _smooth(out["u_t0"].float()) + _smooth(out["u_t1"].float())
    loss = loss + cfg.w_smooth * s
    parts["smooth"] = _f(s)
    if cfg.w_target and "target_u_t0" in batch:
        from ..losses import field_distillation_loss

        g = field_distillation_loss(
            (out["u_t0"].float(), out["u_t1"].float()), (batch["target_u_t0"], batch["target_u_t1"])
        )
        loss = loss + cfg.w_target * g
        parts["target"] = _f(g)
    return loss, parts


def baseline_loss(fields: dict, batch: dict, cfg: BaselineTrainConfig) -> tuple[torch.Tensor, dict]:
    """warp(I1, u_01) ~ I0 and warp(I0, u_10) ~ I1, + smoothness of both."""
    from ..models.warp import warp

    I0, I1 = batch["I0"], batch["I1"]
    u01, u10 = fields["u_01"].float(), fields["u_10"].float()
    l0, p0 = _image_terms(warp(I1, u01), I0, cfg.w_charbonnier, cfg.w_ncc)
    l1, p1 = _image_terms(warp(I0, u10), I1, cfg.w_charbonnier, cfg.w_ncc)
    s = _smooth(u01) + _smooth(u10)
    loss = 0.5 * (l0 + l1) + cfg.w_smooth * s
    return loss, {"charb": 0.5 * (p0["charb"] + p1["charb"]), "ncc": 0.5 * (p0["ncc"] + p1["ncc"]), "smooth": _f(s)}


def distill_loss(out: dict, tout: dict | None, batch: dict, cfg: DistillConfig) -> tuple[torch.Tensor, dict]:
    """image(student, I_t) + distill_weight * field distillation (teacher-better weighted)
    + feature_weight * feature distillation + smoothness."""
    from ..losses import charbonnier, feature_distillation_loss, field_distillation_loss, teacher_better_weights

    It = batch["It"]
    loss, parts = _image_terms(out["image"].float(), It, cfg.w_charbonnier, cfg.w_ncc)
    if cfg.w_warped:
        w = 0.5 * (charbonnier(out["warped0"].float(), It) + charbonnier(out["warped1"].float(), It))
        loss = loss + cfg.w_warped * w
        parts["warped"] = _f(w)
    s = _smooth(out["u_t0"].float()) + _smooth(out["u_t1"].float())
    loss = loss + cfg.w_smooth * s
    parts["smooth"] = _f(s)
    if cfg.distill_weight and ("target_u_t0" in batch or tout is not None):
        if "target_u_t0" in batch:  # cached teacher fields
            tu0, tu1 = batch["target_u_t0"].float(), batch["target_u_t1"].float()
        else:
            tu0, tu1 = tout["u_t0"].float(), tout["u_t1"].float()
        weights = None
        if cfg.teacher_better:
            from ..models.warp import warp

            if tout is not None:
                timg = tout["image"].float()
            else:  # the teacher's frame from its cached fields, with the linear-blend mask
                m = (1 - batch["t"].float()).view(-1, 1, 1, 1, 1)
                timg = m * warp(batch["I0"], tu0) + (1 - m) * warp(batch["I1"], tu1)
            weights = teacher_better_weights(out["image"].detach().float(), timg, It)
        d = field_distillation_loss((out["u_t0"].float(), out["u_t1"].float()), (tu0, tu1), weights=weights)
        loss = loss + cfg.distill_weight * d
        parts["distill"] = _f(d)
    if tout is not None and cfg.feature_weight and out.get("features") and tout.get("features"):
        fd = feature_distillation_loss(out["features"], tout["features"])
        loss = loss + cfg.feature_weight * fd
        parts["feat"] = _f(fd)
    return loss, parts


@contextmanager
def _refining(teacher: nn.Module, refined: bool):
    """The teacher with its instance optimisation on (``refined``) or off, restored after."""
    steps = teacher.config.refine_steps
    teacher.config.refine_steps = steps if refined else 0
    try:
        yield teacher
    finally:
        teacher.config.refine_steps = steps


def _teacher_fields(teacher: nn.Module, batch: dict, refined: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen teacher's ``(u_t0, u_t1)`` for a batch: its network's prediction, or with
    instance optimisation (``refined``)."""
    with _refining(teacher, refined):
        out = teacher(batch["I0"], batch["I1"], batch["It"], batch["t"].float().reshape(-1))
    return out["u_t0"], out["u_t1"]


# ---------------------------------------------------------------------- generic loop
def _autocast(cfg: TrainConfig, device: torch.device):
    if cfg.precision in (None, "", "fp32"):
        return nullcontext(), None
    if cfg.precision not in ("bf16", "fp16"):
        raise ValueError(f"precision must be 'fp32', 'bf16' or 'fp16', not {cfg.precision!r}")
    if device.type != "cuda":
        warnings.warn(
            f"precision={cfg.precision!r} is only used on CUDA; training in fp32 on {device.type}", stacklevel=3
        )
        return nullcontext(), None
    dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.precision == "fp16")
    return torch.autocast(device_type="cuda", dtype=dtype), scaler


def _to(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def _cosine(cfg: TrainConfig) -> Callable[[int], float]:
    lo = float(cfg.lr_final_fraction)
    n = max(1, int(cfg.steps))

    def f(step: int) -> float:
        return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * min(step, n) / n))

    return f


def fit(
    *,
    kind: str,
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
) -> tuple[nn.Module, list[dict]]:
    """Run ``cfg.steps`` optimiser steps of ``step_fn(net, batch) -> (loss, parts)``.

    * Data: step ``s`` uses :class:`StepSampler` indices and ``step_rng(seed, s, rank, j)``
      augmentation -- a function of (seed, step) only, so resuming is exact.
    * ``resume=True`` and an existing ``checkpoint_path``: continue from it (weights,
      optimiser, LR schedule, scaler, RNG, history).
    * ``stop_at``: stop after that step as an interruption would (checkpoint written);
      a later call with ``resume=True`` finishes the run. Ctrl-C also checkpoints.
    * Under DDP only rank 0 writes; all ranks return the same weights.
    """
    device = env.device
    model.to(device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _cosine(cfg))
    amp_ctx, scaler = _autocast(cfg, device)
    history: list[dict] = []
    start = 0
    ckpt_path = Path(checkpoint_path) if checkpoint_path is not None else None
    if resume and ckpt_path is not None and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, expected_kind=kind, map_location=device)
        model.load_state_dict(ck["model_state"])
        if ck.get("optimizer"):
            opt.load_state_dict(ck["optimizer"])
        if ck.get("scheduler"):
            sched.load_state_dict(ck["scheduler"])
        if scaler is not None and ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        if ck.get("rng"):
            set_rng_state(ck["rng"])
        start = int(ck["step"])
        history = list(ck.get("history") or [])
        if split is None:
            split = ck.get("split")

    net: nn.Module = model
    if env.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    sampler = StepSampler(len(dataset), cfg.batch_size, seed=cfg.seed, rank=env.rank, world_size=env.world_size)
    end = cfg.steps if stop_at is None else min(cfg.steps, int(stop_at))

    def save(step: int) -> None:
        if ckpt_path is None or not env.is_main:
            return
        save_checkpoint(
            ckpt_path,
            kind=kind,
            model=model,
            model_config=model_config,
            step=step,
            train_config=cfg.to_dict(),
            optimizer=opt,
            scheduler=sched,
            scaler=scaler,
            split=split,
            history=history,
            extra=extra,
            rng=get_rng_state(),
        )
        save_history(history, ckpt_path.with_name(ckpt_path.stem + "_history.json"))

    bar = None
    if cfg.progress and env.is_main and end > start:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=start, desc=desc, leave=False, dynamic_ncols=True)
    t0 = time.perf_counter()
    model.train()
    step = start
    try:
        for step in range(start, end):
            idx = sampler.indices(step)
            samples = [
                augment_sample(dataset[i], step_rng(cfg.seed, step, env.rank, j), cfg.crop_shape, cfg.flip_axes)
                for j, i in enumerate(idx)
            ]
            batch = _to(collate(samples), device)
            with amp_ctx:
                loss, parts = step_fn(net, batch)
            opt.zero_grad(set_to_none=True)
            if scaler is not None and scaler.is_enabled():
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
            else:
                loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            if scaler is not None and scaler.is_enabled():
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            sched.step()
            done = step + 1
            rec = {"loss": float(loss.detach()), **parts}
            if done % max(1, cfg.log_every) == 0 or done == cfg.steps or done == end:
                rec = all_reduce_mean(rec, device)
                history.append(
                    {
                        "step": done,
                        **{k: round(v, 6) for k, v in rec.items()},
                        "lr": sched.get_last_lr()[0],
                        "time_s": round(time.perf_counter() - t0, 3),
                    }
                )
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.4f}" for k, v in rec.items()}, refresh=False)
            if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < end:
                save(done)
            step = done
    except KeyboardInterrupt:
        save(step)
        raise
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    if end > start or (ckpt_path is not None and not ckpt_path.exists()):
        save(end)
    if env.distributed:
        hashes = gather_weight_hashes(model)
        if env.is_main and ckpt_path is not None:
            atomic_write_json(
                ckpt_path.with_name(ckpt_path.stem + "_replicas.json"),
                {"world_size": env.world_size, "backend": env.backend, "weight_hashes": hashes},
                indent=1,
            )
        # a DDP wrapper sits in reference cycles: only the garbage collector frees it, possibly
        # after destroy_process_group() or during interpreter shutdown, where its reducer's
        # teardown can abort the process; free it now, while the process group is alive
        del net
        gc.collect()
        barrier()
    return model, history


# ---------------------------------------------------------------------- public loops
def _prepare(cfg: TrainConfig, patients, data_root, kind, volume_shape, split_seed):
    env = init_distributed(cfg.device)
    seed_everything(cfg.seed, deterministic=cfg.deterministic)  # same seed on every rank: same init
    chosen, split = resolve_patients(patients, data_root, kind=kind, volume_shape=volume_shape, split_seed=split_seed)
    if not chosen:
        raise ValueError("no training patients")
    return env, chosen, split


def _ckpt(out_dir, name):
    return Path(out_dir) / name if out_dir is not None else None


def train_teacher(
    patients: Sequence | None = None,
    config: TeacherTrainConfig | None = None,
    *,
    data_root=None,
    kind: str | None = None,
    volume_shape=None,
    split_seed: int = 0,
    out_dir=None,
    checkpoint_name: str = "teacher.pt",
    resume: bool = True,
    stop_at: int | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Train the privileged teacher on (I0, I1, I_t) triplets; returns (teacher, history).
    Writes ``out_dir/teacher.pt`` (+ ``teacher_history.json``) when ``out_dir`` is given."""
    from ..data import TripletDataset

    cfg = config or TeacherTrainConfig()
    env, chosen, split = _prepare(cfg, patients, data_root, kind, volume_shape, split_seed)
    model = build_model("teacher", cfg.model)
    mcfg = model.config.to_dict()
    ds = TripletDataset(chosen)
    if cfg.w_target:
        from ..models.teacher import register_to_frame

        def register(b):
            return register_to_frame(b["I0"], b["I1"], b["It"], steps=cfg.target_steps, smooth=cfg.target_smooth)

        ds = CachedTargets(
            ds,
            compute_targets(
                register, ds, env.device, desc="registration targets", progress=cfg.progress and env.is_main
            ),
        )

    def step_fn(net, batch):
        out = net(batch["I0"], batch["I1"], batch["It"], batch["t"].float().reshape(-1))
        return teacher_loss(out, batch, cfg)

    return fit(
        kind="teacher",
        model=model,
        model_config=mcfg,
        dataset=ds,
        step_fn=step_fn,
        cfg=cfg,
        env=env,
        checkpoint_path=_ckpt(out_dir, checkpoint_name),
        resume=resume,
        stop_at=stop_at,
        split=split,
        desc="teacher",
    )


def train_baseline(
    patients: Sequence | None = None,
    config: BaselineTrainConfig | None = None,
    *,
    data_root=None,
    kind: str | None = None,
    volume_shape=None,
    split_seed: int = 0,
    out_dir=None,
    checkpoint_name: str = "baseline.pt",
    resume: bool = True,
    stop_at: int | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Train the registration net of the linear-motion baseline on (I0, I1) pairs only;
    returns (RegistrationNet, history). Wrap it in ``LinearMotionBaseline`` to interpolate."""
    cfg = config or BaselineTrainConfig()
    env, chosen, split = _prepare(cfg, patients, data_root, kind, volume_shape, split_seed)
    model = build_model("registration", cfg.model)
    mcfg = model.config.to_dict()
    ds = PairDataset(chosen)

    def step_fn(net, batch):
        return baseline_loss(net(batch["I0"], batch["I1"]), batch, cfg)

    return fit(
        kind="registration",
        model=model,
        model_config=mcfg,
        dataset=ds,
        step_fn=step_fn,
        cfg=cfg,
        env=env,
        checkpoint_path=_ckpt(out_dir, checkpoint_name),
        resume=resume,
        stop_at=stop_at,
        split=split,
        desc="baseline",
    )


def distill_student(
    patients: Sequence | None = None,
    teacher: nn.Module | str | os.PathLike | None = None,
    config: DistillConfig | None = None,
    *,
    data_root=None,
    kind: str | None = None,
    volume_shape=None,
    split_seed: int = 0,
    out_dir=None,
    checkpoint_name: str = "student.pt",
    resume: bool = True,
    stop_at: int | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Train the student (sees I0, I1, t) with an image loss on I_t plus distillation of
    the frozen teacher's fields (``config.distill_weight``; 0 = the ablation, no
    teacher needed). ``teacher`` is a model or a teacher checkpoint path."""
    cfg = config or DistillConfig()
    env, chosen, split = _prepare(cfg, patients, data_root, kind, volume_shape, split_seed)
    from ..data import TripletDataset

    tnet = None
    needs_teacher = bool(cfg.distill_weight) or bool(cfg.feature_weight)
    if needs_teacher:
        if teacher is None:
            raise ValueError("distill_student: distill_weight > 0 needs a teacher (model or checkpoint path)")
        if isinstance(teacher, (str, os.PathLike)):
            cfg = cfg.replace(teacher_checkpoint=str(teacher))
            tnet, _ = load_model(teacher, device=env.device, expected_kind="teacher")
        else:
            tnet = teacher
        tnet = tnet.to(env.device).eval()
        for p in tnet.parameters():
            p.requires_grad_(False)
    ds = TripletDataset(chosen)
    per_step_teacher = tnet is not None and (bool(cfg.feature_weight) or not cfg.cache_targets)
    if tnet is not None and cfg.distill_weight and cfg.cache_targets:
        ds = CachedTargets(
            ds,
            compute_targets(
                lambda b: _teacher_fields(tnet, b, cfg.distill_refined),
                ds,
                env.device,
                desc="teacher targets",
                progress=cfg.progress and env.is_main,
            ),
        )
    # the student is built after the teacher is loaded and its targets computed, from the same
    # seed on every rank
    seed_everything(cfg.seed, deterministic=cfg.deterministic)
    model = build_model("student", cfg.model)
    mcfg = model.config.to_dict()

    def step_fn(net, batch):
        t = batch["t"].float().reshape(-1)
        out = net(batch["I0"], batch["I1"], t)
        tout = None
        if per_step_teacher:
            with torch.no_grad(), _refining(tnet, cfg.distill_refined):
                tout = tnet(batch["I0"], batch["I1"], batch["It"], t)
        return distill_loss(out, tout, batch, cfg)

    return fit(
        kind="student",
        model=model,
        model_config=mcfg,
        dataset=ds,
        step_fn=step_fn,
        cfg=cfg,
        env=env,
        checkpoint_path=_ckpt(out_dir, checkpoint_name),
        resume=resume,
        stop_at=stop_at,
        split=split,
        extra={"distill_weight": cfg.distill_weight},
        desc="student" if cfg.distill_weight else "student (no KD)",
    )
