"""The fast training step computes what the reference path does: the same crops and flips, the
same loss and gradients (MONAI's Warp and local NCC as references), the same training with and
without channels-last, and bf16 autocast on CPU close to fp32."""

import numpy as np
import pytest
import torch

torch.set_num_threads(1)  # tiny volumes: threads only add contention on a shared CPU

from interp4d_lite import losses
from interp4d_lite.models import Student, StudentConfig, Teacher, TeacherConfig
from interp4d_lite.models.warp import Warper
from interp4d_lite.train import DistillConfig, TeacherTrainConfig, train_loop
from interp4d_lite.train.distributed import DistEnv, weight_hash
from interp4d_lite.train.recipes import training_step
from interp4d_lite.train.sampling import FIELD_KEYS, augment_sample

TINY = StudentConfig(encoder_channels=(4, 8, 8, 8), decoder_channels=(8, 8, 4), fused_channels=4, time_hidden=8)
TTINY = TeacherConfig(encoder_channels=(4, 8, 8, 8), decoder_channels=(8, 8, 4), fused_channels=4)
SHAPE = (14, 12, 10)


def _sample(seed=0, shape=SHAPE):
    g = torch.Generator().manual_seed(seed)
    img = lambda: torch.rand((1, *shape), generator=g)  # noqa: E731
    field = lambda: torch.randn((3, *shape), generator=g)  # noqa: E731
    return {
        "I0": img(),
        "I1": img(),
        "It": img(),
        "t": torch.tensor(0.4),
        "patient": "p",
        "u_t0": field(),
        "u_t1": field(),
        "target_u_t0": field(),
        "target_u_t1": field(),
        "target_image": img(),
    }


def _by_hand(sample, rng, crop_shape, flip_axes):
    """Crop and flips by plain slicing, volume by volume, with the generator drawn as documented."""
    shape = sample["I0"].shape[1:]
    out = dict(sample)
    sl = [slice(None)] * 3
    if crop_shape is not None:
        crop = [min(c, s) for c, s in zip(crop_shape, shape)]
        start = [int(rng.integers(0, s - c + 1)) for c, s in zip(crop, shape)]
        sl = [slice(a, a + c) for a, c in zip(start, crop)]
    flips = [a for a in flip_axes if rng.random() < 0.5]
    for k, v in sample.items():
        if not torch.is_tensor(v) or v.dim() != 4:
            continue
        v = v[:, sl[0], sl[1], sl[2]]
        if flips:
            v = torch.flip(v, [a + 1 for a in flips])
        v = v.clone()
        if k in FIELD_KEYS:
            for a in flips:
                v[a] = -v[a]
        out[k] = v
    return out


@pytest.mark.parametrize("crop_shape", [None, (8, 12, 6), (20, 5, 10)])
@pytest.mark.parametrize("flip_axes", [(), (0, 1, 2), (2,)])
def test_augment_sample_crops_and_flips_every_volume_alike(crop_shape, flip_axes):
    sample = _sample()
    before = {k: v.clone() for k, v in sample.items() if torch.is_tensor(v)}
    for seed in range(6):
        got = augment_sample(sample, np.random.default_rng(seed), crop_shape, flip_axes)
        want = _by_hand(sample, np.random.default_rng(seed), crop_shape, flip_axes)
        assert set(got) == set(want)
        for k, v in want.items():
            assert (torch.equal(got[k], v) and type(got[k]) is torch.Tensor) if torch.is_tensor(v) else got[k] == v, k
    for k, v in before.items():  # the dataset's item is never changed in place
        assert torch.equal(sample[k], v)


def _batch(seed=0):
    b = {k: v[None] for k, v in _sample(seed).items() if torch.is_tensor(v) and v.dim() == 4}
    other = _sample(seed + 1)
    b = {k: torch.cat([v, other[k][None]]) for k, v in b.items()}
    b["t"] = torch.tensor([0.3, 0.7])
    return b


