"""Training loops: exact resume, loss goes down, configs round-trip, flips keep fields right."""

import numpy as np
import pytest
import torch

torch.set_num_threads(1)  # tiny volumes: threads only add contention on a shared CPU

from interp4d_lite.models import Student, StudentConfig, warp
from interp4d_lite.train import DistillConfig, TeacherTrainConfig, train_loop
from interp4d_lite.train.distributed import DistEnv
from interp4d_lite.train.recipes import training_step
from interp4d_lite.train.sampling import StepSampler, augment_sample

TINY = StudentConfig(encoder_channels=(4, 8, 8, 8), decoder_channels=(8, 8, 4), fused_channels=4, time_hidden=8)
SHAPE = (12, 12, 8)


def _blob(shift):
    x, y, z = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in SHAPE], indexing="ij")
    return np.exp(-((x - 5 - shift) ** 2 + (y - 6) ** 2 + (z - 4) ** 2) / 8).astype(np.float32)


class Toy(torch.utils.data.Dataset):
    """A blob moving along x with a non-linear course (t^2): triplets like TripletDataset's."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        t = (i + 1) / 7
        d = lambda s: torch.from_numpy(_blob(s))[None]
        u = torch.zeros(3, *SHAPE)
        return {
            "I0": d(0),
            "I1": d(3),
            "It": d(3 * t * t),
            "t": torch.tensor(t),
            "u_t0": u - 3 * t * t,
            "u_t1": u + 3 - 3 * t * t,
        }


def _run(tmp, steps=20, stop_at=None, resume=True):
    torch.manual_seed(0)
    cfg = DistillConfig(
        steps=steps, batch_size=2, lr=3e-3, crop_shape=(8, 8, 8), progress=False, log_every=5, w_ncc=0.0
    )
    model = Student(TINY)
    step_fn = lambda net, b: training_step("student", net, b, cfg)
    return train_loop(
        model_kind="student",
        model=model,
        model_config=TINY.to_dict(),
        dataset=Toy(),
        step_fn=step_fn,
        cfg=cfg,
        env=DistEnv(),
        checkpoint_path=tmp / "student.pt",
        resume=resume,
        stop_at=stop_at,
    )


def test_resume_gives_same_weights_as_straight_run(tmp_path):
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a, hist_a = _run(a_dir)
    _run(b_dir, stop_at=10)  # "interrupted" after 10 steps, checkpoint written
    assert torch.load(b_dir / "student.pt", weights_only=True)["step"] == 10
    b, hist_b = _run(b_dir)  # resumes at step 10, runs 10 more
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert [h["loss"] for h in hist_a] == [h["loss"] for h in hist_b]
    assert hist_a[-1]["loss"] < hist_a[0]["loss"]  # it learns
    assert (b_dir / "student_history.json").exists()


def test_step_sampler_is_a_function_of_step():
    s1, s2 = StepSampler(7, 2, seed=3), StepSampler(7, 2, seed=3)
    seq = [s1.indices(i) for i in range(12)]
    assert [s2.indices(i) for i in reversed(range(12))][::-1] == seq
    # two ranks see disjoint shards of an epoch
    r0, r1 = StepSampler(8, 2, seed=0, rank=0, world_size=2), StepSampler(8, 2, seed=0, rank=1, world_size=2)
    assert not set(r0.indices(0) + r0.indices(1)) & set(r1.indices(0) + r1.indices(1))


def test_flips_negate_field_channel():
    smp = Toy()[3]
    u = smp["u_t0"].clone()
    u[1] = torch.linspace(-1, 1, SHAPE[1])[None, :, None]
    smp["It"] = warp(smp["I0"][None], u[None])[0]
    smp["u_t0"] = u
    for seed in range(6):
        o = augment_sample(smp, np.random.default_rng(seed), crop_shape=(10, 10, 8))
        assert o["I0"].shape == (1, 10, 10, 8) and o["u_t0"].shape == (3, 10, 10, 8)
        err = (warp(o["I0"][None], o["u_t0"][None])[0] - o["It"])[:, 2:-2, 2:-2, 2:-2].abs().max()
        assert err < 1e-4


def test_config_roundtrip():
    cfg = TeacherTrainConfig(steps=5, crop_shape=(8, 8, 8), model={"fused_channels": 4})
    assert TeacherTrainConfig.from_dict(cfg.to_dict()) == cfg


def test_precision_ignored_on_cpu_with_warning(tmp_path):
    """fp16 is CUDA's (bf16 autocasts on CPU: tests/test_speed.py)."""
    cfg = DistillConfig(steps=1, batch_size=1, progress=False, precision="fp16", w_ncc=0.0)
    model = Student(TINY)
    step_fn = lambda net, b: training_step("student", net, b, cfg)
    with pytest.warns(UserWarning, match="only used on CUDA"):
        train_loop(
            model_kind="student",
            model=model,
            model_config=TINY.to_dict(),
            dataset=Toy(),
            step_fn=step_fn,
            cfg=cfg,
            env=DistEnv(),
        )


