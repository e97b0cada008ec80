"""The recipe table: one row per trainable method, losses as weighted named terms."""

import pytest
import torch

torch.set_num_threads(1)

from test_train import TINY, Toy  # noqa: E402

from interp4d_lite.train import DistillConfig, TeacherTrainConfig, fit  # noqa: E402
from interp4d_lite.train.recipes import (  # noqa: E402
    IMAGE_TERMS,
    RECIPES,
    Recipe,
    active_terms,
    get_recipe,
    register_recipe,
    training_step,
)


def test_table_has_the_four_methods():
    assert {"teacher", "baseline", "student", "student_nokd"} <= set(RECIPES)
    assert get_recipe("baseline").model_kind == "registration" and get_recipe("baseline").method == "linear_motion"
    nokd = get_recipe("student_nokd").config(DistillConfig(distill_weight=2.0, feature_weight=0.5))
    assert nokd.distill_weight == 0.0 and nokd.feature_weight == 0.0
    with pytest.raises(ValueError, match="unknown training recipe"):
        get_recipe("nope")
    with pytest.raises(TypeError, match="takes a DistillConfig"):
        get_recipe("student").config(TeacherTrainConfig())


def _toy_batch() -> dict:
    """Two triplets of the toy data set, stacked: a batch as the training loop collates it."""
    return {k: torch.stack([Toy()[i][k] for i in (1, 4)]) for k in ("I0", "I1", "It", "t")}


def test_loss_is_the_weighted_sum_of_its_named_terms():
    from interp4d_lite.models import Student

    torch.manual_seed(0)
    cfg = DistillConfig(w_ncc=0.25, w_warped=0.5, w_smooth=2.0, distill_weight=0.0)
    batch = _toy_batch()
    loss, parts = training_step("student_nokd", Student(TINY), batch, cfg)
    assert list(parts) == ["charb", "ncc", "warped", "smooth"]  # the table's order; distill is off
    weights = {"charb": cfg.w_charbonnier, "ncc": cfg.w_ncc, "warped": cfg.w_warped, "smooth": cfg.w_smooth}
    assert float(loss.detach()) == pytest.approx(sum(weights[k] * v for k, v in parts.items()), rel=1e-6)
    # a zero weight drops its term; distillation needs targets or a teacher, which this run has not
    names = [t.name for t in active_terms(get_recipe("student"), cfg.replace(w_ncc=0.0, distill_weight=1.0))]
    assert names == ["charb", "warped", "smooth"]


# the ablations of the paper's blocks, and the field-space fusion option: each a distilled student
# with one model option
ABLATIONS = {
    "student_no_film": {"time_conditioning": "channel"},
    "student_no_fusion": {"fusion": "finest"},
    "student_field_fusion": {"fusion": "fields"},
}


