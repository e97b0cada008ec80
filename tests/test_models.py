"""Student, Teacher and RegistrationNet: shapes, gradients, determinism, the
encode-once/decode-many contract, config round trips."""

import json

import pytest
import torch

from interp4d_lite.models import (
    MODEL_REGISTRY,
    RegistrationConfig,
    RegistrationNet,
    Student,
    StudentConfig,
    Teacher,
    TeacherConfig,
    build_model,
    count_parameters,
    linear_blend,
)

KEYS = {"image", "u_t0", "u_t1", "mask", "warped0", "warped1", "features", "scale_weights"}


def _pair(shape, b=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand((b, 1, *shape), generator=g),
        torch.rand((b, 1, *shape), generator=g),
        torch.rand((b, 1, *shape), generator=g),
    )


@pytest.fixture(scope="module")
def student():
    torch.manual_seed(0)
    return Student(StudentConfig()).eval()


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return Teacher(TeacherConfig()).eval()


def test_default_sizes():
    s, t, r = Student(), Teacher(), RegistrationNet()
    assert count_parameters(s) <= 2_000_000
    assert count_parameters(t) >= count_parameters(s)  # at least as capable: same family plus I_t
    assert 100_000 <= count_parameters(r) <= 300_000  # VoxelMorph-sized


@pytest.mark.parametrize("shape", [(32, 32, 16), (40, 56, 24), (19, 13, 9)])
def test_student_and_teacher_shapes_finite(student, teacher, shape):
    I0, I1, It = _pair(shape, b=2)
    with torch.no_grad():
        s = student(I0, I1, torch.tensor([0.25, 0.75]))
        t = teacher(I0, I1, It, 0.5)
    for out in (s, t):
        assert set(out) == KEYS
        assert out["image"].shape == (2, 1, *shape) and out["mask"].shape == (2, 1, *shape)
        for k in ("u_t0", "u_t1"):
            assert out[k].shape == (2, 3, *shape)
        assert out["scale_weights"].shape == (2, 3, *shape)
        torch.testing.assert_close(out["scale_weights"].sum(1), torch.ones(2, *shape), atol=1e-5, rtol=0)
        assert all(torch.isfinite(v).all() for k, v in out.items() if k != "features")
        assert ((out["mask"] > 0) & (out["mask"] < 1)).all()
    # feature distillation needs equal shapes level by level, coarse -> fine
    assert [f.shape for f in s["features"]] == [f.shape for f in t["features"]]
    assert len(s["features"]) == 3
    assert all(a.shape[2] < b.shape[2] for a, b in zip(s["features"], s["features"][1:]))


@pytest.mark.parametrize("shape", [(32, 32, 3), (40, 36, 10)])
def test_every_model_keeps_the_shape_of_a_thin_stack(student, teacher, shape):
    """A short-axis cine has few, thick slices: every model pads each axis internally to its
    pyramid's multiple (8 for the student and teacher, 16 for the registration U-Net, with
    blocks.pad_to_multiple) and crops back, so 3 or 10 slices come back as 3 or 10."""
    from interp4d_lite.interpolate import interpolate_volumes
    from interp4d_lite.models import LinearMotionBaseline

    torch.manual_seed(0)
    I0, I1, It = _pair(shape)
    reg = RegistrationNet().eval()
    with torch.no_grad():
        outs = {
            "student": student(I0, I1, 0.4),
            "teacher": teacher(I0, I1, It, 0.4),  # eval mode: includes the instance optimisation
            "linear_motion": LinearMotionBaseline(reg)(I0, I1, 0.4),
        }
        endpoints = reg(I0, I1)
    for name, out in outs.items():
        assert out["image"].shape == (1, 1, *shape), name
        assert out["u_t0"].shape == out["u_t1"].shape == (1, 3, *shape), name
        assert torch.isfinite(out["image"]).all() and torch.isfinite(out["u_t0"]).all(), name
    assert endpoints["u_01"].shape == endpoints["u_10"].shape == (1, 3, *shape)
    # untrained, the student is the linear blend on the input's own grid (nothing shifted by the padding)
    blend = linear_blend(I0, I1, torch.tensor([0.4]))["image"]
    assert (outs["student"]["image"] - blend).abs().max() < 0.05
    frames = interpolate_volumes(student, I0[0, 0].numpy(), I1[0, 0].numpy(), [0.25, 0.5])
    assert frames.shape == (2, *shape)


