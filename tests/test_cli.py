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
    save_checkpoint(s, kind="student", model=Student(TINY), model_config=TINY.to_dict())
    save_checkpoint(t, kind="teacher", model=Teacher(TTINY), model_config=TTINY.to_dict())
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
    assert "missing.nii.gz: file not found" in _err(base + ck + ["--input", "missing.nii.gz", "--frames", "0", "1", "--n", "2"], capsys)
    assert "frame index 7 out of range" in _err(base + ck + src + ["--frames", "0", "7", "--n", "2"], capsys)
    assert "[0, 1]" in _err(base + ck + src + ["--frames", "0", "1", "--times", "0.5", "1.5"], capsys)
    assert "needs --frames" in _err(base + ck + src + ["--n", "2"], capsys)
    msg = _err(base + ["--checkpoint", str(files["teacher"])] + src + ["--frames", "0", "1", "--n", "2"], capsys)
    assert "teacher.pt" in msg and "expected 'student'" in msg
    assert "broken.pt" in _err(base + ["--checkpoint", str(files["bad"])] + src + ["--frames", "0", "1", "--n", "2"], capsys)
    assert "nope.pt: checkpoint not found" in _err(base + ["--checkpoint", "nope.pt"] + src + ["--frames", "0", "1", "--n", "2"], capsys)


def test_train_errors(files, capsys):
    assert "data directory not found" in _err(["train-teacher", "--data", str(files["dir"] / "none")], capsys)
    assert "needs --teacher" in _err(["distill", "--data", str(files["dir"])], capsys)
    assert "teacher checkpoint not found" in _err(["distill", "--data", str(files["dir"]), "--teacher", "no.pt"], capsys)


@pytest.mark.slow
def test_console_script_one_line(files):
    exe = [sys.executable, "-m", "interp4d_lite.train", "interpolate", "--checkpoint", str(files["teacher"]),
           "--input", str(files["src"]), "--frames", "0", "1", "--n", "1", "--out", str(files["out"])]
    r = subprocess.run(exe, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "expected 'student'" in r.stderr