def test_the_ablations_of_the_papers_blocks_are_distilled_students_with_one_model_option():
    student = get_recipe("student")
    for name, option in ABLATIONS.items():
        recipe = get_recipe(name)
        assert recipe.model_kind == "student" and recipe.targets == "teacher" and recipe.command is None
        assert recipe.terms == student.terms and recipe.overrides == () and recipe.checkpoint == f"{name}.pt"
        assert recipe.needs_teacher(DistillConfig()) and not recipe.needs_teacher(DistillConfig(distill_weight=0))
        cfg = recipe.config(DistillConfig(distill_weight=2.0, model={"time_hidden": 8}))
        assert cfg.model == {"time_hidden": 8, **option} and cfg.distill_weight == 2.0  # merged, not replaced
        assert recipe.config().model == option
    # the paper's student and the no-distillation ablation build the default model
    assert get_recipe("student").config().model == {} and get_recipe("student_nokd").config().model == {}
    # the recipe's option wins over the config's, as overrides do
    assert get_recipe("student_no_fusion").config(DistillConfig(model={"fusion": "multiscale"})).model == {
        "fusion": "finest"
    }
    from interp4d_lite.cli import build_parser

    args = build_parser().parse_args(
        ["evaluate", "--data", "x", "--student-no-film", "a.pt", "--student-no-fusion", "b.pt"]
    )
    assert (args.student_no_film, args.student_no_fusion) == ("a.pt", "b.pt")


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_an_ablation_run_trains_and_saves_its_variant(name, tmp_path):
    from interp4d_lite.models import Teacher, TeacherConfig
    from interp4d_lite.train.checkpoint import load_model

    torch.manual_seed(0)
    teacher = Teacher(TeacherConfig(encoder_channels=(4, 8, 8, 8), decoder_channels=(8, 4, 4), fused_channels=4))
    cfg = DistillConfig(steps=2, batch_size=2, progress=False, log_every=1, model=TINY.to_dict(), distill_refined=False)
    model, hist = fit(name, config=cfg, dataset=Toy(), teacher=teacher.eval(), out_dir=tmp_path)
    key, value = next(iter(ABLATIONS[name].items()))
    assert getattr(model.config, key) == value and model.config.time_hidden == TINY.time_hidden
    assert "distill" in hist[-1] and hist[-1]["distill"] > 0  # distilled like the student
    loaded, info = load_model(tmp_path / f"{name}.pt", device="cpu", model_kind="student")
    assert getattr(loaded.config, key) == value and info["extra"]["recipe"] == name
    assert (loaded.temporal is None) == (name == "student_no_film")
    assert (loaded.fusion is None) == (name == "student_no_fusion")


def test_students_trained_on_shared_targets_equal_students_that_compute_their_own(tmp_path):
    """``with_targets`` caches the teacher targets once (bench_proof trains every distilled student
    on them); a run given that dataset trains exactly as one that computes the targets itself."""
    from interp4d_lite.models import Teacher, TeacherConfig
    from interp4d_lite.train import with_targets
    from interp4d_lite.train.distributed import weight_hash

    torch.manual_seed(0)
    teacher = Teacher(TeacherConfig(encoder_channels=(4, 8, 8, 8), decoder_channels=(8, 4, 4), fused_channels=4))
    cfg = DistillConfig(steps=3, batch_size=2, progress=False, log_every=1, model=TINY.to_dict(), distill_refined=False)
    shared = with_targets("student", Toy(), cfg, teacher=teacher.eval())
    assert shared.has_targets and len(shared) == len(Toy())
    own, hist_own = fit("student", config=cfg, dataset=Toy(), teacher=teacher)
    given, hist_given = fit("student", config=cfg, dataset=shared, teacher=teacher)
    assert weight_hash(own) == weight_hash(given)
    assert [h["loss"] for h in hist_own] == [h["loss"] for h in hist_given]
    plain = Toy()
    assert with_targets("student_nokd", plain, cfg) is plain  # no targets: the dataset as it is


@pytest.fixture
def toy_recipe():
    """A fifth method in one place: a student trained on its own frame only (no smoothness)."""
    recipe = register_recipe(
        Recipe(
            name="student_frame_only",
            model_kind="student",
            config_cls=DistillConfig,
            checkpoint="student_frame_only.pt",
            data="triplets",
            terms=IMAGE_TERMS[:1],
            forward=get_recipe("student_nokd").forward,
            command="train-frame-only",
            description="a student trained on its frame's Charbonnier alone",
        )
    )
    yield recipe
    RECIPES.pop(recipe.name)