def test_student_at_init_is_close_to_linear_blend(student):
    """Priors: fields start near zero and the mask at 1 - t, so an untrained student
    behaves like the linear blend (training only learns corrections)."""
    I0, I1, _ = _pair((24, 24, 16))
    t = torch.tensor([0.3])
    with torch.no_grad():
        out = student(I0, I1, t)
    ref = linear_blend(I0, I1, t)["image"]
    assert (out["image"] - ref).abs().max() < 0.05
    assert (out["mask"] - 0.7).abs().max() < 0.05


def test_t_reaches_the_fields(student):
    I0, I1, _ = _pair((24, 24, 16))
    with torch.no_grad():
        a = student(I0, I1, torch.tensor([0.1]))
        b = student(I0, I1, torch.tensor([0.9]))
    assert (a["u_t0"] - b["u_t0"]).abs().max() > 1e-6
    assert (a["features"][0] - b["features"][0]).abs().max() > 1e-6  # FiLM at the coarsest level


@pytest.mark.parametrize("model_kind", ["student", "teacher", "registration"])
def test_gradients_reach_every_parameter(model_kind):
    torch.manual_seed(0)
    model = build_model(model_kind, {})
    I0, I1, It = _pair((24, 16, 16))
    if model_kind == "student":
        out = model(I0, I1, torch.tensor([0.4]))
        loss = (out["image"] - It).abs().mean() + out["u_t0"].pow(2).mean() + out["u_t1"].pow(2).mean()
    elif model_kind == "teacher":
        out = model(I0, I1, It, torch.tensor([0.5]))
        loss = (out["image"] - It).abs().mean() + out["u_t0"].pow(2).mean() + out["u_t1"].pow(2).mean()
    else:
        out = model(I0, I1)
        loss = out["u_01"].pow(2).mean() + out["u_10"].pow(2).mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient reached: {missing}"


def test_same_seed_same_output():
    I0, I1, It = _pair((24, 24, 16))
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        s, t = Student(), Teacher()
        with torch.no_grad():
            outs.append((s(I0, I1, torch.tensor([0.3]))["image"], t(I0, I1, It, 0.5)["image"]))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    torch.manual_seed(124)
    with torch.no_grad():
        other = Student()(I0, I1, torch.tensor([0.3]))["image"]
    assert not torch.equal(other, outs[0][0])


def test_decode_batch_of_timestamps_equals_separate_calls(student):
    I0, I1, _ = _pair((40, 56, 24))
    ts = torch.tensor([0.0, 0.2, 0.45, 0.8, 1.0])
    with torch.no_grad():
        feats = student.encode(I0, I1)  # B == 1, broadcast to N == 5
        batch = student.decode(feats, ts)
        singles = [student.decode(feats, ts[i : i + 1]) for i in range(5)]
    for k in ("image", "u_t0", "u_t1", "mask", "scale_weights"):
        assert batch[k].shape[0] == 5
        torch.testing.assert_close(batch[k], torch.cat([o[k] for o in singles]), atol=1e-5, rtol=1e-5)
    for lvl in range(3):
        torch.testing.assert_close(
            batch["features"][lvl], torch.cat([o["features"][lvl] for o in singles]), atol=1e-5, rtol=1e-5
        )
    # decoding in chunks (the default) or all at once gives the same result
    whole = Student(StudentConfig(decode_chunk=0)).eval()
    whole.load_state_dict(student.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(whole.decode(feats, ts)["image"], batch["image"], atol=1e-5, rtol=1e-5)


def test_decode_with_batch_equal_to_timestamps(student):
    I0, I1, _ = _pair((24, 24, 16), b=2)
    ts = torch.tensor([0.3, 0.6])
    with torch.no_grad():
        both = student(I0, I1, ts)
        first = student(I0[:1], I1[:1], ts[:1])
        scalar = student(I0, I1, 0.3)  # one value broadcast to the batch
    torch.testing.assert_close(both["image"][:1], first["image"], atol=1e-5, rtol=1e-5)
    assert scalar["image"].shape == (2, 1, 24, 24, 16)
    with pytest.raises(ValueError, match="timestamps"):
        student(I0, I1, torch.tensor([0.1, 0.2, 0.3]))


@pytest.mark.parametrize("model_kind", sorted(MODEL_REGISTRY))
def test_config_roundtrip_rebuilds_model(model_kind):
    model_cls, config_cls = MODEL_REGISTRY[model_kind]
    cfg = config_cls()
    d = json.loads(json.dumps(cfg.to_dict()))  # plain JSON types only
    assert config_cls.from_dict(d) == cfg
    torch.manual_seed(0)
    a = model_cls(cfg)
    b = build_model(model_kind, d)
    b.load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="unknown keys"):
        config_cls.from_dict({**d, "nonsense": 1})
    with pytest.raises(ValueError, match="unknown model kind"):
        build_model("nonsense", {})


