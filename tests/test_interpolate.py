"""`interpolate` keeps the input's grid: odd shapes and non-trivial affines survive."""

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
    save_checkpoint(path, kind="student", model=Student(TINY), model_config=TINY.to_dict())
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