def _reference_step(recipe, net, batch, cfg, teacher, monkeypatch):
    """``training_step`` with MONAI's Warp in every warper and MONAI's local NCC."""
    import functools

    for m in net.modules():
        if isinstance(m, Warper):
            m.reference = True
    with monkeypatch.context() as mp:
        mp.setattr(losses, "local_ncc_loss", functools.partial(losses.local_ncc_loss, reference=True))
        loss, parts = training_step(recipe, net, batch, cfg, teacher)
    for m in net.modules():
        if isinstance(m, Warper):
            m.reference = False
    return loss, parts


@pytest.mark.parametrize("recipe", ["teacher", "student"])
def test_training_step_gives_the_reference_loss_and_gradients(recipe, monkeypatch):
    """The default step (whole-tensor warps, box-sum local NCC) against MONAI's kernels: the same
    loss and terms, the same gradients up to float rounding."""
    torch.manual_seed(0)
    if recipe == "teacher":
        net, teacher, cfg = Teacher(TTINY), None, TeacherTrainConfig()
    else:
        net, teacher, cfg = Student(TINY), Teacher(TTINY).eval(), DistillConfig()
    batch = _batch()
    results = []
    for reference in (False, True):
        net.zero_grad(set_to_none=True)
        if reference:
            loss, parts = _reference_step(recipe, net, batch, cfg, teacher, monkeypatch)
        else:
            loss, parts = training_step(recipe, net, batch, cfg, teacher)
        loss.backward()
        results.append((loss.detach(), parts, {n: p.grad.clone() for n, p in net.named_parameters()}))
    (loss, parts, grads), (ref_loss, ref_parts, ref_grads) = results
    assert set(parts) == set(ref_parts) and {"ncc", "warped", "target" if recipe == "teacher" else "distill"} <= set(
        parts
    )
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-7)
    for k in parts:
        assert parts[k] == pytest.approx(ref_parts[k], rel=1e-6, abs=1e-7), k
    for n, g in grads.items():
        torch.testing.assert_close(g, ref_grads[n], rtol=1e-4, atol=1e-5 * float(ref_grads[n].abs().max()) + 1e-12)


class _Toy(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        s = _sample(i, shape=(26, 24, 16))
        return {k: s[k] for k in ("I0", "I1", "It")} | {"t": torch.tensor((i + 1) / 5)}


def _train(**knobs):
    """Four steps of the student without distillation on 24x24x16 crops (its coarsest level
    3x3x2: on grids of 1-2 voxels oneDNN's bf16 weight gradients are not reliable, torch 2.13)."""
    torch.manual_seed(0)
    cfg = DistillConfig(
        steps=4, batch_size=2, lr=3e-3, crop_shape=(24, 24, 16), progress=False, log_every=1, **knobs
    )  # fmt: skip
    model = Student(TINY)
    return train_loop(
        model_kind="student",
        model=model,
        model_config=TINY.to_dict(),
        dataset=_Toy(),
        step_fn=lambda net, b: training_step("student_nokd", net, b, cfg),
        cfg=cfg,
        env=DistEnv(),
    )


def test_channels_last_trains_as_channels_first():
    """channels_last (the CPU default) changes the memory layout only: the same losses and weights
    to float rounding, and the trained model comes back in the default layout."""
    fast, hist = _train(channels_last=True)
    slow, ref_hist = _train(channels_last=False)
    for a, b in zip(hist, ref_hist):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    for (n, p), q in zip(fast.state_dict().items(), slow.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)
        assert p.is_contiguous(), n
    assert weight_hash(fast) != "" and len(hist) == 4


def test_bf16_autocast_on_cpu_stays_close_to_fp32():
    """precision='bf16' autocasts on CPU (no warning) and trains to losses close to fp32's."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _, hist = _train(precision="bf16")
    _, ref = _train()
    for a, b in zip(hist, ref):
        assert a["loss"] == pytest.approx(b["loss"], rel=2e-2)
    assert any(a["loss"] != b["loss"] for a, b in zip(hist, ref))  # it did run in bf16


def test_warper_samples_half_precision_features_at_float32_positions():
    img = torch.rand(1, 2, 40, 9, 7)
    u = torch.full((1, 3, 40, 9, 7), 0.3)
    out = Warper()(img.bfloat16(), u)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, Warper()(img.bfloat16().float(), u))