def test_smaller_config_builds_and_runs():
    cfg = StudentConfig(encoder_channels=(4, 8, 16), decoder_channels=(16, 8), fused_channels=8)
    s = Student(cfg)
    t = Teacher(TeacherConfig(encoder_channels=(4, 8, 16), decoder_channels=(16, 8), fused_channels=8))
    I0, I1, It = _pair((20, 12, 10))
    with torch.no_grad():
        a, b = s(I0, I1, torch.tensor([0.5])), t(I0, I1, It, 0.5)
    assert a["scale_weights"].shape == (1, 2, 20, 12, 10)
    assert [f.shape for f in a["features"]] == [f.shape for f in b["features"]]


def test_registration_net_fields():
    torch.manual_seed(0)
    reg = RegistrationNet(RegistrationConfig())
    I0, I1, _ = _pair((40, 56, 24), b=2)
    with torch.no_grad():
        f = reg(I0, I1)
    assert set(f) == {"u_01", "u_10"}
    assert f["u_01"].shape == f["u_10"].shape == (2, 3, 40, 56, 24)
    assert f["u_01"].abs().max() < 0.1  # starts near the identity


@pytest.mark.slow
def test_teacher_learns_a_shift_quickly():
    """A few optimisation steps on one pair shifted by 2 voxels: the teacher's frame
    gets clearly better than the linear blend (a learning sanity check)."""
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 32)
    blob = torch.exp(
        -((x.view(-1, 1, 1) ** 2 + x.view(1, -1, 1) ** 2) / 0.15 + torch.linspace(-1, 1, 16).view(1, 1, -1) ** 2 / 0.5)
    )
    I0 = blob[None, None]
    I1 = torch.roll(I0, 4, dims=2)
    It = torch.roll(I0, 2, dims=2)
    teacher = Teacher()
    opt = torch.optim.Adam(teacher.parameters(), lr=2e-3)
    blend_err = (linear_blend(I0, I1, torch.tensor([0.5]))["image"] - It).abs().mean().item()
    for _ in range(60):
        out = teacher(I0, I1, It, 0.5)
        loss = (out["image"] - It).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * blend_err, (loss.item(), blend_err)


