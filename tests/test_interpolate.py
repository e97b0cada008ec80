"""`interpolate` keeps the input's grid: odd shapes and non-trivial affines survive; a bad
output path or frame pair is a one-line error before the model is loaded."""

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

torch.set_num_threads(1)  # tiny volumes: threads only add contention on a shared CPU

from interp4d_lite.cli import main
from interp4d_lite.interpolate import interpolate_volumes, parse_times
from interp4d_lite.models import Student, StudentConfig
from interp4d_lite.train.checkpoint import save_checkpoint

TINY = StudentConfig(encoder_channels=(4, 8, 8, 8), decoder_channels=(8, 8, 4), fused_channels=4, time_hidden=8)
SHAPE = (13, 10, 7)  # odd, not a multiple of the pyramid's 8


@pytest.fixture
def student_ckpt(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "student.pt"
    save_checkpoint(path, model_kind="student", model=Student(TINY), model_config=TINY.to_dict())
    return path


def _affine():
    a = np.diag([1.4, 0.9, 3.0, 1.0])
    c, s = np.cos(0.3), np.sin(0.3)
    a[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ a[:3, :3]
    a[:3, 3] = [-40.5, 12.25, 7.0]
    return a


def test_4d_input_keeps_shape_affine_and_range(tmp_path, student_ckpt):
    rng = np.random.default_rng(0)
    data = (rng.random((*SHAPE, 5)) * 900 - 100).astype(np.float32)  # e.g. HU-like range
    src = tmp_path / "in4d.nii.gz"
    nib.save(nib.Nifti1Image(data, _affine()), src)
    out = tmp_path / "out.nii.gz"
    assert (
        main(
            [
                "interpolate",
                "--checkpoint",
                str(student_ckpt),
                "--input",
                str(src),
                "--frames",
                "1",
                "3",
                "--times",
                "0.25",
                "0.5",
                "0.75",
                "--out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    img = nib.load(out)
    assert img.shape == (*SHAPE, 3)
    np.testing.assert_allclose(img.affine, _affine(), atol=1e-5)
    np.testing.assert_allclose(img.header.get_zooms()[:3], nib.load(src).header.get_zooms()[:3], rtol=1e-5)
    vals = np.asarray(img.dataobj)
    lo, hi = min(data[..., 1].min(), data[..., 3].min()), max(data[..., 1].max(), data[..., 3].max())
    assert vals.min() >= lo - 1 and vals.max() <= hi + 1 and vals.std() > 1  # back in the input's range


def test_two_3d_inputs_and_n(tmp_path, student_ckpt):
    rng = np.random.default_rng(1)
    paths = []
    for i in range(2):
        p = tmp_path / f"v{i}.nii.gz"
        nib.save(nib.Nifti1Image(rng.random(SHAPE).astype(np.float32), _affine()), p)
        paths.append(str(p))
    out = tmp_path / "o.nii.gz"
    assert (
        main(
            [
                "interpolate",
                "--checkpoint",
                str(student_ckpt),
                "--inputs",
                *paths,
                "--n",
                "4",
                "--out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    img = nib.load(out)
    assert img.shape == (*SHAPE, 4)
    np.testing.assert_allclose(img.affine, _affine(), atol=1e-5)


def test_endpoints_and_times():
    assert parse_times(n=3) == [0.25, 0.5, 0.75]
    torch.manual_seed(0)
    model = Student(TINY)
    v0 = np.random.default_rng(0).random(SHAPE).astype(np.float32) * 5 + 2
    out = interpolate_volumes(model, v0, v0, [0.0, 1.0])
    assert out.shape == (2, *SHAPE)
    # identical inputs: an untrained student (near-zero fields) returns ~ the input, in its range
    np.testing.assert_allclose(out[0], v0, atol=0.2)


def test_one_3d_file_says_to_pass_two_volumes_with_inputs(tmp_path, student_ckpt, capsys):
    """`--input` given a single 3D volume: a one-line error naming the file and saying to
    pass two volumes with `--inputs A B`."""
    src = tmp_path / "one3d.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(2).random(SHAPE).astype(np.float32), _affine()), src)
    out = tmp_path / "o.nii.gz"
    code = main(
        [
            "interpolate",
            "--checkpoint",
            str(student_ckpt),
            "--input",
            str(src),
            "--frames",
            "0",
            "1",
            "--n",
            "2",
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert len(err.strip().splitlines()) == 1
    assert f"{src}: is a 3D volume" in err and "--inputs A B" in err


def test_inputs_are_read_by_the_data_reader(tmp_path, student_ckpt, capsys):
    """The one NIfTI reader: NaN voxels in an input are refused with a DataError naming the file."""
    rng = np.random.default_rng(3)
    good, bad = tmp_path / "good.nii.gz", tmp_path / "bad.nii.gz"
    v = rng.random(SHAPE).astype(np.float32)
    nib.save(nib.Nifti1Image(v, _affine()), good)
    v[0, 0, 0] = np.nan
    nib.save(nib.Nifti1Image(v, _affine()), bad)
    code = main(
        [
            "interpolate",
            "--checkpoint",
            str(student_ckpt),
            "--inputs",
            str(good),
            str(bad),
            "--n",
            "1",
            "--out",
            str(tmp_path / "o.nii.gz"),
            "--device",
            "cpu",
        ]
    )
    assert code == 2
    assert f"{bad}: 1 non-finite voxels (1 NaN" in capsys.readouterr().err


@pytest.fixture
def no_model(monkeypatch):
    """Record any attempt to load the model: every check below must come before it."""
    import interp4d_lite.models.checkpoint as ckpt

    calls = []

    def load_model(*args, **kwargs):
        calls.append(args)
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(ckpt, "load_model", load_model)
    return calls


def _interpolate(tmp_path, student_ckpt, out, frames=("1", "3"), n_frames=5):
    src = tmp_path / "in4d.nii.gz"
    if not src.exists():
        data = np.random.default_rng(4).random((*SHAPE, n_frames)).astype(np.float32)
        nib.save(nib.Nifti1Image(data, _affine()), src)
    argv = ["interpolate", "--checkpoint", str(student_ckpt), "--input", str(src), "--frames", *frames]
    return main([*argv, "--n", "2", "--out", str(out), "--device", "cpu"])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("interp4d-lite interpolate: error: "), err
    return err


def test_output_path_is_checked_first(tmp_path, student_ckpt, capsys, no_model):
    """A missing or non-folder parent, a name that is not .nii/.nii.gz, or an existing folder
    as --out: one line naming the path (exit 2), before any file is read or the model loaded."""
    missing = "/no/such/dir/x.nii.gz"
    assert _interpolate(tmp_path, student_ckpt, missing) == 2
    assert f"--out {missing}: the folder /no/such/dir does not exist" in _one_line_error(capsys)
    assert not Path("/no/such/dir").exists()

    txt = tmp_path / "result.txt"
    assert _interpolate(tmp_path, student_ckpt, txt) == 2
    assert f"--out {txt}: unsupported file name suffix (.txt); use .nii or .nii.gz" in _one_line_error(capsys)
    assert not txt.exists()

    afile = tmp_path / "notes"
    afile.write_text("a file, not a folder")
    assert _interpolate(tmp_path, student_ckpt, afile / "x.nii.gz") == 2
    assert f"{afile} is not a folder" in _one_line_error(capsys)

    folder = tmp_path / "already.nii.gz"
    folder.mkdir()
    assert _interpolate(tmp_path, student_ckpt, folder) == 2
    assert f"--out {folder}: is a folder" in _one_line_error(capsys)
    assert no_model == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write into any folder")
def test_unwritable_output_folder(tmp_path, student_ckpt, capsys, no_model):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert _interpolate(tmp_path, student_ckpt, locked / "x.nii.gz") == 2
        assert f"the folder {locked} is not writable" in _one_line_error(capsys)
    finally:
        locked.chmod(0o755)
    assert no_model == []


@pytest.mark.parametrize(
    "frames, message",
    [
        (("5", "5"), "--frames 5 5: frames I and J must differ"),
        (("2", "2"), "--frames 2 2: frames I and J must differ"),
        (("-1", "2"), "--frames -1 2: frame indices are 0-based, so they must be >= 0"),
        (("0", "5"), "frame index 5 out of range for"),
        (("9", "0"), "frame index 9 out of range for"),
    ],
)
def test_frames_are_checked_before_the_model_is_loaded(tmp_path, student_ckpt, capsys, no_model, frames, message):
    out = tmp_path / "o.nii.gz"
    assert _interpolate(tmp_path, student_ckpt, out, frames=frames) == 2
    err = _one_line_error(capsys)
    assert message in err
    if "out of range" in message:
        assert "in4d.nii.gz: it has 5 frames (0-based: 0..4)" in err
    assert not out.exists() and no_model == []