TTINY = {"encoder_channels": [4, 8, 8, 8], "decoder_channels": [8, 8, 4], "fused_channels": 4}
RTINY = {"encoder_channels": [4, 8, 8], "decoder_channels": [8, 8, 4], "final_channels": [4]}


@pytest.mark.slow
def test_cli_end_to_end_on_phantoms(tmp_path, capsys):
    """phantom -> train-teacher -> train-baseline -> distill (on/off) -> evaluate -> interpolate."""
    import json

    import nibabel as nib

    from interp4d_lite.cli import main
    from interp4d_lite.data.phantoms import write_phantom_dataset

    data, run = tmp_path / "data", tmp_path / "run"
    write_phantom_dataset(data, phantom="cardiac", n_patients=4, shape=(16, 16, 12), n_frames=8, seed=1)
    common = [
        "--data",
        str(data),
        "--volume-shape",
        "16",
        "16",
        "12",
        "--steps",
        "4",
        "--out",
        str(run),
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main(["train-teacher", *common, "--model-config", json.dumps(TTINY)]) == 0
    assert main(["train-baseline", *common, "--model-config", json.dumps(RTINY)]) == 0
    stiny = json.dumps({**{k: TTINY[k] for k in TTINY}, "time_hidden": 8})
    assert main(["distill", *common, "--teacher", str(run / "teacher.pt"), "--model-config", stiny]) == 0
    assert main(["distill", *common, "--distill-weight", "0", "--model-config", stiny]) == 0
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(data),
                "--volume-shape",
                "16",
                "16",
                "12",
                "--out",
                str(run / "eval"),
                "--baseline",
                str(run / "baseline.pt"),
                "--teacher",
                str(run / "teacher.pt"),
                "--student",
                str(run / "student.pt"),
                "--student-nokd",
                str(run / "student_nokd.pt"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    summary = json.loads((run / "eval" / "summary.json").read_text())
    methods = {r["method"] for r in summary}
    expected = {"linear_blend", "registered_linear_motion", "linear_motion", "teacher", "student", "student_nokd"}
    assert methods == {*expected, "true_fields"}
    assert (run / "eval" / "metrics.csv").exists()
    ck = torch.load(run / "student.pt", weights_only=True)
    assert ck["split"]["test"] and not set(ck["split"]["test"]) & set(ck["split"]["train"])
    src = next(data.glob("*/*_4d.nii.gz"))
    out = tmp_path / "interp.nii.gz"
    assert (
        main(
            [
                "interpolate",
                "--checkpoint",
                str(run / "student.pt"),
                "--input",
                str(src),
                "--frames",
                "0",
                "3",
                "--n",
                "2",
                "--out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert nib.load(out).shape == nib.load(src).shape[:3] + (2,)


def test_fusion_weights_say_where_a_fusion_puts_its_weight(cardiac_root):
    from conftest import CARDIAC_SHAPE

    from interp4d_lite.data import discover_patients, load_patient, load_real_cine
    from interp4d_lite.models import build_model
    from interp4d_lite.train import fusion_weights

    patient = load_patient(discover_patients(cardiac_root)[0], volume_shape=CARDIAC_SHAPE)
    torch.manual_seed(0)
    for options in ({}, {"fusion": "fields"}):
        w = fusion_weights(build_model("student", options), patient)
        assert set(w) == {"moving", "static", "spatial_sd"} and all(len(v) == 3 for v in w.values())
        assert sum(w["moving"]) == pytest.approx(1, abs=1e-5) and sum(w["static"]) == pytest.approx(1, abs=1e-5)
    assert max(w["spatial_sd"]) > 0.01  # the field-space fusion's weights differ between voxels from the start
    finest = fusion_weights(build_model("student", {"fusion": "finest"}), patient)
    assert finest["moving"] == [0.0, 0.0, 1.0] and finest["spatial_sd"] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="pig_cine_lax has none"):
        fusion_weights(build_model("student", {}), load_real_cine())