@pytest.mark.slow
def test_student_learns_non_linear_timing():
    """A blob moves along x as d * t^2 (ease-in). Linear motion with the exact endpoint
    fields puts it at d/2 for t = 0.5 (truth: d/4); a student trained on frames at random
    t must learn the timing from t alone and beat that."""
    from interp4d_lite.metrics import psnr
    from interp4d_lite.models import linear_motion_interpolate

    shape, d = (32, 24, 16), 6.0
    grids = torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in shape], indexing="ij")

    def frame(t):
        t = torch.as_tensor(t, dtype=torch.float32).view(-1, 1, 1, 1)
        cx = 12.0 + d * t**2
        r2 = ((grids[0] - cx) / 3.0) ** 2 + ((grids[1] - 12.0) / 4.0) ** 2 + ((grids[2] - 8.0) / 3.0) ** 2
        return torch.exp(-r2 / 2)[:, None]  # (N, 1, X, Y, Z)

    I0, I1 = frame(0.0), frame(1.0)
    torch.manual_seed(0)
    student = Student()
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)  # 3e-3 diverged on this toy set-up
    gen = torch.Generator().manual_seed(0)
    for _ in range(150):
        t = torch.rand(4, generator=gen)
        out = student.decode(student.encode(I0, I1), t)
        loss = (out["image"] - frame(t)).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    t = torch.tensor([0.5])
    with torch.no_grad():
        pred = student(I0, I1, t)["image"]
    u_10 = torch.zeros(1, 3, *shape)
    u_10[:, 0] = -d
    lin = linear_motion_interpolate(I0, I1, -u_10, u_10, t)["image"]
    p_student, p_linear = psnr(pred, frame(t)), psnr(lin, frame(t))
    print(f"t=0.5: student {p_student:.1f} dB, linear motion with true endpoint fields {p_linear:.1f} dB")
    assert p_student > p_linear + 3.0  # 46.4 vs 27.0 dB at writing


# ---------------------------------------------------------------------- ablations of the paper's blocks
NO_FILM = {"time_conditioning": "channel"}
NO_FUSION = {"fusion": "finest"}
FIELD_FUSION = {"fusion": "fields"}  # an option beside the ablations: the scales' fields fused
VARIANTS = [NO_FILM, NO_FUSION, {**NO_FILM, **NO_FUSION}, FIELD_FUSION]
VARIANT_IDS = ["no_film", "no_fusion", "neither", "field_fusion"]


def _variant(options, seed=0):
    torch.manual_seed(seed)
    return build_model("student", options).eval()


@pytest.mark.parametrize("options", VARIANTS, ids=VARIANT_IDS)
def test_ablated_students_keep_the_interpolator_contract(student, options):
    """Every variant returns the default's keys and shapes, starts near the linear blend, and
    its encode-once/decode-many path (with chunking) equals single decodes."""
    s = _variant(options)
    I0, I1, _ = _pair((19, 13, 9), b=2)
    ts = torch.tensor([0.25, 0.75])
    with torch.no_grad():
        out, ref = s(I0, I1, ts), student(I0, I1, ts)
    assert set(out) == KEYS
    for k in KEYS - {"features"}:
        assert out[k].shape == ref[k].shape, k
        assert torch.isfinite(out[k]).all()
    assert [f.shape for f in out["features"]] == [f.shape for f in ref["features"]]  # feature distillation fits
    torch.testing.assert_close(out["scale_weights"].sum(1), torch.ones(2, 19, 13, 9), atol=1e-5, rtol=0)
    assert (out["image"] - linear_blend(I0, I1, ts)["image"]).abs().max() < 0.05
    assert (out["mask"] - (1 - ts).view(-1, 1, 1, 1, 1)).abs().max() < 0.05
    one = I0[:1], I1[:1]
    many = torch.tensor([0.0, 0.3, 0.6, 1.0])
    with torch.no_grad():
        feats = s.encode(*one)
        batch = s.decode(feats, many)  # decode_chunk 2: two chunks
        singles = torch.cat([s.decode(feats, many[i : i + 1])["image"] for i in range(4)])
        whole = s(one[0].expand(4, -1, -1, -1, -1), one[1].expand(4, -1, -1, -1, -1), many)["image"]
    torch.testing.assert_close(batch["image"], singles, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batch["image"], whole, atol=1e-5, rtol=1e-5)
    assert (batch["u_t0"][0] - batch["u_t0"][-1]).abs().max() > 1e-6  # t reaches the fields


