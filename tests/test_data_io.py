"""Readers and layouts: phantoms written by the writers (and the CLI) come back through the
loaders with their affine, timing and true fields; a NIfTI written by someone else
(nibabel's example4d) reads through the same reader; every kind of bad input gives a
DataError naming the file; loading never changes anything on disk."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import CARDIAC_SHAPE, LINEAR_SHAPE, LUNG_SHAPE
from nibabel.testing import data_path
from torch.utils.data import DataLoader

from interp4d_lite.cli import main
from interp4d_lite.data import (
    TripletDataset,
    center_crop_or_pad,
    discover_patients,
    load_patient,
    load_patients,
    make_phantom,
    minmax_per_frame,
    read_info_cfg,
    read_nifti_3d,
    read_nifti_4d,
    shift_affine,
    write_acdc_layout,
)
from interp4d_lite.data.phantoms import hu_to_unit, patient_seed
from interp4d_lite.errors import DataError

EXAMPLE4D = Path(data_path) / "example4d.nii.gz"


# --------------------------------------------------------------------------- round trips
def test_cardiac_acdc_layout_round_trip(cardiac_root):
    folder = cardiac_root / "patient002"
    assert sorted(p.name for p in folder.iterdir()) == [
        "Info.cfg",
        "patient002_4d.nii.gz",
        "patient002_truth.npz",
        "phantom.json",
    ]
    ph = make_phantom("cardiac", shape=CARDIAC_SHAPE, seed=patient_seed(0, 1), patient_id="patient002")
    info = read_info_cfg(folder / "Info.cfg")
    assert info["ED"] == 1 and info["ES"] == ph.i1 + 1 and info["NbFrame"] == 25 and info["Group"] == "PHANTOM"
    img = nib.load(folder / "patient002_4d.nii.gz")
    assert img.shape == (*CARDIAC_SHAPE, 25) and img.get_data_dtype() == np.int16
    assert np.allclose(img.header.get_zooms()[:3], (1.5, 1.5, 8.0))  # anisotropic, as ACDC
    np.testing.assert_allclose(img.affine, ph.affine)
    p = load_patient(folder, volume_shape="native")
    assert (p.data_kind, p.patient_id, p.i0, p.i1) == ("cardiac", "patient002", 0, ph.i1)
    assert p.target_indices == list(range(1, ph.i1))
    np.testing.assert_allclose(p.frames, minmax_per_frame(ph.frames), atol=2e-3)  # int16 at 0..1000
    np.testing.assert_allclose(p.times[: ph.i1 + 1], np.arange(ph.i1 + 1) / ph.i1, atol=1e-6)
    assert np.isnan(p.times[ph.i1 + 1 :]).all()
    np.testing.assert_array_equal(p.u_t0, ph.u_t0)
    np.testing.assert_array_equal(p.u_t1, ph.u_t1)
    assert p.source == folder / "patient002_4d.nii.gz"


def test_lung_layout_round_trip_in_hu(lung_root):
    folder = lung_root / "lung001"
    meta = json.loads((folder / "phases.json").read_text())
    assert meta["phases"] == list(range(0, 100, 10)) and meta["input_phases"] == [0, 50] and meta["units"] == "HU"
    hu = nib.load(folder / "lung001_4d.nii.gz").get_fdata()
    assert hu.shape == (*LUNG_SHAPE, 10)
    assert hu.min() < -950 and 100 < hu.max() < 500  # air ... spine, in HU
    ph = make_phantom("lung", shape=LUNG_SHAPE, seed=patient_seed(0, 0), patient_id="lung001")
    p = load_patient(folder, volume_shape="native")
    assert (p.data_kind, p.i0, p.i1) == ("lung", 0, 5) and p.target_indices == [1, 2, 3, 4]
    np.testing.assert_allclose(p.times[:6], [0, 0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-6)
    np.testing.assert_allclose(p.frames, minmax_per_frame(hu_to_unit(ph.frames)), atol=2e-3)
    assert p.u_t0.shape == (6, 3, *LUNG_SHAPE)
    default = load_patient(folder)  # default lung shape: 128^3
    assert default.shape == (128, 128, 128) and default.u_t0.shape == (6, 3, 128, 128, 128)


def test_linear_data_kind_is_recorded_and_read_back(linear_root):
    assert json.loads((linear_root / "dataset.json").read_text())["kind"] == "linear"
    p = load_patient(linear_root / "patient001", volume_shape=LINEAR_SHAPE)
    assert p.data_kind == "linear" and (p.i0, p.i1) == (0, 5)
    np.testing.assert_allclose(p.u_t0[:, :, 10, 10, 5], -np.outer(p.times[:6], [3, 2, 1]), atol=1e-6)


def test_crop_pad_moves_affine_origin_and_fields(cardiac_root):
    folder = cardiac_root / "patient001"
    native = load_patient(folder, volume_shape="native")  # (25, 32, 32, 10), 8 mm slices
    p = load_patient(folder, volume_shape=(24, 40, 8))  # crop X, pad Y, crop Z
    off = center_crop_or_pad(np.zeros(CARDIAC_SHAPE), (24, 40, 8))[1]
    assert off.tolist() == [4, -4, 1]
    assert p.frames.shape == (25, 24, 40, 8) and p.u_t0.shape[2:] == (24, 40, 8)
    assert p.spacing == native.spacing == (1.5, 1.5, 8.0)
    # the same voxel has the same world position in both grids
    for ijk in ([0, 0, 0], [5, 7, 3], [23, 39, 7]):
        old = np.asarray(ijk) + off
        np.testing.assert_allclose(p.affine @ [*ijk, 1], native.affine @ [*old, 1])
    # cropped region equals the native data; padded region is zero (frames and fields)
    np.testing.assert_array_equal(p.frames[:, :, 4:36, :], native.frames[:, 4:28, :, 1:9])
    np.testing.assert_array_equal(p.u_t0[:, :, :, 4:36], native.u_t0[:, :, 4:28, :, 1:9])
    assert p.frames[:, :, :4].max() == 0 and np.abs(p.u_t1[:, :, :, :4]).max() == 0
    np.testing.assert_allclose(shift_affine(np.eye(4), [1, -2, 3])[:3, 3], [1, -2, 3])


def test_minmax_matches_monai_scale_intensity():
    from monai.transforms import ScaleIntensity

    x = np.random.default_rng(0).normal(size=(3, 5, 4, 6)).astype(np.float32) * 300 + 50
    x[2] = 7.0  # a constant frame -> zeros
    ours = minmax_per_frame(x)
    theirs = np.asarray(ScaleIntensity(minv=0.0, maxv=1.0, channel_wise=True)(x))
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert ours[:2].min() == 0.0 and ours[:2].max() == 1.0 and ours[2].max() == 0.0


def test_reads_nibabels_example4d_through_the_same_reader(tmp_path):
    """A real 4D NIfTI written by someone else: int16 with scaling, oblique affine, 2 frames."""
    frames, affine, spacing = read_nifti_4d(EXAMPLE4D)
    img = nib.load(EXAMPLE4D)
    assert frames.shape == (2, 128, 96, 24) and frames.dtype == np.float32
    np.testing.assert_allclose(frames, np.moveaxis(img.get_fdata(), -1, 0))
    np.testing.assert_allclose(spacing, (2.0, 2.0, 2.2), atol=1e-5)
    np.testing.assert_allclose(affine, img.affine)
    # the same file as an ACDC patient (copied; the original is never touched)
    folder = tmp_path / "patient101"
    folder.mkdir()
    shutil.copy(EXAMPLE4D, folder / "patient101_4d.nii.gz")
    (folder / "Info.cfg").write_text("ED: 1\nES: 2\nNbFrame: 2\n")
    p = load_patient(folder)  # default 128x128x32
    assert p.data_kind == "cardiac" and p.frames.shape == (2, 128, 128, 32) and p.target_indices == []
    assert p.frames.min() == 0.0 and p.frames.max() == 1.0 and not p.has_truth
    np.testing.assert_allclose(p.affine[:3, :3], img.affine[:3, :3])
    with pytest.raises(DataError, match="example4d.nii.gz: is 4D with 2 frames"):
        read_nifti_3d(EXAMPLE4D)


# --------------------------------------------------------------------------- datasets and splits
def test_triplet_dataset_with_dataloader(cardiac_root):
    patients = load_patients(cardiac_root, volume_shape=CARDIAC_SHAPE)
    assert [p.patient_id for p in patients] == ["patient001", "patient002", "patient003"]
    ds = TripletDataset(patients)
    assert len(ds) == sum(len(p.target_indices) for p in patients)
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch["I0"].shape == batch["It"].shape == (4, 1, *CARDIAC_SHAPE)
    assert batch["u_t0"].shape == (4, 3, *CARDIAC_SHAPE) and batch["spacing"].shape == (4, 3)
    assert batch["t"].dtype == torch.float32 and batch["t"].shape == (4,)
    p = patients[0]
    np.testing.assert_allclose(batch["t"].numpy(), np.arange(1, 5) / p.i1, atol=1e-6)
    assert batch["frame"].tolist() == [1, 2, 3, 4] and batch["patient"] == ["patient001"] * 4
    np.testing.assert_array_equal(batch["It"][2, 0].numpy(), p.frames[3])
    np.testing.assert_array_equal(batch["u_t1"][0].numpy(), p.u_t1[1])
    batch["I0"].mul_(0)  # items are copies
    assert p.frames[p.i0].max() == 1.0
    with_ends = TripletDataset(patients, include_endpoints=True)
    assert len(with_ends) == len(ds) + 2 * len(patients)
    assert float(with_ends[0]["t"]) == 0.0


def test_discover_patients_acdc_nesting_and_manifest(tmp_path, cardiac_root):
    nested = tmp_path / "ACDC" / "database"
    for sub, pid in (("training", "patient001"), ("training", "patient002"), ("testing", "patient003")):
        shutil.copytree(cardiac_root / pid, nested / sub / pid)
    found = discover_patients(nested)
    assert [p.name for p in found] == ["patient003", "patient001", "patient002"]  # testing/ sorts first
    # a dataset.json lists exactly its patients; a stale extra folder is ignored
    root = tmp_path / "manifest"
    shutil.copytree(cardiac_root, root)
    shutil.copytree(cardiac_root / "patient001", root / "patient009")
    assert [p.name for p in discover_patients(root)] == ["patient001", "patient002", "patient003"]


def test_split_patients_rules():
    from interp4d_lite.data import acdc_uvi_split, split_patients

    assert {k: len(v) for k, v in split_patients(["a", "b", "c"]).items()} == {"train": 1, "val": 1, "test": 1}
    assert {k: len(v) for k, v in split_patients(["a", "b"]).items()} == {"train": 1, "val": 0, "test": 1}
    assert split_patients(["a"]) == {"train": ["a"], "val": [], "test": []}
    ids = [f"patient{i:03d}" for i in range(1, 21)]
    s = split_patients(ids, seed=3)
    assert [len(s[k]) for k in ("train", "val", "test")] == [14, 3, 3]
    assert sorted(s["train"] + s["val"] + s["test"]) == ids  # each id exactly once
    assert s == split_patients(list(reversed(ids)), seed=3)  # deterministic, order-free
    assert s != split_patients(ids, seed=4)
    with pytest.raises(DataError, match="duplicate"):
        split_patients(["a", "a", "b"])
    acdc = acdc_uvi_split([f"patient{i:03d}" for i in range(1, 101)])
    assert len(acdc["train"]) == 90 and acdc["test"][0] == "patient091" and acdc["test"][-1] == "patient100"
    assert len(acdc_uvi_split(ids, n_val=2)["val"]) == 2


# --------------------------------------------------------------------------- the phantom command
@pytest.mark.parametrize(
    "phantom, shape", [("cardiac", (32, 32, 16)), ("lung", (32, 32, 32)), ("linear", (32, 32, 16))]
)
def test_phantom_command_writes_loadable_layouts(tmp_path, capsys, phantom, shape):
    out = tmp_path / phantom
    assert (
        main(["phantom", "--phantom", phantom, "--patients", "3", "--out", str(out), "--shape", *map(str, shape)]) == 0
    )
    text = capsys.readouterr().out
    assert "wrote 3" in text and "x".join(map(str, shape)) in text and "spacing" in text
    assert ("ED=1 ES=" in text) if phantom != "lung" else ("0% (frame 0) and 50% (frame 5)" in text)
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["kind"] == phantom and manifest["layout"] == ("lung4d" if phantom == "lung" else "acdc")
    patients = load_patients(out, volume_shape=shape)
    assert len(patients) == 3 and all(p.data_kind == phantom and p.has_truth for p in patients)
    assert len(TripletDataset(patients)) == sum(len(p.target_indices) for p in patients)
    # a second run into the same folder needs --force
    assert main(["phantom", "--phantom", phantom, "--patients", "1", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--patients", "0"], "--patients must be >= 1"),
        (["--frames", "3"], "n_frames must be >= 6"),
        (["--amplitude", "9"], "amplitude"),
        (["--shape", "4", "32", "16"], "shape"),
        (["--anatomy", "chest"], "--anatomy is for the lung phantom only, not cardiac"),
        (["--phantom", "lung", "--anatomy", "z"], "anatomy must be one of ['a', 'b', 'chest']"),
    ],
)
def test_phantom_command_bad_arguments(tmp_path, capsys, argv, match):
    assert main(["phantom", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1


def test_phantom_command_writes_the_chest_anatomy(tmp_path):
    out = tmp_path / "chest"
    argv = ["phantom", "--phantom", "lung", "--anatomy", "chest", "--patients", "1", "--shape", "32", "32", "32"]
    assert main([*argv, "--out", str(out)]) == 0
    (p,) = load_patients(out, volume_shape=(32, 32, 32))
    assert p.has_truth and json.loads((out / "lung001" / "phantom.json").read_text())["anatomy"] == "chest"
    hu = np.asarray(nib.load(out / "lung001" / "lung001_4d.nii.gz").dataobj)
    assert hu.max() > 400  # bone, in HU: the ribs (anatomy "a" stays below its spine's 350 HU)


# --------------------------------------------------------------------------- bad input
def _patient(tmp_path, cardiac_root, pid="patient001"):
    dst = tmp_path / pid
    shutil.copytree(cardiac_root / pid, dst)
    return dst


def _write_nifti(path, data):
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), np.eye(4)), str(path))


def test_missing_info_cfg(tmp_path, cardiac_root):
    d = _patient(tmp_path, cardiac_root)
    (d / "Info.cfg").unlink()
    with pytest.raises(DataError, match=r"patient001/Info.cfg: missing Info.cfg"):
        load_patient(d)


def test_ed_equal_to_es(tmp_path, cardiac_root):
    d = _patient(tmp_path, cardiac_root)
    (d / "Info.cfg").write_text("ED: 3\nES: 3\nNbFrame: 20\n")
    with pytest.raises(DataError, match=r"Info.cfg: ED and ES are the same frame \(3\)"):
        load_patient(d)


def test_es_out_of_range(tmp_path, cardiac_root):
    d = _patient(tmp_path, cardiac_root)
    (d / "Info.cfg").write_text("ED: 1\nES: 30\nNbFrame: 25\n")
    with pytest.raises(DataError, match=r"Info.cfg: ES = 30 is outside 1..25"):
        load_patient(d)
    (d / "Info.cfg").write_text("ED: 0\nES: 5\n")
    with pytest.raises(DataError, match=r"ED = 0 is outside 1..25"):
        load_patient(d)


def test_nbframe_disagreeing_warns(tmp_path, cardiac_root):
    d = _patient(tmp_path, cardiac_root)
    es = read_info_cfg(d / "Info.cfg")["ES"]
    (d / "Info.cfg").write_text(f"ED: 1\nES: {es}\nNbFrame: 30\n")
    with pytest.warns(UserWarning, match=r"Info.cfg: NbFrame is 30 but patient001_4d.nii.gz has 25 frames"):
        p = load_patient(d, volume_shape="native")
    assert p.frames.shape[0] == 25


def test_3d_file_where_4d_is_needed(tmp_path):
    d = tmp_path / "patient001"
    d.mkdir()
    _write_nifti(d / "patient001_4d.nii.gz", np.zeros((8, 8, 4)))
    (d / "Info.cfg").write_text("ED: 1\nES: 2\n")
    with pytest.raises(DataError, match=r"patient001_4d.nii.gz: is a 3D volume of shape \(8, 8, 4\); a 4D"):
        load_patient(d)


def test_truncated_nii_gz(tmp_path, cardiac_root):
    d = _patient(tmp_path, cardiac_root)
    f = d / "patient001_4d.nii.gz"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(DataError, match=r"patient001_4d.nii.gz: truncated or corrupt image data"):
        load_patient(d)


def test_corrupt_nii_gz(tmp_path):
    f = tmp_path / "junk_4d.nii.gz"
    f.write_bytes(gzip.compress(b"this is not a NIfTI header" * 20))
    with pytest.raises(DataError, match=r"junk_4d.nii.gz: cannot be read as NIfTI"):
        read_nifti_4d(f)
    g = tmp_path / "notgzip_4d.nii.gz"
    g.write_bytes(os.urandom(600))
    with pytest.raises(DataError, match=r"notgzip_4d.nii.gz: cannot be read as NIfTI"):
        read_nifti_4d(g)


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "infinite")])
def test_nan_or_infinite_voxels(tmp_path, bad, word):
    data = np.ones((6, 6, 4, 3), np.float32)
    data[1, 2, 3, 1] = bad
    data[0, 0, 0, 2] = bad
    f = tmp_path / "x_4d.nii.gz"
    _write_nifti(f, data)
    with pytest.raises(DataError, match=rf"x_4d.nii.gz: 2 non-finite voxels .*{word}"):
        read_nifti_4d(f)


def test_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"empty: no patients found"):
        discover_patients(empty)
    with pytest.raises(DataError, match=r"empty: no 4D image \(empty_4d.nii.gz\)"):
        load_patient(empty)
    with pytest.raises(DataError, match=r"nowhere: data folder not found"):
        discover_patients(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"missing.nii.gz: file not found"):
        read_nifti_3d(tmp_path / "missing.nii.gz")


def test_bad_phases_json(tmp_path, lung_root):
    d = tmp_path / "lung001"
    shutil.copytree(lung_root / "lung001", d)
    (d / "phases.json").write_text(json.dumps({"phases": [0, 10, 20], "input_phases": [0, 50]}))
    with pytest.raises(DataError, match=r"phases.json: 'input_phases' \[0, 50\] must be two of the phases"):
        load_patient(d)
    (d / "phases.json").write_text(json.dumps({"phases": [0, 50, 70], "input_phases": [0, 50]}))
    with pytest.raises(DataError, match=r"phases.json: lists 3 phases but lung001_4d.nii.gz has 10 frames"):
        load_patient(d)


def _snapshot(root: Path) -> dict:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_loading_never_modifies_disk(tmp_path, cardiac_root, lung_root):
    for root in (cardiac_root, lung_root):
        before = _snapshot(root)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # and no warnings on clean data
            patients = load_patients(root, volume_shape=(24, 24, 20))
        list(TripletDataset(patients))
        assert _snapshot(root) == before
    # a failing load leaves the bad file alone too
    d = _patient(tmp_path, cardiac_root)
    f = d / "patient001_4d.nii.gz"
    f.write_bytes(f.read_bytes()[:500])
    before = _snapshot(d)
    with pytest.raises(DataError):
        load_patient(d)
    assert _snapshot(d) == before


def test_writer_refuses_a_non_lung_phantom_for_lung_layout(tmp_path):
    from interp4d_lite.data import write_lung_layout

    ph = make_phantom("linear", shape=(16, 16, 8))
    with pytest.raises(ValueError, match="lung phantom"):
        write_lung_layout(tmp_path, ph)
    assert (write_acdc_layout(tmp_path, ph) / "patient001_4d.nii.gz").is_file()


# --------------------------------------------------------------------------- the shipped real cine
REAL_DICOM = Path(__file__).parent / "data" / "pig_cine_dicom"  # 3 slices x 3 phases of the same scan


def test_real_cine_loads_with_its_ed_es_and_targets():
    from interp4d_lite.data import end_systole_frame, load_real_cine, real_cine_path

    folder = real_cine_path()
    assert sorted(p.name for p in folder.iterdir()) == ["Info.cfg", "LICENSE", "README.md", "pig_cine_lax_4d.nii.gz"]
    assert "CC0 1.0 Universal" in (folder / "LICENSE").read_text()
    assert "WrightGroupSRI/ep-dataset" in (folder / "README.md").read_text()
    p = load_real_cine()
    assert p.patient_id == "pig_cine_lax" and p.data_kind == "cardiac"
    assert p.frames.shape == (20, 128, 128, 14) and p.shape == (128, 128, 14)
    assert p.spacing == pytest.approx((1.6406, 1.6406, 5.0), abs=1e-3)
    assert 0.0 <= p.frames.min() and p.frames.max() == pytest.approx(1.0)  # min-max per frame
    info = read_info_cfg(folder / "Info.cfg")
    assert p.i0 == 0 and info["ED"] == 1 and p.i1 == info["ES"] - 1
    assert 8 <= p.i1 <= 12  # end-systole of a 20-phase cine
    assert p.target_indices == list(range(1, p.i1)) and len(p.target_indices) >= 7
    np.testing.assert_allclose(p.times[: p.i1 + 1], np.arange(p.i1 + 1) / p.i1, atol=1e-6)
    # ES in Info.cfg is the frame farthest from ED, recomputed here from the stored image
    raw, _, _ = read_nifti_4d(p.source)
    es, mad = end_systole_frame(raw)
    assert es == p.i1 and mad[0] == 0.0 and mad[es] > 2 * mad[1] > 0
    img = nib.load(p.source)
    assert img.get_data_dtype() == np.int16 and img.header.get_xyzt_units() == ("mm", "msec")
    assert float(img.header.get_zooms()[3]) == pytest.approx(33.0)
    assert load_real_cine(volume_shape=(96, 96, 16)).shape == (96, 96, 16)


def test_real_cine_is_the_dicom_series_averaged_2x2_in_plane():
    """The shipped copy against 9 of the original files: same world positions of the voxel
    centres, intensities the 2 x 2 means (rounded)."""
    from interp4d_lite.data import read_dicom_cine, real_cine_path

    fine = read_dicom_cine(REAL_DICOM)  # slices 5, 6, 7 of the 14 (along the normal), phases 0, 5, 10
    data, affine, _ = read_nifti_4d(real_cine_path() / "pig_cine_lax_4d.nii.gz")  # (T, X, Y, Z)
    # which shipped slices are these: coarse voxel (0, 0, z) sits at the centre of fine voxels 0..1, 0..1
    dist = lambda z, zf: np.linalg.norm(affine @ [0, 0, z, 1] - fine.affine @ [0.5, 0.5, zf, 1])  # noqa: E731
    z_of = [min(range(14), key=lambda z: dist(z, zf)) for zf in range(3)]
    assert z_of == [5, 6, 7]
    ijk = np.array([[0, 0, 0], [17, 90, 1], [127, 127, 2], [64, 3, 1]], float)
    for i, j, zf in ijk:
        coarse = affine @ [i, j, z_of[int(zf)], 1]
        fine_c = fine.affine @ [2 * i + 0.5, 2 * j + 0.5, zf, 1]  # centre of the 2 x 2 block
        np.testing.assert_allclose(coarse, fine_c, atol=1e-3)
    a = fine.array  # (256, 256, 3, 3)
    block = a.reshape(128, 2, 128, 2, 3, 3).mean(axis=(1, 3))
    for kf, k in enumerate((0, 5, 10)):
        got = data[k][:, :, z_of[0] : z_of[-1] + 1]
        np.testing.assert_array_equal(got, np.round(block[..., kf]))


def test_downsample_in_plane_keeps_world_positions():
    from interp4d_lite.data import downsample_in_plane

    aff = np.array([[0.0, 0.8, 0.1, 10.0], [-0.7, 0.0, 0.3, -4.0], [0.2, 0.1, 5.0, 2.0], [0, 0, 0, 1]])
    x = np.arange(6 * 4 * 2, dtype=np.float32).reshape(6, 4, 2)
    small, aff2 = downsample_in_plane(x, aff)
    assert small.shape == (3, 2, 2)
    assert small[1, 1, 0] == pytest.approx(x[2:4, 2:4, 0].mean())
    np.testing.assert_allclose(aff2 @ [1, 1, 1, 1], aff @ [2.5, 2.5, 1, 1])
    with pytest.raises(ValueError, match="not a multiple of 2"):
        downsample_in_plane(x[:5], aff)


def test_write_real_cine_from_dicom_in_acdc_layout(tmp_path):
    """scripts/make_real_cine.py's writer on the 9-file subset: an ACDC patient the loader reads."""
    from interp4d_lite.data import load_patient, read_dicom_cine, write_real_cine

    info = write_real_cine(read_dicom_cine(REAL_DICOM), tmp_path / "pig3", "CC0 1.0 Universal\n")
    assert info["shape"] == (128, 128, 3, 3) and info["es"] in (1, 2)
    assert sorted(p.name for p in (tmp_path / "pig3").iterdir()) == ["Info.cfg", "LICENSE", "pig3_4d.nii.gz"]
    p = load_patient(tmp_path / "pig3", volume_shape="native")
    assert p.shape == (128, 128, 3) and p.i0 == 0 and p.i1 == info["es"]
    assert p.spacing == pytest.approx((1.6406, 1.6406, 5.0), abs=1e-3)


