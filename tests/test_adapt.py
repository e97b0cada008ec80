"""Adaptation to one scan: windows outside the target interval, never reading it, the
self-check against the blend, and the CLI (adapt, interpolate with a name and the fallback)."""

import nibabel as nib
import numpy as np
import pytest
import torch

torch.set_num_threads(1)

from interp4d_lite.adapt import (  # noqa: E402
    Window,
    allowed_frames,
    read_scan_frames,
    scan_windows,
    self_check,
    split_windows,
)
from interp4d_lite.cli import main  # noqa: E402

TINY = {"encoder_channels": [4, 8, 8, 8], "decoder_channels": [8, 8, 4], "fused_channels": 4, "time_hidden": 8}


def test_windows_avoid_the_open_interval():
    n, i, j = 12, 0, 5
    assert allowed_frames(n, i, j) == [0, 5, 6, 7, 8, 9, 10, 11]
    ws = scan_windows(n, i, j, cyclic=True)
    assert ws and all(not 0 < f < 5 for w in ws for f in w.frames)
    assert Window(9, 3, 12).frames == [9, 10, 11, 0] and Window(9, 3, 12).b == 0
    assert any(w.frames[-1] == 0 and w.a > 5 for w in ws)  # wraps over the cycle's end
    assert all(w.gap <= 5 for w in ws) and {w.gap for w in ws} >= {2, 5}
    assert Window(5, 5, 10) in scan_windows(10, 0, 5)  # a breath: 50 % -> 0 % the other way round, same spacing
    assert not any(w.a == 0 and w.gap == 5 for w in ws)  # the interval itself is never a window
    # without wrapping, no window uses the last-to-first step
    assert all(w.a + w.gap < n for w in scan_windows(n, i, j, cyclic=False))
    train, held = split_windows(ws, 5, 2)
    assert len(held) == 2 and not set(held) & set(train) and {w.gap for w in held} == {5}


def _series(tmp_path, n=8, nan_inside=(0, 4)):
    """A blob that moves along x over the frames; the frames strictly inside ``nan_inside`` are NaN."""
    x, y, z = np.meshgrid(np.arange(16.0), np.arange(16.0), np.arange(8.0), indexing="ij")
    frames = []
    for k in range(n):
        c = 6 + 3 * np.sin(np.pi * k / n)
        frames.append(100 * np.exp(-((x - c) ** 2 + (y - 8) ** 2 + (z - 4) ** 2) / 10))
    data = np.stack(frames, -1).astype(np.float32)
    lo, hi = nan_inside
    data[..., lo + 1 : hi] = np.nan
    path = tmp_path / "series.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 8.0, 1.0])), str(path))
    return path


def test_reading_touches_only_the_allowed_frames(tmp_path):
    path = _series(tmp_path)
    frames, _, n = read_scan_frames(path, allowed_frames(8, 0, 4))
    assert n == 8 and sorted(frames) == [0, 4, 5, 6, 7]
    assert all(np.isfinite(v).all() and v.min() == 0 and v.max() == 1 for v in frames.values())
    from interp4d_lite.errors import DataError

    with pytest.raises(DataError, match="frame 2 has non-finite voxels"):
        read_scan_frames(path, [2])


@pytest.fixture
def student_ckpt(tmp_path):
    from interp4d_lite.models import build_model
    from interp4d_lite.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = build_model("student", TINY)
    path = tmp_path / "student.pt"
    save_checkpoint(path, model_kind="student", model=model, model_config=model.config.to_dict())
    return path