def test_a_new_recipe_is_one_registration(toy_recipe, tmp_path, capsys):
    cfg = DistillConfig(steps=4, batch_size=2, progress=False, log_every=1, model=TINY.to_dict())
    model, hist = fit("student_frame_only", config=cfg, dataset=Toy(), out_dir=tmp_path)
    assert (tmp_path / "student_frame_only.pt").exists()
    assert [set(h) - {"step", "lr", "time_s"} for h in hist] == [{"loss", "charb"}] * 4
    assert hist[-1]["loss"] == hist[-1]["charb"]  # weight 1: the loss is the one term
    # the CLI reads the same table: a training command and an evaluate flag appear
    from interp4d_lite.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["evaluate", "--data", "x", "--student-frame-only", "c.pt"])
    assert args.student_frame_only == "c.pt"
    with pytest.raises(SystemExit):
        parser.parse_args(["train-frame-only", "--help"])
    assert "its frame's Charbonnier" in capsys.readouterr().out


def test_teacher_better_with_cached_targets_uses_the_teachers_own_frame(tmp_path):
    """The teacher's frame (its learned mask) is cached beside its fields, not rebuilt with 1 - t."""
    from interp4d_lite.models import Teacher, TeacherConfig
    from interp4d_lite.train.datasets import CachedTargets
    from interp4d_lite.train.loops import _targets_fn

    teacher = Teacher(TeacherConfig(encoder_channels=(4, 8, 8, 8), decoder_channels=(8, 8, 4), fused_channels=4))
    teacher.eval()
    cfg = DistillConfig(teacher_better=True, distill_refined=False)
    fn, channels, _ = _targets_fn(get_recipe("student"), cfg, teacher)
    batch = {k: torch.stack([Toy()[2][k]]) for k in ("I0", "I1", "It", "t")}
    parts = fn(batch)
    assert channels == 7 and len(parts) == 3
    with torch.no_grad():
        image = teacher(batch["I0"], batch["I1"], batch["It"], batch["t"], refine_steps=0)["image"]
    torch.testing.assert_close(parts[2], image)
    item = CachedTargets([dict(Toy()[2])], torch.cat(parts, dim=1))[0]
    assert item["target_image"].shape == (1, *Toy()[2]["I0"].shape[1:])


def test_distill_balance_weights_the_field_distillation_by_motion():
    """distill_balance > 0: the field term is losses.motion_balanced_weights' weighted Charbonnier."""
    from interp4d_lite.losses import field_distillation_loss, motion_balanced_weights
    from interp4d_lite.train.recipes import _field_distill

    target = {"u_t0": torch.zeros(1, 3, 8, 8, 4), "u_t1": torch.zeros(1, 3, 8, 8, 4)}
    target["u_t0"][..., :2, :, :] = 1.5  # a quarter of the voxels move
    out = {"u_t0": torch.zeros(1, 3, 8, 8, 4), "u_t1": torch.zeros(1, 3, 8, 8, 4), "target": target}
    fields = (target["u_t0"], target["u_t1"])
    plain = _field_distill(out, {}, DistillConfig(teacher_better=False))  # every voxel
    balanced = _field_distill(out, {}, DistillConfig(teacher_better=False, distill_balance=0.5))
    torch.testing.assert_close(plain, field_distillation_loss((out["u_t0"], out["u_t1"]), fields))
    w = motion_balanced_weights(fields, threshold=0.5)
    torch.testing.assert_close(balanced, field_distillation_loss((out["u_t0"], out["u_t1"]), fields, weights=w))
    assert balanced.item() > 1.5 * plain.item()