@pytest.mark.parametrize("options", VARIANTS, ids=VARIANT_IDS)
def test_gradients_reach_every_parameter_of_the_ablated_students(options):
    s = _variant(options).train()
    I0, I1, It = _pair((24, 16, 16))
    out = s(I0, I1, torch.tensor([0.4]))
    ((out["image"] - It).abs().mean() + out["u_t0"].pow(2).mean() + out["u_t1"].pow(2).mean()).backward()
    missing = [n for n, p in s.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient reached: {missing}"


def test_channel_variant_has_no_film_and_reads_t_as_one_input_channel(student):
    from interp4d_lite.models import TemporalModulation
    from interp4d_lite.viz.plots import film_parameters

    s = _variant(NO_FILM)
    assert s.temporal is None and not any(isinstance(m, TemporalModulation) for m in s.modules())
    assert not any(n.startswith("temporal.") for n, _ in s.named_parameters())
    film_params = count_parameters(student.temporal)
    extra = sum(lvl.conv1[0].weight[:, :1].numel() for lvl in s.generator.levels)  # one input channel per level
    assert count_parameters(s) == count_parameters(student) - film_params + extra
    for mine, paper in zip(s.generator.levels, student.generator.levels):
        assert mine.conv1[0].in_channels == paper.conv1[0].in_channels + 1
    # the extra channel is t: zeroing its weights makes the output independent of t
    I0, I1, _ = _pair((24, 24, 16))
    with torch.no_grad():
        for lvl in s.generator.levels:
            lvl.conv1[0].weight[:, -1] = 0
        a, b = s(I0, I1, 0.1), s(I0, I1, 0.9)
    torch.testing.assert_close(a["u_t0"], b["u_t0"], atol=0, rtol=0)
    assert (a["mask"] - b["mask"]).abs().max() > 0.1  # only the prior logit(1 - t) still moves
    with pytest.raises(ValueError, match="has no TemporalModulation"):
        film_parameters(s, [0.5])


def test_finest_variant_has_no_fusion_and_reads_only_the_finest_feature(student):
    from interp4d_lite.models import DeformationFusion, FinestLevelHead

    s = _variant(NO_FUSION)
    assert s.fusion is None and not any(isinstance(m, DeformationFusion) for m in s.modules())
    assert isinstance(s.finest_head, FinestLevelHead) and student.finest_head is None
    assert not any(n.startswith("fusion.") for n, _ in s.named_parameters())
    head = s.finest_head.head
    assert head.in_channels == StudentConfig().decoder_channels[-1] and head.out_channels == 7
    I0, I1, _ = _pair((24, 24, 16))
    with torch.no_grad():
        out = s(I0, I1, torch.tensor([0.3]))
        feats = [f.clone() for f in out["features"]]
        delta, logit, w = s.finest_head(feats)
        feats[0].normal_()  # the coarser levels' features do not enter the head
        feats[1].normal_()
        delta2, logit2, w2 = s.finest_head(feats)
    assert torch.equal(delta, delta2) and torch.equal(logit, logit2)
    assert torch.equal(w, w2) and w.shape == (1, 3, 12, 12, 8)
    assert (out["scale_weights"][:, -1] == 1).all() and (out["scale_weights"][:, :-1] == 0).all()


def test_field_space_fusion_mixes_the_scales_fields_with_weights_that_follow_voxels_and_t():
    from interp4d_lite.models import FieldSpaceFusion
    from interp4d_lite.models.blocks import resize, upsample_field

    s = _variant(FIELD_FUSION)
    assert isinstance(s.fusion, FieldSpaceFusion) and s.finest_head is None
    I0, I1, _ = _pair((24, 24, 16))
    with torch.no_grad():
        feats = s.encode(I0, I1)
        t = torch.tensor([0.2])
        features, fields = s.generator(feats["f0"], feats["f1"], modulation=s.temporal(t), batch=1)
        final, logit, w = s.fusion(features, fields, t)
        size = features[-1].shape[2:]
        mixed = sum(w[:, i : i + 1] * upsample_field(u, size) for i, u in enumerate(fields))
        residual = s.fusion.head(
            sum(w[:, i : i + 1] * resize(p(f), size) for i, (p, f) in enumerate(zip(s.fusion.project, features)))
        )
        torch.testing.assert_close(final, mixed + residual[:, :6])
        torch.testing.assert_close(logit, residual[:, 6:])
        _, _, w_late = s.fusion(features, fields, torch.tensor([0.9]))  # same features, another t
    torch.testing.assert_close(w.sum(1), torch.ones_like(w[:, 0]))
    assert (w - w_late).abs().max() > 1e-4  # t enters the scores
    # normalised features: the weights differ between voxels from the start (the paper-style fusion's
    # softmax of small features is nearly the same mix everywhere)
    assert w.std(dim=(2, 3, 4)).min() > 10 * _variant({}).fusion(features)[2].std(dim=(2, 3, 4)).max()


def test_default_student_is_the_paper_student_bit_for_bit():
    """The defaults build the same modules in the same order (same seed: same weights) and
    compute the same graph as the paper's model assembled by hand from its blocks."""
    from interp4d_lite.models import DeformationFeatureGenerator, DeformationFusion, Encoder, TemporalModulation
    from interp4d_lite.models.fusion import synthesize
    from interp4d_lite.models.student import decoded_encoder_channels, log_prior_mask

    cfg = StudentConfig()
    torch.manual_seed(7)
    s = Student(cfg).eval()
    torch.manual_seed(7)
    blocks = torch.nn.ModuleDict(
        {
            "encoder": Encoder(cfg.in_channels, cfg.encoder_channels),
            "temporal": TemporalModulation(cfg.decoder_channels, cfg.time_freqs, cfg.time_hidden),
            "generator": DeformationFeatureGenerator(
                decoded_encoder_channels(cfg.encoder_channels, cfg.decoder_channels), cfg.decoder_channels
            ),
            "fusion": DeformationFusion(cfg.decoder_channels, cfg.fused_channels),
        }
    ).eval()
    ours, theirs = s.state_dict(), blocks.state_dict()
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    I0, I1, _ = _pair((16, 16, 8))
    t = torch.tensor([0.2, 0.7])
    with torch.no_grad():
        out = s(I0, I1, t)
        x = torch.cat([I0, I1])
        pyr = blocks["generator"].lateral(blocks["encoder"](x)[::-1][:3])
        feats, fields = blocks["generator"](
            [f[:1] for f in pyr], [f[1:] for f in pyr], modulation=blocks["temporal"](t), batch=2
        )
        delta, logit, w = blocks["fusion"](feats)
        ref = synthesize(I0, I1, fields[-1] + delta, logit + log_prior_mask(t), w, (16, 16, 8), (16, 16, 8), s.warp)
    for k in ref:
        assert torch.equal(out[k], ref[k]), k


def test_a_checkpoint_without_the_ablation_fields_loads_as_the_paper_student(tmp_path):
    from interp4d_lite.errors import CheckpointError
    from interp4d_lite.train.checkpoint import load_model, save_checkpoint

    torch.manual_seed(0)
    s = Student().eval()
    old = {k: v for k, v in s.config.to_dict().items() if k not in ("time_conditioning", "fusion")}
    assert StudentConfig.from_dict(old) == StudentConfig()
    path = save_checkpoint(tmp_path / "old.pt", model_kind="student", model=s, model_config=old)
    loaded, info = load_model(path, device="cpu", model_kind="student")
    assert loaded.config.time_conditioning == "film" and loaded.config.fusion == "multiscale"
    I0, I1, _ = _pair((16, 16, 8))
    with torch.no_grad():
        assert torch.equal(loaded(I0, I1, 0.4)["image"], s(I0, I1, 0.4)["image"])
    # a variant's checkpoint rebuilds the variant; a wrong value is one clear error naming the file
    v = _variant(NO_FUSION)
    path = save_checkpoint(tmp_path / "v.pt", model_kind="student", model=v, model_config=v.config.to_dict())
    assert load_model(path, device="cpu", model_kind="student")[0].finest_head is not None
    bad = save_checkpoint(tmp_path / "bad.pt", model_kind="student", model=s, model_config={**old, "fusion": "mean"})
    with pytest.raises(CheckpointError, match=r"bad\.pt.*fusion must be one of"):
        load_model(bad, device="cpu", model_kind="student")
    with pytest.raises(ValueError, match="time_conditioning must be one of"):
        StudentConfig(time_conditioning="concat")
