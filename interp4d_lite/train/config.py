"""Training configurations: plain dataclasses with defaults sized for a 2-core CPU.

Every config is saved into its checkpoints (``to_dict``) and rebuilt from them
(``from_dict``), so a run can be resumed or inspected without the script that made it.
``model`` holds the model's own config as a dict (``StudentConfig().to_dict()``-style
overrides); an empty dict means the model's defaults.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainConfig:
    """Settings shared by every training loop."""

    steps: int = 200                  # optimiser steps (each sees batch_size samples per process)
    batch_size: int = 2               # per process; the global batch is batch_size * world_size
    lr: float = 1e-3                  # Adam learning rate
    lr_final_fraction: float = 0.1    # cosine decay from lr to lr * lr_final_fraction
    weight_decay: float = 0.0
    grad_clip: float = 1.0            # max gradient norm; 0 = off
    crop_shape: tuple[int, int, int] | None = None  # random crop (X, Y, Z); None = whole volume
    flip_axes: tuple[int, ...] = ()   # spatial axes that may be flipped (p = 0.5 each); none by default: on a
                                      # CPU budget of a few hundred steps, learning 8 mirrored anatomies made
                                      # every network's fields ~1.7x worse (docs/METHOD.md, "What made ...")
    seed: int = 0
    device: str = "auto"              # "auto" -> cuda if available, else cpu
    precision: str = "fp32"           # "fp32" | "bf16" | "fp16" (autocast; CUDA only, ignored on CPU)
    deterministic: bool = False       # ask torch for deterministic kernels
    log_every: int = 10               # steps between history records
    checkpoint_every: int = 0         # steps between checkpoints; 0 = only at the end
    progress: bool = True             # tqdm progress bar (rank 0 only)
    model: dict = field(default_factory=dict)  # the model config (overrides of its defaults)

    # ------------------------------------------------------------------ io
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        names = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for k, v in dict(d).items():
            if k not in names:
                continue  # tolerate keys from newer/older versions
            if isinstance(v, list) and k in ("crop_shape", "flip_axes"):
                v = tuple(v)
            kwargs[k] = v
        return cls(**kwargs)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclass
class TeacherTrainConfig(TrainConfig):
    """Teacher: image losses of its blended output (and of each warped input) against the
    true I_t, plus smoothness of both fields."""

    w_charbonnier: float = 1.0
    w_ncc: float = 0.5                # local NCC loss (1 - NCC^2 style, window 9)
    w_warped: float = 1.0             # Charbonnier of warp(I0,u_t0) and warp(I1,u_t1) vs I_t:
                                      # each field must explain I_t on its own (accurate fields to distil)
    w_smooth: float = 0.5             # gradient (L2) smoothness of u_t0 and u_t1
    w_target: float = 1.0             # Charbonnier of the fields vs registration targets: I0 and I1 registered to
                                      # the true I_t by instance optimisation, once per training sample (0 = off)
    target_steps: int = 20            # Adam steps of that registration (models.teacher.register_to_frame)
    target_smooth: float = 0.5        # its gradient-smoothness weight


@dataclass
class BaselineTrainConfig(TrainConfig):
    """Linear-motion baseline: a bidirectional registration net trained on (I0, I1) pairs
    only: warp(I1, u_01) ~ I0 and warp(I0, u_10) ~ I1, plus smoothness."""

    w_charbonnier: float = 1.0
    w_ncc: float = 0.5
    w_smooth: float = 0.5


@dataclass
class DistillConfig(TrainConfig):
    """Student: image loss against I_t + distill_weight * field distillation from a frozen
    teacher (+ feature distillation) + smoothness. distill_weight = 0 is the ablation."""

    w_charbonnier: float = 1.0
    w_ncc: float = 0.5
    w_warped: float = 0.5
    w_smooth: float = 0.5
    distill_weight: float = 1.0       # lambda of the field distillation term; 0 = no distillation
    feature_weight: float = 0.0       # feature distillation (decoder features where shapes agree)
    teacher_better: bool = False      # distil only where the teacher's frame is better (RIFE's mask); off by
                                      # default: in flat tissue both frames are right and the motion is not
    distill_refined: bool = True      # distil the teacher's instance-optimised fields (False: its network's alone)
    cache_targets: bool = True        # compute the teacher's fields once per training sample (un-augmented,
                                      # then cropped/flipped with the sample): a step costs what a plain one does
    teacher_checkpoint: str | None = None  # recorded for provenance