def test_distill_eps_makes_small_field_errors_count_as_squared_ones():
    """distill_eps: the field term's Charbonnier epsilon. At the default every error pulls as hard
    (an absolute error); at 0.5 voxel a static voxel off by 0.01 voxel pulls 50x less than one off
    by 1 voxel, so the still background no longer holds the moving tissue's fields at zero."""
    from interp4d_lite.losses import field_distillation_loss
    from interp4d_lite.train.recipes import _field_distill

    target = {"u_t0": torch.zeros(1, 3, 4, 4, 4), "u_t1": torch.zeros(1, 3, 4, 4, 4)}
    target["u_t0"][0, 0, 0, 0, 0] = 1.0  # one voxel moves by 1 voxel
    u0 = torch.full((1, 3, 4, 4, 4), 0.01, requires_grad=True)  # every other voxel off by 0.01
    out = {"u_t0": u0, "u_t1": torch.zeros(1, 3, 4, 4, 4), "target": target}

    def pulls(cfg):
        (g,) = torch.autograd.grad(_field_distill(out, {}, cfg), u0)
        return g[0, 0, 0, 0, 0].abs().item(), g[0, 0, 1, 1, 1].abs().item()

    moving, static = pulls(DistillConfig())
    assert moving == pytest.approx(static, rel=0.01)
    moving, static = pulls(DistillConfig(distill_eps=0.5))
    assert moving > 40 * static
    loss = _field_distill(out, {}, DistillConfig(distill_eps=0.5))
    torch.testing.assert_close(
        loss, field_distillation_loss((u0, out["u_t1"]), (target["u_t0"], target["u_t1"]), eps=0.5)
    )


def test_the_ablation_checkpoint_has_one_name_on_every_route(tmp_path):
    """``distill_student`` with the distillation off saves ``student_nokd.pt``, as the ``distill``
    command (``--distill-weight 0``) and ``ensure_checkpoint("student_nokd", ...)`` do."""
    from interp4d_lite.train import distill_student

    cfg = DistillConfig(steps=1, batch_size=2, progress=False, log_every=1, model=TINY.to_dict(), distill_weight=0.0)
    distill_student(config=cfg, dataset=Toy(), out_dir=tmp_path)
    assert get_recipe("student_nokd").checkpoint == "student_nokd.pt"
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["student_nokd.pt"]


def test_a_checkpoint_made_with_other_settings_is_named_not_used_silently(tmp_path):
    """A checkpoint carries its config: the benchmarks' ``load_finished`` refuses one made with other
    settings (naming them), ``ensure_checkpoint`` loads it with a warning that names them, and
    resuming one warns too. How long or where a run trains does not count, nor, between two runs
    without distillation, the distillation's own knobs."""
    from interp4d_lite.errors import CheckpointError
    from interp4d_lite.train import ensure_checkpoint, load_finished

    cfg = DistillConfig(steps=2, batch_size=2, progress=False, log_every=1, model=TINY.to_dict(), distill_weight=0.0)
    fit("student_nokd", config=cfg, dataset=Toy(), out_dir=tmp_path)
    path = tmp_path / "student_nokd.pt"
    assert load_finished(path, cfg, "student_nokd") is not None
    assert load_finished(path, cfg.replace(steps=3), "student_nokd") is None  # a longer run: resumed, not finished
    assert load_finished(tmp_path / "none.pt", cfg, "student_nokd") is None
    # moot without distillation, and runtime knobs: the same model
    same = cfg.replace(
        teacher_better=not cfg.teacher_better,
        distill_schedule="cosine",
        device="cpu",
        steps=1,
        teacher_checkpoint="t.pt",
    )
    assert load_finished(path, same, "student_nokd") is not None
    with pytest.raises(CheckpointError, match=r"student_nokd\.pt: made with lr=0\.001 \(asked: 0\.0003\)"):
        load_finished(path, cfg.replace(lr=3e-4), "student_nokd")
    with pytest.warns(UserWarning, match=r"loaded a finished run made with lr=0\.001 \(asked: 0\.0003\)"):
        ensure_checkpoint("student_nokd", tmp_path, config=cfg.replace(lr=3e-4), device="cpu")
    with pytest.warns(UserWarning, match=r"continuing a run made with lr=0\.001 \(asked: 0\.0003\)"):
        fit("student_nokd", config=cfg.replace(lr=3e-4, steps=3), dataset=Toy(), out_dir=tmp_path)
    # with distillation on, its knobs count
    stored = cfg.replace(distill_weight=2.0).to_dict()
    assert DistillConfig(**{**stored, "teacher_better": not stored["teacher_better"]}).differences(stored) == {
        "teacher_better": (stored["teacher_better"], not stored["teacher_better"])
    }


