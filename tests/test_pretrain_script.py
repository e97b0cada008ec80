"""scripts/pretrain.py's choices of real training data and its model card, from given numbers."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pretrain(load_script):
    return load_script("scripts/pretrain.py")


def test_real_cines_in_training_follow_the_flags(pretrain):
    real = lambda *argv: pretrain.real_training(pretrain.parse(list(argv)))  # noqa: E731
    assert real() == {
        "cines": ["pig_cine_lax", "scd101", "scd201", "scd301"],
        "left_out": [],
        "share": 0.5,
        "per_cine": 96,
    }
    assert real("--leave-out", "scd201", "--real-only")["cines"] == ["pig_cine_lax", "scd101", "scd301"]
    assert real("--real-only")["share"] == 1.0
    assert real("--real-share", "0") == {"cines": [], "left_out": [], "share": 0.0, "per_cine": 96}
    assert real("--quick")["per_cine"] == 4 and real("--quick", "--real-per-cine", "7")["per_cine"] == 7


def test_student_lr_is_lower_when_real_cines_are_in_training(pretrain):
    from interp4d_lite.train.config import REAL_CINE_LR, DistillConfig

    lr = lambda *argv: pretrain.student_lr(a := pretrain.parse(list(argv)), pretrain.real_training(a))  # noqa: E731
    assert lr() == REAL_CINE_LR < DistillConfig().lr  # the four cines by default
    assert lr("--real-share", "0") is None  # phantoms only: the config's default
    assert lr("--student-lr", "0.002") == 0.002
    assert lr("--real-share", "0", "--student-lr", "0.0005") == 0.0005


def test_model_card_lists_each_real_cine_held_out_or_seen(pretrain, tmp_path):
    info = {
        "data_kind": "cardiac", "seed": 0, "phantom_shape": [128, 128, 10], "phantom_amplitude": 1.0,
        "train_patients": 12, "test_patients": 3, "teacher_steps": 400, "student_steps": 1200,
        "student_config": {"batch_size": 2, "crop_shape": [64, 64, 10], "lr": 0.001, "distill_weight": 1.0},
        "seconds_total": 600.0, "seconds_teacher": 120.0, "command": "python scripts/pretrain.py",
        "hardware": {"cuda": None, "cpu_threads": 2, "machine": "x86_64", "torch": "2.x"},
        "real_training": {"cines": ["pig_cine_lax", "scd101"], "left_out": ["scd201"], "share": 0.5,
                          "per_cine": 96, "samples_per_epoch": 400},
        "metrics": {
            "phantom_test": {"all": {"student": {"psnr": 30.0, "epe_moving": 0.5}}, "mid": {"student": {"psnr": 29.0}}},
            "real_cines": {
                "scd101": {"held_out": False, "all": {"linear_blend": {"psnr": 40.0}, "student": {"psnr": 40.75}}},
                "scd201": {"held_out": True, "all": {"linear_blend": {"psnr": 41.0}, "student": {"psnr": 40.5}}},
            },
        },
    }  # fmt: skip
    (tmp_path / "pretrain_cardiac.json").write_text(json.dumps(info))
    card = pretrain.write_model_card(tmp_path).read_text()
    assert "real cines pig_cine_lax, scd101 (50% of the samples" in card and "left out: scd201" in card
    assert "distillation weight 1.0 (constant) at every voxel" in card  # from before the schedule and the mask
    assert "| scd101 | seen | 40.00 | 40.75 | +0.75 |" in card
    assert "| scd201 | held out | 41.00 | 40.50 | -0.50 |" in card
    assert "their time is not counted" not in card  # the teacher was trained in this run
    assert "on CPU (2 threads, x86_64)" in card
    info["hardware"]["cpu_threads"] = 1
    (tmp_path / "pretrain_cardiac.json").write_text(json.dumps(info))
    assert "on CPU (1 thread, x86_64)" in pretrain.write_model_card(tmp_path).read_text()
    info["teacher_steps_before"] = 400  # a teacher already trained in the work folder, reused
    (tmp_path / "pretrain_cardiac.json").write_text(json.dumps(info))
    card = pretrain.write_model_card(tmp_path).read_text()
    assert "the teacher's first 400 steps were already in the work folder" in card
    assert "**Note**" not in card
    info["note"] = "five processes shared the GPU"  # how the run was made, in the card as given
    (tmp_path / "pretrain_cardiac.json").write_text(json.dumps(info))
    assert "* **Note**: five processes shared the GPU" in pretrain.write_model_card(tmp_path).read_text()
    info["student_config"]["teacher_better"] = True
    (tmp_path / "pretrain_cardiac.json").write_text(json.dumps(info))
    assert (
        "(constant) where the teacher's frame is better (RIFE's mask)"
        in pretrain.write_model_card(tmp_path).read_text()
    )


@pytest.mark.slow
def test_batch_size_reaches_both_configs(pretrain, tmp_path):
    """``--batch-size`` (more samples per step pays on a GPU) is the teacher's and the student's,
    and the record says so; without it both keep the configs' default. ``--teacher-better`` (RIFE's
    mask) reaches the student's config."""
    assert pretrain.parse([]).batch_size is None and pretrain.parse([]).teacher_better is None
    out = tmp_path / "out"
    argv = ["--quick", "--data-kinds", "cardiac", "--real-share", "0", "--device", "cpu", "--threads", "1"]
    pretrain.ROOT = tmp_path  # --quick works under ROOT / "runs"
    try:
        assert pretrain.main([*argv, "--batch-size", "3", "--teacher-better", "--out", str(out)]) == 0
    finally:
        pretrain.ROOT = ROOT
    info = json.loads((tmp_path / "runs" / "pretrain_quick" / "cardiac" / "pretrain_cardiac.json").read_text())
    assert info["teacher_config"]["batch_size"] == info["student_config"]["batch_size"] == 3
    assert info["student_config"]["teacher_better"] is True
