"""The table of training recipes: one :class:`Recipe` per trainable method.

A recipe says everything that differs between methods -- which model it builds, which config
class holds its knobs, the checkpoint it writes, the data it trains on, the targets it needs
cached before the first step, whether it needs a frozen teacher, and its loss as a list of
weighted, named terms. One loop (:func:`interp4d_lite.train.loops.fit`) runs any of them; the
CLI, :func:`~interp4d_lite.train.api.ensure_checkpoint` and the benchmarks read this table, so
adding a method is one :func:`register_recipe` call.

A loss term is ``Term(name, weight, fn)``: ``weight`` names the config field that holds its
weight (a term whose weight is 0 is skipped), ``fn(out, batch) -> scalar`` computes it from the
model's output and the batch. :func:`training_step` sums the terms in table order and returns
each one by name, so the history and a notebook can show every term::

    recipe = get_recipe("teacher")
    loss, parts = training_step(recipe, net, batch, cfg)   # parts: {"charb": ..., "smooth": ...}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import WEIGHT_SCHEDULES, AdaptConfig, BaselineTrainConfig, DistillConfig, TeacherTrainConfig, TrainConfig

if TYPE_CHECKING:  # the table is read by the CLI's parser, which imports no torch
    import torch
    from torch import nn

__all__ = [
    "Term",
    "Recipe",
    "RECIPES",
    "register_recipe",
    "get_recipe",
    "recipe_names",
    "student_recipe",
    "active_terms",
    "training_step",
    "teacher_output",
    "weighted_sum",
    "IMAGE_TERMS",
]


@dataclass(frozen=True)
class Term:
    """One weighted loss term.

    Attributes:
        name: its name in the history and in ``parts``.
        weight: the name of the config field that holds its weight (0 skips the term).
        fn: ``fn(out, batch, cfg) -> scalar``, the unweighted term.
        needs: what the term reads besides the model's output and the batch: ``None``,
            ``"targets"`` (fields cached per sample, or the teacher run at every step) or
            ``"teacher_step"`` (the teacher's own output at every step, e.g. its features).
        schedule: the name of the config field that sets how the weight runs over the steps
            (:func:`weight_schedule`); ``None``: constant.
    """

    name: str
    weight: str
    fn: Callable[[dict, dict, TrainConfig], torch.Tensor]
    needs: str | None = None
    schedule: str | None = None


@dataclass(frozen=True)
class Recipe:
    """One trainable method.

    Attributes:
        name: the method's name (``"teacher"``, ``"student"``, ...).
        model_kind: the key of :data:`interp4d_lite.models.MODEL_REGISTRY` it builds.
        config_cls: the training config class; ``overrides`` are applied to any config given.
        checkpoint: the checkpoint file name in the output folder.
        data: ``"triplets"`` (I0, I1, I_t, t), ``"pairs"`` (I0, I1 only) or ``"windows"``
            (triplets of one scan, given to :func:`~interp4d_lite.train.loops.fit` as ``dataset``).
        terms: the loss, in summation order.
        forward: ``forward(net, batch, cfg, teacher) -> out``, the model's output dict
            (with ``out["teacher"]``, the frozen teacher's output, when it runs every step).
        targets: the fields cached per sample before the first step: ``None``,
            ``"registration"`` (I0 and I1 registered to the true I_t; when ``w_target``) or
            ``"teacher"`` (the frozen teacher's fields; when distilling with ``cache_targets``).
        needs_teacher: ``needs_teacher(cfg) -> bool``: this run needs a frozen teacher.
        overrides: config fields this recipe always sets, e.g. no distillation.
        model_overrides: model-config fields this recipe always sets (merged into the config's
            ``model`` dict, over what it holds), e.g. a student without FiLM: the model is built
            from ``cfg.model``, so its checkpoint stores the variant and reloads as it.
        evaluated_as: the method's name in evaluation tables, when it is not ``name``.
        as_method: ``as_method(model)``: what evaluation runs for a trained model (default: the model).
        command: the ``interp4d-lite`` training command of this recipe (``None``: none of its own).
        description: one line for ``--help`` and tables; ``help`` the command's longer description.
    """

    name: str
    model_kind: str
    config_cls: type
    checkpoint: str
    data: str
    terms: tuple[Term, ...]
    forward: Callable[[nn.Module, dict, TrainConfig, nn.Module | None], dict]
    targets: str | None = None
    needs_teacher: Callable[[TrainConfig], bool] = lambda cfg: False
    overrides: tuple[tuple[str, object], ...] = ()
    model_overrides: tuple[tuple[str, object], ...] = ()
    evaluated_as: str | None = None
    as_method: Callable[[nn.Module], nn.Module] | None = None
    command: str | None = None
    description: str = ""
    help: str = ""

    def config(self, cfg: TrainConfig | None = None) -> TrainConfig:
        """``cfg`` (default: the config class's defaults) with this recipe's overrides, and its
        model overrides merged into ``cfg.model``."""
        cfg = cfg if cfg is not None else self.config_cls()
        if not isinstance(cfg, self.config_cls):
            raise TypeError(f"recipe {self.name!r} takes a {self.config_cls.__name__}, not {type(cfg).__name__}")
        changes = dict(self.overrides)
        if self.model_overrides:
            changes["model"] = {**cfg.model, **dict(self.model_overrides)}
        return dataclasses.replace(cfg, **changes) if changes else cfg

    @property
    def method(self) -> str:
        """The name of this method in evaluation tables."""
        return self.evaluated_as or self.name

    def cached_targets(self, cfg: TrainConfig, teacher: nn.Module | None = None) -> str | None:
        """Which targets a run with ``cfg`` (and ``teacher``) caches before its first step."""
        if self.targets == "registration" and cfg.w_target:
            return "registration"
        if self.targets == "teacher" and teacher is not None and cfg.distill_weight and cfg.cache_targets:
            return "teacher"
        return None

    def teacher_every_step(self, cfg: TrainConfig, teacher: nn.Module | None = None) -> bool:
        """Whether a run with ``cfg`` runs the frozen ``teacher`` at every step (features, or
        targets not cached)."""
        if teacher is None or not self.needs_teacher(cfg):
            return False
        return bool(getattr(cfg, "feature_weight", 0)) or not getattr(cfg, "cache_targets", True)


RECIPES: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe) -> Recipe:
    """Add ``recipe`` to the table (a name already there is replaced); returns it."""
    RECIPES[recipe.name] = recipe
    return recipe


def get_recipe(name: str | Recipe) -> Recipe:
    """The recipe called ``name`` (a :class:`Recipe` is returned as is)."""
    if isinstance(name, Recipe):
        return name
    if name not in RECIPES:
        raise ValueError(f"unknown training recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def term_weights(name: str | Recipe = "student", config: TrainConfig | None = None) -> dict[str, float]:
    """Each loss term of the recipe ``name`` and its weight in ``config`` (default: the recipe's
    config defaults), in summation order: what :func:`interp4d_lite.viz.plot_distillation_diagram`
    draws."""
    recipe = get_recipe(name)
    config = recipe.config_cls() if config is None else config
    return {t.name: float(getattr(config, t.weight)) for t in recipe.terms}


def recipe_names() -> list[str]:
    """The names in the table, in registration order."""
    return list(RECIPES)


# ---------------------------------------------------------------------- terms
def _charb(a, b):
    from ..losses import charbonnier

    return charbonnier(a.float(), b)


def _ncc(a, b):
    from ..losses import local_ncc_loss

    return local_ncc_loss(a.float(), b)


def _smooth(*fields):
    from ..losses import gradient_smoothness

    total = gradient_smoothness(fields[0].float())
    for u in fields[1:]:
        total = total + gradient_smoothness(u.float())
    return total


def _fields(out, prefix="u_t"):
    return out[prefix + "0"].float(), out[prefix + "1"].float()


def _warped_charb(out, batch, cfg):
    It = batch["It"]
    return 0.5 * (_charb(out["warped0"], It) + _charb(out["warped1"], It))


def _field_distill(out, batch, cfg):
    """Field distillation toward the target fields (the cached teacher fields, else the per-step
    teacher's), optionally only where the teacher's frame is better, optionally with moving and
    static voxels weighted alike (``distill_balance``)."""
    from ..losses import field_distillation_loss, motion_balanced_weights, teacher_better_weights

    target = out["target"]
    weights = None
    if cfg.teacher_better:
        if target.get("image") is None:
            raise ValueError(
                "teacher_better=True weighs the field distillation by the teacher's frame: the batch needs "
                "'target_image' beside 'target_u_t0' and 'target_u_t1' (targets cached with it on carry it)"
            )
        weights = teacher_better_weights(out["image"].detach().float(), target["image"].float(), batch["It"])
    if cfg.distill_balance > 0:
        balanced = motion_balanced_weights(_fields(target), threshold=cfg.distill_balance)
        weights = balanced if weights is None else weights * balanced
    return field_distillation_loss(_fields(out), _fields(target), weights=weights, eps=cfg.distill_eps)


def _feature_distill(out, batch, cfg):
    from ..losses import feature_distillation_loss

    return feature_distillation_loss(out["features"], out["teacher"]["features"])


def _registration_target(out, batch, cfg):
    from ..losses import field_distillation_loss

    return field_distillation_loss(_fields(out), _fields(out["target"]))


IMAGE_TERMS = (
    Term("charb", "w_charbonnier", lambda out, batch, cfg: _charb(out["image"], batch["It"])),
    Term("ncc", "w_ncc", lambda out, batch, cfg: _ncc(out["image"], batch["It"])),
    Term("warped", "w_warped", _warped_charb),
    Term("smooth", "w_smooth", lambda out, batch, cfg: _smooth(*_fields(out))),
)


def _pair_image(metric):
    """``0.5 * (metric(warp(I1, u_01), I0) + metric(warp(I0, u_10), I1))``."""

    def fn(out, batch, cfg):
        return 0.5 * (metric(out["warped_10"], batch["I0"]) + metric(out["warped_01"], batch["I1"]))

    return fn


def active_terms(recipe: Recipe, cfg: TrainConfig, teacher: nn.Module | None = None) -> list[Term]:
    """The recipe's terms that a run with ``cfg`` (and ``teacher``) sums: weight not 0 and
    their inputs present (cached targets, a per-step teacher), in summation order."""
    cached = recipe.cached_targets(cfg, teacher)
    every_step = recipe.teacher_every_step(cfg, teacher)
    have = {None, *(("targets",) if cached or every_step else ()), *(("teacher_step",) if every_step else ())}
    return [term for term in recipe.terms if float(getattr(cfg, term.weight)) and term.needs in have]


def weight_schedule(schedule: str, progress: float | None) -> float:
    """The factor of a scheduled weight at ``progress`` (the step / the run's steps, in the batch
    as ``"progress"``; ``None`` outside a training loop: 1): ``"constant"`` 1, ``"cosine"``
    ``(1 + cos(pi progress)) / 2``, from 1 at the first step down to 0 at the last."""
    if schedule not in WEIGHT_SCHEDULES:
        raise ValueError(f"a weight schedule is one of {WEIGHT_SCHEDULES}, not {schedule!r}")
    if schedule == "constant" or progress is None:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(max(float(progress), 0.0), 1.0)))


def weighted_sum(terms, out: dict, batch: dict, cfg: TrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """``sum(weight * term)`` over ``terms`` in order, and each unweighted term by name. A term
    with a ``schedule`` has its weight scaled by :func:`weight_schedule` at the batch's
    ``"progress"``."""
    total = None
    parts: dict[str, float] = {}
    for term in terms:
        w = float(getattr(cfg, term.weight))
        if term.schedule is not None:
            w *= weight_schedule(getattr(cfg, term.schedule), batch.get("progress"))
        value = term.fn(out, batch, cfg)
        total = w * value if total is None else total + w * value
        parts[term.name] = float(value.detach())
    if total is None:
        raise ValueError("every loss term of this run has weight 0")
    return total, parts


def training_step(
    recipe: Recipe | str, net: nn.Module, batch: dict, cfg: TrainConfig, teacher: nn.Module | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one batch: the recipe's forward, then its weighted terms in order.

    Args:
        recipe: a recipe or its name.
        net: the model being trained.
        batch: a collated batch: ``I0``, ``I1`` ``(B, 1, X, Y, Z)`` normalised intensities, and
            ``It`` ``(B, 1, X, Y, Z)``, ``t`` ``(B,)`` in [0, 1] for triplets; ``target_u_t0``,
            ``target_u_t1`` ``(B, 3, X, Y, Z)`` voxels when the recipe caches targets.
        cfg: the training config (the terms' weights).
        teacher: the frozen teacher of a distillation run: its fields are cached in the batch
            (``cache_targets``), else it runs here, as it does when features are distilled.
    Returns:
        ``(loss, parts)``: the weighted sum (a scalar tensor with its graph) and each
        unweighted term by name.
    """
    recipe = get_recipe(recipe)
    out = dict(recipe.forward(net, batch, cfg, teacher if recipe.teacher_every_step(cfg, teacher) else None))
    if recipe.cached_targets(cfg, teacher):  # the run cached them: the batch carries them
        out["target"] = {k: batch.get("target_" + k) for k in ("u_t0", "u_t1", "image")}
    elif out.get("teacher") is not None:
        out["target"] = out["teacher"]
    return weighted_sum(active_terms(recipe, cfg, teacher), out, batch, cfg)


# ---------------------------------------------------------------------- forwards
def teacher_output(teacher: nn.Module, batch: dict, refine: bool) -> dict:
    """The frozen teacher's output for a batch (no gradients): with its instance optimisation
    (``refine``) or its network alone."""
    import torch

    with torch.no_grad():
        t = batch["t"].float().reshape(-1)
        return teacher(batch["I0"], batch["I1"], batch["It"], t, refine_steps=None if refine else 0)


def _teacher_forward(net, batch, cfg, teacher):
    return net(batch["I0"], batch["I1"], batch["It"], batch["t"].float().reshape(-1))


def _student_forward(net, batch, cfg, teacher):
    out = dict(net(batch["I0"], batch["I1"], batch["t"].float().reshape(-1)))
    out["teacher"] = teacher_output(teacher, batch, cfg.distill_refined) if teacher is not None else None
    return out


def _pair_forward(net, batch, cfg, teacher):
    from ..models.warp import warp

    fields = net(batch["I0"], batch["I1"])
    u01, u10 = fields["u_01"].float(), fields["u_10"].float()
    return {"u_01": u01, "u_10": u10, "warped_10": warp(batch["I1"], u01), "warped_01": warp(batch["I0"], u10)}


def _linear_motion(model: nn.Module) -> nn.Module:
    from ..models import LinearMotionBaseline

    return LinearMotionBaseline(model)


def _kd(cfg) -> bool:
    return bool(cfg.distill_weight) or bool(cfg.feature_weight)


register_recipe(
    Recipe(
        name="teacher",
        model_kind="teacher",
        config_cls=TeacherTrainConfig,
        checkpoint="teacher.pt",
        data="triplets",
        targets="registration",
        terms=(
            *IMAGE_TERMS,
            Term("target", "w_target", _registration_target, needs="targets"),
        ),
        forward=_teacher_forward,
        command="train-teacher",
        description="the privileged teacher (sees I0, I1 and the true I_t)",
        help="Train the privileged teacher on (I0, I1, I_t) triplets of the training patients: Charbonnier + local "
        "NCC of its output against the true I_t, Charbonnier of each warped input against I_t, smoothness of its "
        "fields, and the Charbonnier distance of its fields to registration targets (I0 and I1 registered to I_t by "
        "instance optimisation, cached once per sample; --w-target 0 turns it off).",
    )
)
register_recipe(
    Recipe(
        name="baseline",
        model_kind="registration",
        config_cls=BaselineTrainConfig,
        checkpoint="baseline.pt",
        data="pairs",
        terms=(
            Term("charb", "w_charbonnier", _pair_image(_charb)),
            Term("ncc", "w_ncc", _pair_image(_ncc)),
            Term("smooth", "w_smooth", lambda out, batch, cfg: _smooth(out["u_01"], out["u_10"])),
        ),
        forward=_pair_forward,
        evaluated_as="linear_motion",
        as_method=_linear_motion,
        command="train-baseline",
        description="the linear-motion baseline's registration net, trained on (I0, I1) pairs",
        help="Train the bidirectional registration network of the linear-motion (UVI-Net-style) baseline on (I0, "
        "I1) pairs only -- no intermediate frames: warp(I1,u_01)~I0, warp(I0,u_10)~I1, plus smoothness. At "
        "inference u_t0 = t u_10, u_t1 = (1-t) u_01.",
    )
)
_STUDENT_TERMS = (
    *IMAGE_TERMS,
    Term("distill", "distill_weight", _field_distill, needs="targets", schedule="distill_schedule"),
    Term("feat", "feature_weight", _feature_distill, needs="teacher_step", schedule="distill_schedule"),
)


def student_recipe(name: str, description: str, **fields) -> Recipe:
    """A student row of the table: the student model and :class:`DistillConfig`, trained on
    triplets, distilled from the frozen teacher (its fields cached per sample) with the student's
    terms, checkpoint ``<name>.pt``; ``fields`` change any of that (e.g. ``model_overrides``)."""
    base = dict(
        name=name,
        model_kind="student",
        config_cls=DistillConfig,
        checkpoint=f"{name}.pt",
        data="triplets",
        targets="teacher",
        terms=_STUDENT_TERMS,
        forward=_student_forward,
        needs_teacher=_kd,
        description=description,
    )
    return Recipe(**{**base, **fields})


register_recipe(
    student_recipe(
        "student",
        "the student (I0, I1, t), distilled from a teacher",
        command="distill",
        help="Train the student, which sees only I0, I1 and t: Charbonnier + local NCC of its frame against I_t, "
        "Charbonnier of each warped input against I_t, smoothness, and DISTILL_WEIGHT x the Charbonnier distance of "
        "its fields to the frozen teacher's instance-optimised fields (--no-distill-refined: its network's), at every "
        "voxel (--teacher-better: only where the teacher's frame is better), cached once per training sample "
        "(--no-cache-targets: the teacher runs at every step). --distill-weight 0 --feature-weight 0 trains the "
        "ablation without distillation (no teacher needed), named student_nokd.pt.",
    )
)
register_recipe(
    student_recipe(
        "student_nokd",
        "the student trained without distillation (the ablation)",
        targets=None,
        needs_teacher=lambda cfg: False,
        overrides=(("distill_weight", 0.0), ("feature_weight", 0.0)),
    )
)
# ablations of the paper's blocks: distilled like the student, one block of the model replaced
# (models.student.StudentConfig; docs/METHOD.md, "Ablations of the paper's blocks")
register_recipe(
    student_recipe(
        "student_no_film",
        "the distilled student without FiLM (t as one more input channel of the decoder; the ablation)",
        model_overrides=(("time_conditioning", "channel"),),
    )
)
register_recipe(
    student_recipe(
        "student_no_fusion",
        "the distilled student without multi-scale fusion (finest decoder level only; the ablation)",
        model_overrides=(("fusion", "finest"),),
    )
)
# an option, not an ablation: a fusion that mixes the scales' fields (models.fusion.FieldSpaceFusion)
register_recipe(
    student_recipe(
        "student_field_fusion",
        "the distilled student with field-space fusion (the scales' fields mixed per voxel, weights from "
        "normalised features and t; an option)",
        model_overrides=(("fusion", "fields"),),
    )
)
register_recipe(
    Recipe(
        name="adapt",
        model_kind="student",
        config_cls=AdaptConfig,
        checkpoint="adapted.pt",
        data="windows",
        targets="registration",
        terms=(*IMAGE_TERMS, Term("target", "w_target", _registration_target, needs="targets")),
        forward=_student_forward,
        evaluated_as="student_adapted",
        description="a student adapted to one scan (its own frames outside the interval to interpolate)",
    )
)