def test_the_distillation_weight_follows_its_schedule_over_the_run():
    """distill_schedule="cosine": the distillation terms' weight falls from its value at the first
    step to 0 at the last (the batch's "progress"); "constant" (the default) keeps it; outside a
    training loop (no progress) it is the weight as configured."""
    from interp4d_lite.models import Student
    from interp4d_lite.train.recipes import weight_schedule

    assert DistillConfig().distill_schedule == "constant"
    assert [weight_schedule("cosine", p) for p in (0.0, 0.5, 1.0)] == pytest.approx([1.0, 0.5, 0.0], abs=1e-12)
    assert weight_schedule("cosine", None) == weight_schedule("constant", 0.9) == 1.0
    with pytest.raises(ValueError, match=r"one of \('constant', 'cosine'\), not 'linear'"):
        weight_schedule("linear", 0.5)

    torch.manual_seed(0)
    batch = _toy_batch()
    g = torch.Generator().manual_seed(1)
    batch.update({f"target_{k}": torch.randn((2, 3, *batch["I0"].shape[2:]), generator=g) for k in ("u_t0", "u_t1")})
    batch["target_image"] = batch[
        "It"
    ].clone()  # a perfect teacher frame: RIFE's mask keeps the voxels the student misses
    net = Student(TINY)
    cfg = DistillConfig(distill_weight=2.0, feature_weight=0.0, distill_schedule="cosine")
    loss = lambda cfg, **extra: float(training_step("student", net, {**batch, **extra}, cfg, teacher=net)[0].detach())  # noqa: E731
    _, parts = training_step("student", net, batch, cfg, teacher=net)
    assert parts["distill"] > 0
    none = loss(cfg.replace(distill_weight=0.0))
    assert loss(cfg) == pytest.approx(none + 2.0 * parts["distill"], rel=1e-5)  # no progress: the full weight
    assert loss(cfg, progress=0.0) == pytest.approx(loss(cfg), rel=1e-6)
    assert loss(cfg, progress=0.5) == pytest.approx(none + 1.0 * parts["distill"], rel=1e-5)
    assert loss(cfg, progress=1.0) == pytest.approx(none, rel=1e-6)
    assert loss(cfg.replace(distill_schedule="constant"), progress=1.0) == pytest.approx(loss(cfg), rel=1e-6)


def test_a_training_batch_carries_the_runs_progress():
    """train.loops' batch of step s holds s / steps, what the scheduled weights read."""
    from interp4d_lite.train import loops
    from interp4d_lite.train.distributed import DistEnv
    from interp4d_lite.train.sampling import StepSampler

    ds = Toy()
    cfg = DistillConfig(steps=8, crop_shape=None, flip_axes=())
    sampler = StepSampler(len(ds), cfg.batch_size, seed=0)
    assert [loops._batch(ds, sampler, s, cfg, DistEnv())["progress"] for s in (0, 4, 7)] == [0.0, 0.5, 0.875]


def test_teacher_better_without_the_teachers_frame_says_what_the_batch_lacks():
    """A hand-made batch with the teacher's fields but not its frame, and teacher_better on: a clear
    error naming the missing key, not an AttributeError deep in the loss."""
    from interp4d_lite.models import Student

    batch = _toy_batch()
    zeros = torch.zeros((2, 3, *batch["I0"].shape[2:]))
    batch.update(target_u_t0=zeros, target_u_t1=zeros)
    net = Student(TINY)
    with pytest.raises(ValueError, match="needs 'target_image'"):
        training_step("student", net, batch, DistillConfig(teacher_better=True), teacher=net)
    batch["target_image"] = batch["It"]  # with it, the step runs
    loss, _ = training_step("student", net, batch, DistillConfig(teacher_better=True), teacher=net)
    assert torch.isfinite(loss)
