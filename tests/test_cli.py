"""CLI: --help explains each command; wrong arguments give one line and exit 2."""

import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch

torch.set_num_threads(1)  # tiny volumes: threads only add contention on a shared CPU

from interp4d_lite.cli import main
from interp4d_lite.models import Student, StudentConfig, Teacher, TeacherConfig
from interp4d_lite.train.checkpoint import save_checkpoint

TINY = StudentConfig(encoder_channels=(4, 8, 8, 8), decoder_channels=(8, 8, 4), fused_channels=4, time_hidden=8)
TTINY = TeacherConfig(encoder_channels=(4, 8, 8, 8), decoder_channels=(8, 8, 4), fused_channels=4)


@pytest.mark.parametrize("cmd", ["train-teacher", "train-baseline", "distill", "evaluate", "interpolate"])
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "usage: interp4d-lite " + cmd in text and len(text) > 400


@pytest.fixture
def files(tmp_path):
    s, t = tmp_path / "student.pt", tmp_path / "teacher.pt"
    save_checkpoint(s, model_kind="student", model=Student(TINY), model_config=TINY.to_dict())
    save_checkpoint(t, model_kind="teacher", model=Teacher(TTINY), model_config=TTINY.to_dict())
    src = tmp_path / "x.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((9, 8, 6, 4)).astype(np.float32), np.eye(4)), src)
    bad = tmp_path / "broken.pt"
    bad.write_bytes(s.read_bytes()[:100])
    return {"student": s, "teacher": t, "src": src, "bad": bad, "out": tmp_path / "o.nii.gz", "dir": tmp_path}


