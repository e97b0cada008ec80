"""Training configurations: plain dataclasses with defaults sized for a 2-core CPU.

Every config is saved into its checkpoints (``to_dict``) and rebuilt from them
(``from_dict``), so a run can be resumed or inspected without the script that made it.
``model`` holds the model's own config as a dict (``StudentConfig().to_dict()``-style
overrides); an empty dict means the model's defaults.

Each field's ``metadata["help"]`` is its documentation and the help of its command-line
flag: ``interp4d_lite.train.cli`` makes ``--field-name`` (type and default from the field)
for every field, so a default is written once, here. ``metadata["flag"]`` renames a flag,
``"choices"`` restricts it, ``"off_flag"`` adds a flag that sets the ``"off"`` value, and
``cli=False`` keeps a field off the command line.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..jsonconfig import JSONConfig

#: the students' Adam learning rate when real cines are in their training data (``scripts/pretrain.py``,
#: ``benchmarks/bench_real.py --sets loso``), instead of the default 1e-3: a real cine's motion is
#: sub-voxel, and at 1e-3 a student's fields on the cines settle at zero; at 3e-4 they begin to
#: follow it (docs/METHOD.md section 11, "The obstacle is the optimisation"). Phantoms move several
#: voxels and keep the default.
REAL_CINE_LR = 3e-4

#: how a scheduled loss weight runs over the steps (``DistillConfig.distill_schedule``,
#: ``train.recipes.weight_schedule``)
WEIGHT_SCHEDULES = ("constant", "cosine")


def knob(default: Any, help: str, **cli: Any) -> Any:
    """A config field with its documentation (``help``) and command-line options (see the
    module docstring); a list/dict/tuple default is copied for every instance."""
    meta = {"help": help, **cli}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig(JSONConfig):
    """Settings shared by every training loop; ``to_dict()`` / ``from_dict()`` are the model
    configs' (:class:`~interp4d_lite.jsonconfig.JSONConfig`), unknown keys skipped."""

    steps: int = knob(200, "optimiser steps (each sees batch_size samples per process)")
    batch_size: int = knob(2, "samples per step and process; the global batch is batch_size x world size")
    lr: float = knob(1e-3, "Adam learning rate, cosine-decayed")
    lr_final_fraction: float = knob(0.1, "the cosine decay ends at lr x lr_final_fraction")
    weight_decay: float = knob(0.0, "Adam weight decay")
    grad_clip: float = knob(1.0, "max gradient norm; 0 = no clipping")
    crop_shape: tuple[int, int, int] | None = knob(
        None, "random crop size X Y Z (default: the whole volume)", flag="--crop", metavar=("X", "Y", "Z")
    )
    flip_axes: tuple[int, ...] = knob(
        (),
        "spatial axes that may be flipped (p = 0.5 each; a flip negates the "
        "matching field channel); none by default: on a CPU budget of a few hundred "
        "steps, learning 8 mirrored anatomies made every network's fields ~1.7x worse "
        "(docs/METHOD.md, 'What made ...')",
        off_flag="--no-flip",
        off=(),
        off_help="no random flips (the default)",
    )
    seed: int = knob(0, "seed of the initialisation, data order and augmentation")
    device: str = knob("auto", "auto (CUDA when available, else CPU) | cpu | cuda | cuda:N")
    precision: str = knob(
        "fp32",
        "mixed precision (autocast): bf16 on CUDA or CPU, fp16 on CUDA only (ignored with a warning on CPU); "
        "on a CPU with bf16 instructions (AVX512-BF16) bf16 ran at 0.95-1.14x the steps per second of the fp32 "
        "default (benchmarks/bench_models.py --compare --bf16); it turns channels_last off. oneDNN's bf16 weight "
        "gradients are unreliable on grids of 1-2 voxels: keep the coarsest level (1/8) at 3 voxels or more",
        choices=("fp32", "bf16", "fp16"),
    )
    channels_last: bool = knob(
        True,
        "on CPU, keep the model and the batch channels-last (3D): oneDNN's 3D convolutions, their backward above "
        "all, run faster so (a step 1.08-1.17x faster; the same loss to float rounding); not used on CUDA nor with "
        "precision bf16 (wrong weight gradients on small grids there)",
    )
    deterministic: bool = knob(False, "ask torch for deterministic kernels (slower on CUDA)")
    minutes: float = knob(0.0, "time budget in minutes: stop (with a checkpoint) once it is spent; 0 = no limit")
    log_every: int = knob(10, "steps between history records")
    checkpoint_every: int = knob(0, "steps between checkpoints; 0 = only at the end (Ctrl-C also writes one)")
    progress: bool = knob(True, "tqdm progress bar (rank 0 only)")
    model: dict = knob(
        {},
        "the model config as JSON (overrides of its defaults), e.g. '{\"decoder_channels\": [16, 16, 8]}'",
        flag="--model-config",
        metavar="JSON",
    )

    #: a checkpoint of another version may hold keys this one no longer has: skipped
    UNKNOWN_KEYS: ClassVar[str] = "ignore"

    #: knobs that say how or how long a run trains, not what it learns, or where its teacher came from:
    #: a checkpoint made with other values is the same model (``steps``: a shorter run is resumed, a
    #: longer one is finished)
    RUNTIME_KNOBS: ClassVar[tuple[str, ...]] = (
        "steps", "device", "channels_last", "deterministic", "minutes", "log_every", "checkpoint_every", "progress",
        "teacher_checkpoint",
    )  # fmt: skip

    def replace(self, **changes):
        """A copy with ``changes`` (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def differences(self, stored: dict | None) -> dict[str, tuple[Any, Any]]:
        """``{knob: (stored value, this config's value)}`` for the knobs where ``stored`` (a
        checkpoint's ``train_config``) differs from this config, leaving out
        :attr:`RUNTIME_KNOBS` and knobs the stored config does not have (older versions)."""
        stored, mine = stored or {}, json.loads(json.dumps(self.to_dict()))
        return {
            k: (stored[k], v) for k, v in mine.items() if k in stored and k not in self.RUNTIME_KNOBS and stored[k] != v
        }


def describe_differences(diff: dict[str, tuple[Any, Any]]) -> str:
    """``"teacher_better=False (asked: True), lr=0.001 (asked: 0.0003)"``: a checkpoint's knobs against a run's."""
    return ", ".join(f"{k}={old!r} (asked: {new!r})" for k, (old, new) in diff.items())


def warn_other_settings(path, cfg: TrainConfig, stored: dict | None, what: str, remedy: str) -> None:
    """Warn ``"<path>: <what> made with <the knobs that differ>; <remedy>"`` when the checkpoint's
    ``stored`` train config differs from ``cfg`` (:meth:`TrainConfig.differences`)."""
    diff = cfg.differences(stored)
    if diff:
        warnings.warn(f"{path}: {what} made with {describe_differences(diff)}; {remedy}", stacklevel=3)


@dataclass
class TeacherTrainConfig(TrainConfig):
    """Teacher: image losses of its blended output (and of each warped input) against the
    true I_t, plus smoothness of both fields."""

    w_charbonnier: float = knob(1.0, "weight of the Charbonnier loss of the output against I_t")
    w_ncc: float = knob(0.5, "weight of the local NCC loss (window 9)")
    w_warped: float = knob(
        1.0,
        "weight of Charbonnier(warp(I0, u_t0), I_t) + Charbonnier(warp(I1, u_t1), I_t): "
        "each field must explain I_t on its own (accurate fields to distil)",
    )
    w_smooth: float = knob(0.5, "weight of the gradient (L2) smoothness of u_t0 and u_t1")
    w_target: float = knob(
        1.0,
        "weight of the Charbonnier of the fields against registration targets: I0 and I1 "
        "registered to the true I_t by instance optimisation, once per training sample (0 = off)",
    )
    target_steps: int = knob(20, "Adam steps of that registration (models.registration.register_to_frame)")
    target_smooth: float = knob(
        1.0,
        "gradient-smoothness weight of that registration (breathing CT: 0.1, models.registration.REGISTRATION_SETTINGS)",
    )
    target_lr: float = knob(0.1, "Adam step (voxels) of that registration (breathing CT: 0.2)")


@dataclass
class BaselineTrainConfig(TrainConfig):
    """Linear-motion baseline: a bidirectional registration net trained on (I0, I1) pairs
    only: warp(I1, u_01) ~ I0 and warp(I0, u_10) ~ I1, plus smoothness."""

    w_charbonnier: float = knob(1.0, "weight of the Charbonnier loss of each warped input")
    w_ncc: float = knob(0.5, "weight of the local NCC loss (window 9)")
    w_smooth: float = knob(0.5, "weight of the gradient (L2) smoothness of u_01 and u_10")


@dataclass
class DistillConfig(TrainConfig):
    """Student: image loss against I_t + distill_weight * field distillation from a frozen
    teacher (+ feature distillation) + smoothness. distill_weight = 0 is the ablation."""

    w_charbonnier: float = knob(1.0, "weight of the Charbonnier loss of the output against I_t")
    w_ncc: float = knob(0.5, "weight of the local NCC loss (window 9)")
    w_warped: float = knob(0.5, "weight of the Charbonnier loss of each warped input against I_t")
    w_smooth: float = knob(0.5, "weight of the gradient (L2) smoothness of u_t0 and u_t1")
    distill_weight: float = knob(
        2.0, "weight (lambda) of the field distillation term; 0 = the ablation, no teacher (docs/METHOD.md section 5)"
    )
    feature_weight: float = knob(0.0, "weight of decoder-feature distillation (where shapes agree)")
    teacher_better: bool = knob(
        False,
        "distil only where the teacher's frame is better than the student's (RIFE's mask); off by default: "
        "a little ahead on the phantoms, 0.38 dB behind on the real cines left out in turn (docs/METHOD.md section 5)",
    )
    distill_schedule: str = knob(
        "constant",
        "the distillation weights over the run: constant, or cosine (from their value at the first "
        "step down to 0 at the last: the teacher's motion first, the pictures last; better on the "
        "tutorial's data, worse in bench_proof and on the real cine: docs/METHOD.md section 5)",
        choices=WEIGHT_SCHEDULES,
    )
    distill_eps: float = knob(
        1e-3,
        "Charbonnier epsilon of the field distillation, in voxels: errors well below it count as a "
        "squared error, errors above it as an absolute one (the default: an absolute error everywhere)",
    )
    distill_refined: bool = knob(True, "distil the teacher's instance-optimised fields (off: its network's alone)")
    distill_balance: float = knob(
        0.0,
        "moving voxels (teacher field > this many voxels) and static voxels weigh alike in the field "
        "distillation (losses.motion_balanced_weights); 0 = every voxel alike",
    )
    cache_targets: bool = knob(
        True,
        "compute the teacher's fields once per training sample (un-augmented, then "
        "cropped/flipped with the sample): a step costs what a plain one does",
    )

    teacher_checkpoint: str | None = knob(None, "the teacher's checkpoint, recorded for provenance", cli=False)

    #: knobs of the distillation alone: moot in a run without it (distill_weight = feature_weight = 0)
    DISTILL_KNOBS: ClassVar[tuple[str, ...]] = (
        "teacher_better", "distill_schedule", "distill_eps", "distill_refined", "distill_balance", "cache_targets",
    )  # fmt: skip

    def differences(self, stored: dict | None) -> dict[str, tuple[Any, Any]]:
        """As :meth:`TrainConfig.differences`; between two runs without distillation its own knobs
        (:attr:`DISTILL_KNOBS`) do not count."""
        diff = super().differences(stored)
        stored = stored or {}
        if not (
            self.distill_weight or self.feature_weight or stored.get("distill_weight") or stored.get("feature_weight")
        ):
            diff = {k: v for k, v in diff.items() if k not in self.DISTILL_KNOBS}
        return diff


@dataclass
class AdaptConfig(TrainConfig):
    """Adaptation of a trained student to one scan: fine-tuning on triplets of that scan's own
    frames outside the interval to interpolate -- image losses against their real middle frames
    plus the distance of the fields to per-scan registration targets (each triplet's inputs
    registered to its real middle frame by instance optimisation, once, before the first step)."""

    steps: int = knob(300, "optimiser steps at most (the time budget may stop earlier)")
    lr: float = knob(3e-4, "Adam learning rate of the fine-tuning, cosine-decayed")
    crop_shape: tuple[int, int, int] | None = knob(
        (64, 64, 64), "random crop size X Y Z of the fine-tuning samples (capped at the volume)", flag="--crop",
        metavar=("X", "Y", "Z"),
    )  # fmt: skip
    minutes: float = knob(5.0, "time budget in minutes for targets and fine-tuning together; 0 = no limit")
    w_charbonnier: float = knob(1.0, "weight of the Charbonnier loss of the output against the real middle frame")
    w_ncc: float = knob(0.5, "weight of the local NCC loss (window 9)")
    w_warped: float = knob(0.5, "weight of the Charbonnier loss of each warped input against the middle frame")
    w_smooth: float = knob(0.5, "weight of the gradient (L2) smoothness of u_t0 and u_t1")
    w_target: float = knob(1.0, "weight of the distance of the fields to the per-scan registration targets (0 = off)")
    target_steps: int = knob(20, "Adam steps of each target registration (models.registration.register_to_frame)")
    target_smooth: float = knob(
        1.0,
        "gradient-smoothness weight of that registration (breathing CT: 0.1, models.registration.REGISTRATION_SETTINGS)",
    )
    target_lr: float = knob(0.1, "Adam step (voxels) of that registration (breathing CT: 0.2)")
    target_blur: float = knob(
        0.0,
        "Gaussian sigma (voxels) the target registration compares the images under (0: none; its noise correction removes the drift)",
    )
    target_share: float = knob(0.4, "share of the time budget the targets may take at most (the rest: fine-tuning)")
    max_triplets: int = knob(24, "triplets of the scan used for training at most (the target spacing first)")
    holdout: int = knob(2, "windows of the scan held back from training for the self-check against the blend")
    cyclic: bool = knob(
        True, "the series is one cycle (cardiac beat, breath): windows may wrap from the last frame to the first"
    )