def test_make_real_cine_script_on_the_subset(tmp_path, capsys, load_script):
    mod = load_script("scripts/make_real_cine.py")
    (tmp_path / "LICENSE").write_text("CC0 1.0 Universal\n")
    out = tmp_path / "pig3"
    assert mod.main([str(REAL_DICOM), "--license", str(tmp_path / "LICENSE"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "read 9 files" in text and "phases by TriggerTime" in text
    readme = (out / "README.md").read_text()
    es = read_info_cfg(out / "Info.cfg")["ES"]
    assert f"`ES: {es}`" in readme and "128 x 128 x 3 voxels x 3 cardiac phases" in readme
    assert "time step 164 ms" in readme or "time step 165 ms" in readme


def test_every_shipped_real_cine_loads_with_its_licence_citation_and_phases():
    from interp4d_lite.data import REAL_CINE_IDS, load_real_cines, real_cine_paths

    paths = real_cine_paths()
    assert list(paths) == list(REAL_CINE_IDS) == ["pig_cine_lax", "scd101", "scd201", "scd301"]
    patients = load_real_cines()
    assert [p.patient_id for p in patients] == list(REAL_CINE_IDS)
    slices = {"pig_cine_lax": 14, "scd101": 12, "scd201": 13, "scd301": 10}
    for (cid, folder), p in zip(paths.items(), patients):
        assert sorted(f.name for f in folder.iterdir()) == ["Info.cfg", "LICENSE", "README.md", f"{cid}_4d.nii.gz"]
        assert "CC0 1.0 Universal" in (folder / "LICENSE").read_text()
        assert p.frames.shape == (20, 128, 128, slices[cid]) and p.data_kind == "cardiac"
        info = read_info_cfg(folder / "Info.cfg")
        assert p.i0 == 0 and p.i1 == info["ES"] - 1 and 5 <= p.i1 <= 11
        img = nib.load(p.source)
        assert img.get_data_dtype() == np.int16 and img.header.get_xyzt_units() == ("mm", "msec")
        if cid.startswith("scd"):  # the human cines: citation, short-axis 8-10 mm slices, 2x the 1.3 mm pixels
            assert "Radau P" in (folder / "README.md").read_text()
            assert 2.5 < p.spacing[0] < 2.8 and 7.9 < p.spacing[2] < 10.1
    assert load_real_cines(["scd201"], volume_shape=(64, 64, 8))[0].shape == (64, 64, 8)
    with pytest.raises(DataError, match="no real cine 'scd999'"):
        real_cine_paths(["scd999"])


def test_make_real_cine_rebuilds_an_acdc_layout_cine_byte_identically(tmp_path, capsys, load_script):
    """The script on an ACDC-layout original: 2 x 2 means rounded to int16, the original's ES,
    dt and world positions kept, README with the citation; the same input gives the same bytes."""
    from interp4d_lite.data import read_cine_nifti

    mod = load_script("scripts/make_real_cine.py")
    src = tmp_path / "orig" / "scd101"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    data = rng.integers(0, 900, size=(8, 6, 3, 5)).astype(np.int16)
    data[..., 3] += 100  # the farthest phase from ED: 3; the original says ES is phase 2 (1-based 3)
    aff = np.array([[0.0, 1.3, 0.2, -10.0], [-1.3, 0.0, 0.1, 5.0], [0.1, 0.0, 10.0, 3.0], [0, 0, 0, 1]])
    img = nib.Nifti1Image(data, aff)
    img.header.set_zooms((1.3, 1.3, 10.0, 38.5))
    img.header.set_xyzt_units("mm", "msec")
    nib.save(img, src / "scd101_4d.nii.gz")
    (src / "Info.cfg").write_text("ED: 1\nES: 3\nGroup: HF-I\nNbFrame: 5\n")
    (tmp_path / "LICENSE").write_text("CC0 1.0 Universal\n")
    outs = [tmp_path / "a" / "scd101", tmp_path / "b" / "scd101"]
    for out in outs:
        assert mod.main([str(src), "--license", str(tmp_path / "LICENSE"), "--out", str(out)]) == 0
    assert "dt 38.50 ms, ED 1, ES 3" in capsys.readouterr().out
    for name in ("scd101_4d.nii.gz", "Info.cfg", "LICENSE", "README.md"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    assert read_info_cfg(outs[0] / "Info.cfg")["ES"] == 3
    small = read_cine_nifti(outs[0] / "scd101_4d.nii.gz")
    assert small.shape == (4, 3, 3, 5) and small.dt_ms == pytest.approx(38.5)
    block = data.astype(np.float64).reshape(4, 2, 3, 2, 3, 5).mean(axis=(1, 3))
    np.testing.assert_array_equal(small.array, np.round(block))
    np.testing.assert_allclose(small.affine @ [1, 1, 2, 1], aff @ [2.5, 2.5, 2, 1], atol=1e-4)
    readme = (outs[0] / "README.md").read_text()
    assert "SC-HF-I-1" in readme and "Radau P" in readme and "`ES: 3`" in readme