def _err(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    return err


def test_interpolate_errors(files, capsys):
    base = ["interpolate", "--out", str(files["out"]), "--device", "cpu"]
    src = ["--input", str(files["src"])]
    ck = ["--checkpoint", str(files["student"])]
    assert "missing.nii.gz: file not found" in _err(
        base + ck + ["--input", "missing.nii.gz", "--frames", "0", "1", "--n", "2"], capsys
    )
    assert "frame index 7 out of range" in _err(base + ck + src + ["--frames", "0", "7", "--n", "2"], capsys)
    assert "[0, 1]" in _err(base + ck + src + ["--frames", "0", "1", "--times", "0.5", "1.5"], capsys)
    assert "needs --frames" in _err(base + ck + src + ["--n", "2"], capsys)
    msg = _err(base + ["--checkpoint", str(files["teacher"])] + src + ["--frames", "0", "1", "--n", "2"], capsys)
    assert "teacher.pt" in msg and "expected 'student'" in msg
    assert "broken.pt" in _err(
        base + ["--checkpoint", str(files["bad"])] + src + ["--frames", "0", "1", "--n", "2"], capsys
    )
    assert "nope.pt: checkpoint not found" in _err(
        base + ["--checkpoint", "nope.pt"] + src + ["--frames", "0", "1", "--n", "2"], capsys
    )


def test_train_errors(files, capsys):
    assert "data directory not found" in _err(["train-teacher", "--data", str(files["dir"] / "none")], capsys)
    assert "needs --teacher" in _err(["distill", "--data", str(files["dir"])], capsys)
    assert "teacher checkpoint not found" in _err(
        ["distill", "--data", str(files["dir"]), "--teacher", "no.pt"], capsys
    )


@pytest.mark.slow
def test_console_script_one_line(files):
    exe = [
        sys.executable,
        "-m",
        "interp4d_lite.train",
        "interpolate",
        "--checkpoint",
        str(files["teacher"]),
        "--input",
        str(files["src"]),
        "--frames",
        "0",
        "1",
        "--n",
        "1",
        "--out",
        str(files["out"]),
    ]
    r = subprocess.run(exe, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "expected 'student'" in r.stderr


@pytest.mark.parametrize(
    "cmd, cfg_name",
    [("train-teacher", "TeacherTrainConfig"), ("train-baseline", "BaselineTrainConfig"), ("distill", "DistillConfig")],
)
def test_flags_come_from_the_config_dataclasses(cmd, cfg_name):
    """Every config field has a flag whose default is the field's default (written once, in
    train/config.py), and the flags of earlier versions still parse to the same config."""
    import dataclasses

    from interp4d_lite.cli import build_parser
    from interp4d_lite.train import config as C
    from interp4d_lite.train.cli import config_from_args

    cls = getattr(C, cfg_name)
    parser = build_parser()
    args = parser.parse_args([cmd, "--data", "d"])
    assert config_from_args(args, cls) == cls()
    assert args.checkpoint_every == cls().checkpoint_every
    helptext = parser._subparsers._group_actions[0].choices[cmd].format_help()
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli", True):
            assert f.metadata["help"][:20].split()[0] in helptext, f.name
            assert ("--" + f.name.replace("_", "-")) in helptext, f.name
    old = [
        "--steps",
        "7",
        "--batch-size",
        "3",
        "--lr",
        "0.01",
        "--crop",
        "8",
        "8",
        "8",
        "--no-flip",
        "--seed",
        "4",
        "--device",
        "cpu",
        "--precision",
        "bf16",
        "--deterministic",
        "--checkpoint-every",
        "5",
        "--log-every",
        "2",
        "--no-progress",
        "--model-config",
        '{"time_hidden": 8}',
    ]
    if cmd == "distill":
        old += ["--distill-weight", "0.5", "--feature-weight", "0.1", "--no-teacher-better"]
    cfg = config_from_args(
        parser.parse_args([cmd, "--data", "d", "--out", "o", "--no-resume", "--stop-at", "3", *old]), cls
    )
    want = dict(
        steps=7,
        batch_size=3,
        lr=0.01,
        crop_shape=(8, 8, 8),
        flip_axes=(),
        seed=4,
        device="cpu",
        precision="bf16",
        deterministic=True,
        checkpoint_every=5,
        log_every=2,
        progress=False,
        model={"time_hidden": 8},
    )
    if cmd == "distill":
        want.update(distill_weight=0.5, feature_weight=0.1, teacher_better=False)
    assert cfg == cls(**want)
    # a field added to a config gets its flag without touching the CLI
    cfg = config_from_args(parser.parse_args([cmd, "--data", "d", "--w-smooth", "0.25", "--flip-axes", "0", "2"]), cls)
    assert (cfg.w_smooth, cfg.flip_axes) == (0.25, (0, 2))
    assert cfg.replace(w_smooth=cls().w_smooth, flip_axes=cls().flip_axes) == cls()


def test_bad_model_config_json_is_one_line(tmp_path, capsys):
    msg = _err(["train-teacher", "--data", str(tmp_path), "--model-config", "{nope"], capsys)
    assert "--model-config is not valid JSON" in msg


def test_commands_that_write_check_their_output_first(tmp_path, capsys):
    """phantom --out, download --dest, notebooks DEST and tutorial --run-dir: a path that is a
    file, or lies under one, is a one-line error naming it (exit 2) before anything is written
    or downloaded (the same check as interpolate --out: io_utils.check_output_path)."""
    afile = tmp_path / "notes.txt"
    afile.write_text("a file, not a folder")
    cases = [
        (["phantom", "--out", str(afile)], f"--out {afile}: exists and is not a folder"),
        (["phantom", "--out", str(afile / "sub")], f"--out {afile / 'sub'}: {afile} is not a folder"),
        (["download", "acdc", "--dest", str(afile)], f"--dest {afile}: exists and is not a folder"),
        (["download", "lung4d", "--dest", str(afile / "d")], f"--dest {afile / 'd'}: {afile} is not a folder"),
        (["notebooks", str(afile / "course")], f"{afile / 'course'}: {afile} is not a folder"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)
    assert afile.read_text() == "a file, not a folder" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_tutorial_run_dir_is_checked_before_any_notebook(tmp_path, capsys):
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    assert main(["tutorial", "--run-dir", str(afile), "--smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tutorial: error: --run-dir {afile}: exists and is not a folder"


def test_check_output_path_accepts_what_the_writers_can_write(tmp_path):
    from interp4d_lite.errors import CLIError
    from interp4d_lite.io_utils import check_output_path

    assert check_output_path(tmp_path / "a.nii") == tmp_path / "a.nii"
    assert check_output_path(str(tmp_path / "b.nii.gz")) == tmp_path / "b.nii.gz"
    assert check_output_path(tmp_path / "new" / "deeper", suffixes=None) == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    assert check_output_path(tmp_path / "t.csv", suffixes=(".csv",), what="--table") == tmp_path / "t.csv"
    for bad in ("a.gz", "a.nii.zip", ".nii", "nifti"):
        with pytest.raises(CLIError, match=r"unsupported file name suffix .*; use \.nii or \.nii\.gz"):
            check_output_path(tmp_path / bad)


@pytest.mark.parametrize("pair", [("1", "2"), ("3", "2")])
def test_evaluate_needs_a_frame_between_the_inputs(files, pair, capsys):
    out = files["dir"] / "eval"
    argv = ["evaluate", "--input", str(files["src"]), "--frames", *pair, "--out", str(out), "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no frame lies between I and J" in err
    assert not (out / "summary.json").exists()


def test_summary_table_is_as_wide_as_its_longest_names():
    from interp4d_lite.train.evaluate import format_summary

    metrics = {"psnr": 30.0, "ncc": 0.9, "ssim": 0.9, "nmse": 0.01, "epe": 0.5, "epe_moving": 0.7, "folding": 0.0}
    rows = [
        {"dataset": name, "scope": "mid", "method": method, "n": 3, **metrics}
        for name, method in (("pig_cine_lax_4d.nii.gz", "registered_linear_motion"), ("x", "linear_blend"))
    ]
    lines = format_summary(rows, scopes=("mid",)).splitlines()
    assert len(lines) == 4 and len({len(line) for line in lines}) == 1  # every row lines up with the head
    assert lines[2].index("30.00") == lines[3].index("30.00")


def test_a_script_takes_a_few_knobs_of_a_config_as_flags():
    """``add_config_args(only=..., unset=True)``: the named knobs alone, with the config's help and
    type, default None; ``given_config_values`` returns the ones given, to apply to a config."""
    import argparse

    from interp4d_lite.train import DistillConfig
    from interp4d_lite.train.cli import add_config_args, given_config_values

    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)  # the script's own flag, of the same name as a knob
    only = ("distill_weight", "teacher_better")
    add_config_args(p, DistillConfig, "distillation", only=only, unset=True)
    assert given_config_values(p.parse_args([]), only) == {}
    a = p.parse_args(["--distill-weight", "8", "--teacher-better", "--seed", "3"])
    assert given_config_values(a, only) == {"distill_weight": 8.0, "teacher_better": True}
    cfg = DistillConfig().replace(**given_config_values(p.parse_args(["--no-teacher-better"]), only))
    assert cfg == DistillConfig(teacher_better=False)
    assert "--w-ncc" not in p.format_help() and "(default: 2.0)" in p.format_help()