def test_adapt_cli_never_reads_the_targets_and_reports_the_self_check(tmp_path, student_ckpt, capsys):
    series = _series(tmp_path)  # frames 1..3 are NaN: reading any of them would fail
    out = tmp_path / "adapted.pt"
    args = ["adapt", "--input", str(series), "--frames", "0", "4", "--checkpoint", str(student_ckpt)]
    assert main([*args, "--steps", "3", "--minutes", "0", "--out", str(out), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "adapted student" in text and "linear blend" in text and "dB" in text
    from interp4d_lite.train.checkpoint import load_model

    model, info = load_model(out, device="cpu", model_kind="student")
    assert info["extra"]["recipe"] == "adapt" and info["train_config"]["minutes"] == 0.0
    if "kept the original" in text:  # the fine-tuned student scored lower on the held-out windows: undone
        assert info["extra"]["kept"] == "original" and info["step"] == 0
    else:
        assert info["step"] == 3


def test_adapt_refuses_bad_frames_and_outputs(tmp_path, student_ckpt, capsys):
    series = _series(tmp_path)
    base = ["adapt", "--input", str(series), "--checkpoint", str(student_ckpt)]
    assert main([*base, "--frames", "3", "3", "--out", str(tmp_path / "a.pt")]) == 2
    assert "must differ" in capsys.readouterr().err
    assert main([*base, "--frames", "0", "9", "--out", str(tmp_path / "a.pt")]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main([*base, "--frames", "0", "4", "--out", str(tmp_path / "a.nii.gz")]) == 2
    assert ".pt" in capsys.readouterr().err
    assert main([*base, "--frames", "0", "7", "--out", str(tmp_path / "a.pt")]) == 2
    assert "no window" in capsys.readouterr().err


def test_self_check_scores_the_blend_exactly():
    frames = {k: np.full((8, 8, 4), k / 4, np.float32) for k in range(5)}  # linear in time: the blend is exact

    class Blend(torch.nn.Module):
        def forward(self, I0, I1, t):
            m = t.view(-1, 1, 1, 1, 1)
            return {"image": (1 - m) * I0 + m * I1 + 0.01}

    check = self_check(Blend(), frames, [Window(0, 4, 5)])
    assert check.n_frames == 3 and check.blend_db == float("inf") or check.blend_db > 100
    assert check.model_db == pytest.approx(40.0, abs=0.01) and check.gain_db < 0
    assert "WARNING" in check.line("student")


def test_interpolate_self_check_and_fallback(tmp_path, student_ckpt, capsys):
    series = _series(tmp_path, nan_inside=(0, 0))
    out = tmp_path / "mid.nii.gz"
    args = ["interpolate", "--input", str(series), "--frames", "0", "4", "--n", "3", "--checkpoint", str(student_ckpt)]
    assert main([*args, "--out", str(out), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "self-check on" in text and "linear blend" in text
    assert main([*args, "--out", str(out), "--device", "cpu", "--fallback", "blend"]) == 0
    text = capsys.readouterr().out
    if "WARNING" in text:  # a random student is below the blend: the blend is written
        assert "wrote the linear blend" in text
        data = nib.load(str(out)).get_fdata()
        src = nib.load(str(series)).get_fdata()
        np.testing.assert_allclose(data[..., 1], 0.5 * src[..., 0] + 0.5 * src[..., 4], rtol=1e-5, atol=1e-4)


def test_time_reversed_copies_swap_inputs_t_and_targets():
    from interp4d_lite.adapt import ScanTriplets, TimeReversed
    from interp4d_lite.train.datasets import CachedTargets

    frames = {k: np.full((4, 4, 2), float(k), np.float32) for k in range(4)}
    base = CachedTargets(
        ScanTriplets(frames, [(0, 1, 3, 1 / 3)]), torch.arange(6.0).view(1, 6, 1, 1, 1).expand(1, 6, 4, 4, 2)
    )
    ds = TimeReversed(base)
    fwd, back = ds[0], ds[1]
    assert len(ds) == 2 and ds.has_targets
    assert float(back["I0"].mean()) == 3 and float(back["I1"].mean()) == 0 and float(back["It"].mean()) == 1
    assert float(back["t"]) == pytest.approx(2 / 3)
    torch.testing.assert_close(back["target_u_t0"], fwd["target_u_t1"])
    torch.testing.assert_close(back["target_u_t1"], fwd["target_u_t0"])
