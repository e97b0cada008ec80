"""DICOM series -> volume + RAS affine: geometry, ordering, values and broken series."""

from __future__ import annotations

import numpy as np
import pytest
from _download_dicom import expected_ras_affine, rotation, write_series

from interp4d_lite.download.dicom import read_dicom_series
from interp4d_lite.download.errors import DicomSeriesError
from interp4d_lite.errors import DataError


def _phantom(shape=(12, 10, 7), seed=0, slope=1.0):
    rng = np.random.default_rng(seed)
    hu = (rng.integers(-1000, 400, size=shape) * slope).astype(np.float32)
    return hu


def _world(affine, ijk):
    return (affine @ np.append(np.asarray(ijk, float), 1.0))[:3]


def test_axial_series_values_spacing_affine(tmp_path):
    hu = _phantom(slope=2.0)
    write_series(
        tmp_path,
        hu,
        spacing_xy=(0.8, 0.6),
        slope=2.0,
        intercept=-1024.0,
        step_vec=(0, 0, 2.5),
        origin_lps=(-5.0, 7.0, -30.0),
    )
    vol = read_dicom_series(tmp_path)
    np.testing.assert_array_equal(vol.array, hu)
    assert vol.array.dtype == np.float32
    assert vol.spacing == pytest.approx((0.8, 0.6, 2.5))
    exp = expected_ras_affine((1, 0, 0), (0, 1, 0), (0.8, 0.6), (0, 0, 2.5), (-5.0, 7.0, -30.0))
    np.testing.assert_allclose(vol.affine, exp, atol=1e-6)
    # LPS -> RAS: voxel (0,0,0) is at L=-5 (R=+5), P=7 (A=-7), S=-30
    np.testing.assert_allclose(_world(vol.affine, (0, 0, 0)), (5.0, -7.0, -30.0))
    assert vol.meta["n_slices"] == 7 and not vol.meta["gantry_tilt"]


def test_oblique_flipped_series_sorted_by_position_not_name(tmp_path):
    hu = _phantom(shape=(9, 11, 8), seed=1)
    marker = (2, 7, 5)
    hu[marker] = 3000.0
    r = rotation(0.3, -0.4, 1.1)
    row_cos, col_cos = r[:, 0], r[:, 1]
    normal = np.cross(row_cos, col_cos)
    step = -1.75 * normal  # files written in decreasing position along the normal
    origin = np.array([12.0, -3.0, 40.0])
    write_series(
        tmp_path,
        hu,
        row_cos=row_cos,
        col_cos=col_cos,
        spacing_xy=(1.1, 0.9),
        step_vec=step,
        origin_lps=origin,
        shuffle_seed=3,
    )
    vol = read_dicom_series(tmp_path)
    # sorted ascending along the normal: the slice order is reversed
    np.testing.assert_array_equal(vol.array, hu[:, :, ::-1])
    exp = expected_ras_affine(row_cos, col_cos, (1.1, 0.9), -step, origin + 7 * step)
    np.testing.assert_allclose(vol.affine, exp, atol=1e-6)
    assert vol.spacing == pytest.approx((1.1, 0.9, 1.75))
    # independent check: the marker's world position is preserved
    in_aff = expected_ras_affine(row_cos, col_cos, (1.1, 0.9), step, origin)
    found = np.unravel_index(np.argmax(vol.array), vol.array.shape)
    np.testing.assert_allclose(_world(vol.affine, found), _world(in_aff, marker), atol=1e-6)
    # orthonormal direction cosines and a right-handed voxel grid
    m = vol.affine[:3, :3] / np.array(vol.spacing)
    np.testing.assert_allclose(m.T @ m, np.eye(3), atol=1e-6)


def test_gantry_tilt_affine_is_exact(tmp_path):
    hu = _phantom(shape=(6, 6, 5), seed=2)
    step = np.array([0.0, 0.6, 2.0])  # slices shifted in-plane: tilted gantry
    write_series(tmp_path, hu, step_vec=step, spacing_xy=(1.0, 1.0))
    vol = read_dicom_series(tmp_path)
    exp = expected_ras_affine((1, 0, 0), (0, 1, 0), (1.0, 1.0), step, (-10.0, -20.0, 30.0))
    np.testing.assert_allclose(vol.affine, exp, atol=1e-6)
    assert vol.meta["gantry_tilt"]


def test_nifti_roundtrip_keeps_geometry(tmp_path):
    import nibabel as nib

    hu = _phantom(shape=(8, 7, 6), seed=4)
    write_series(
        tmp_path / "dcm", hu, row_cos=(0, 1, 0), col_cos=(0, 0, -1), spacing_xy=(0.5, 1.5), step_vec=(-3.0, 0, 0)
    )  # normal = row x col = (-1, 0, 0)
    vol = read_dicom_series(tmp_path / "dcm")
    nib.save(nib.Nifti1Image(vol.array, vol.affine), tmp_path / "v.nii.gz")
    img = nib.load(tmp_path / "v.nii.gz")
    np.testing.assert_allclose(img.affine, vol.affine, atol=1e-5)
    np.testing.assert_allclose(img.header.get_zooms(), (0.5, 1.5, 3.0), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(img.dataobj), hu)


def test_missing_slice_is_reported(tmp_path):
    write_series(tmp_path, _phantom(), skip=(3,))
    with pytest.raises(DicomSeriesError, match="missing slice"):
        read_dicom_series(tmp_path)


def test_duplicated_slice_is_reported(tmp_path):
    write_series(tmp_path, _phantom(), duplicate=(4,))
    with pytest.raises(DataError, match="duplicated slice"):
        read_dicom_series(tmp_path)


def test_non_uniform_spacing_and_expected_count(tmp_path):
    hu = _phantom(shape=(6, 6, 4))
    write_series(tmp_path / "a", hu)
    with pytest.raises(DicomSeriesError, match="archive lists 5"):
        read_dicom_series(tmp_path / "a", expected_count=5)
    # a fifth slice 1.2 steps further: not a clean gap, not uniform
    import pydicom

    files = sorted((tmp_path / "a").glob("*.dcm"))
    ds = pydicom.dcmread(files[0])
    ds.ImagePositionPatient = [-10.0, -20.0, 30.0 + 2.5 * 4.2]
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "a" / "extra.dcm")
    with pytest.raises(DicomSeriesError, match="non-uniform"):
        read_dicom_series(tmp_path / "a")


def test_foreign_files_ignored_and_mixed_series_rejected(tmp_path):
    hu = _phantom(shape=(5, 5, 4))
    write_series(tmp_path / "s", hu)
    (tmp_path / "s" / "LICENSE.txt").write_text("CC BY 4.0")
    assert read_dicom_series(tmp_path / "s").array.shape == (5, 5, 4)
    write_series(tmp_path / "s" / "other", hu, patient_id="P2")
    with pytest.raises(DicomSeriesError, match="different series"):
        read_dicom_series(tmp_path / "s")
    with pytest.raises(DicomSeriesError, match="at least 2"):
        read_dicom_series(tmp_path / "s" / "LICENSE.txt")


# --------------------------------------------------------------------------- cine (4D)
import shutil
from pathlib import Path

from _download_dicom import write_cine

from interp4d_lite.data import convert_dicom_cine, read_dicom_cine

REAL_CINE = Path(__file__).parent / "data" / "pig_cine_dicom"  # 3 slices x 3 phases of a real cine


def _headers(folder):
    import pydicom

    return {f: pydicom.dcmread(f) for f in sorted(Path(folder).glob("*.dcm"))}


def test_real_cine_subset_order_spacing_dt_affine(tmp_path):
    """Nine real files (3 slices x 3 phases), copied under misleading names: the reader
    orders slices by position along the normal and phases by TriggerTime."""
    heads = _headers(REAL_CINE)
    assert len(heads) == 9
    names = sorted(heads)
    rng = np.random.default_rng(0)
    for f, new in zip(names, rng.permutation(len(names))):  # names no longer follow slice/phase
        shutil.copy(f, tmp_path / f"x{new:02d}.dcm")
    shutil.copy(REAL_CINE / "README.md", tmp_path / "README.md")  # a side file is skipped
    cine = read_dicom_cine(tmp_path)
    assert cine.shape == (256, 256, 3, 3) and cine.meta["time_source"] == "TriggerTime"
    assert cine.times_ms.tolist() == [10.0, 174.0, 339.0] and cine.dt_ms == pytest.approx(164.5)
    assert cine.spacing == pytest.approx((0.8203, 0.8203, 5.0), abs=1e-4)

    # the expected geometry, straight from the headers
    ds0 = next(iter(heads.values()))
    iop = np.asarray(ds0.ImageOrientationPatient, float)
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    ipps = sorted(
        {tuple(float(v) for v in ds.ImagePositionPatient) for ds in heads.values()}, key=lambda p: np.dot(p, normal)
    )
    assert len(ipps) == 3
    step = np.subtract(ipps[-1], ipps[0]) / 2
    ps = [float(v) for v in ds0.PixelSpacing]
    exp = expected_ras_affine(row, col, (ps[1], ps[0]), step, ipps[0])
    np.testing.assert_allclose(cine.affine, exp, atol=1e-6)
    assert abs(np.dot(step, normal)) == pytest.approx(5.0, abs=1e-3)  # 5 mm slices
    # every voxel column: slice z, phase k is the file at the z-th position with the k-th trigger time
    for ds in heads.values():
        z = ipps.index(tuple(float(v) for v in ds.ImagePositionPatient))
        k = [10.0, 174.0, 339.0].index(float(ds.TriggerTime))
        np.testing.assert_array_equal(cine.array[:, :, z, k], ds.pixel_array.T.astype(np.float32))
    # the heart moves: phase 5 (174 ms) differs from phase 0 more than noise would
    assert np.abs(cine.array[..., 1] - cine.array[..., 0]).mean() > 1.0
    array, affine, spacing, dt = cine  # unpacks as the brief API says
    assert array is cine.array and dt == cine.dt_ms


def test_convert_real_cine_subset_writes_4d_nifti(tmp_path):
    from interp4d_lite.data import read_nifti_4d

    out = tmp_path / "cine" / "pig_4d.nii.gz"
    cine = convert_dicom_cine(REAL_CINE, out)
    frames, affine, spacing = read_nifti_4d(out)  # the package's own reader
    assert frames.shape == (3, 256, 256, 3)
    np.testing.assert_array_equal(frames, np.moveaxis(cine.array, -1, 0))
    np.testing.assert_allclose(affine, cine.affine, atol=1e-4)
    import nibabel as nib

    img = nib.load(out)
    assert img.get_data_dtype() == np.int16
    assert img.header.get_xyzt_units() == ("mm", "msec")
    np.testing.assert_allclose(img.header.get_zooms(), (0.8203, 0.8203, 5.0, 164.5), atol=1e-3)
    assert int(img.header["sform_code"]) == 1 and b"TriggerTime" in img.header["descrip"].tobytes()


def _cine_frames(shape=(7, 6, 4, 5), seed=0):
    return np.random.default_rng(seed).integers(-200, 400, size=shape).astype(np.float32)


def test_synthetic_cine_oblique_geometry_and_trigger_order(tmp_path):
    frames = _cine_frames()
    r = rotation(0.2, 0.5, -0.7)
    row, col = r[:, 0], r[:, 1]
    step = -3.0 * np.cross(row, col)  # written in decreasing position along the normal
    origin = np.array([5.0, -8.0, 12.0])
    trig = [0.0, 31.5, 63.0, 94.5, 126.0]
    paths = write_cine(
        tmp_path,
        frames,
        trigger_times=trig,
        row_cos=row,
        col_cos=col,
        step_vec=step,
        origin_lps=origin,
        spacing_xy=(1.2, 0.9),
    )
    assert len(paths) == 5 and len(paths[0]) == 4
    cine = read_dicom_cine(tmp_path)
    np.testing.assert_array_equal(cine.array, frames[:, :, ::-1, :])  # sorted ascending along the normal
    np.testing.assert_allclose(
        cine.affine, expected_ras_affine(row, col, (1.2, 0.9), -step, origin + 3 * step), atol=1e-6
    )
    assert cine.dt_ms == pytest.approx(31.5) and cine.meta["time_source"] == "TriggerTime"


def test_cine_time_fallbacks(tmp_path):
    frames = _cine_frames(shape=(5, 5, 3, 4), seed=1)
    # no TriggerTime: AcquisitionTime orders the phases and gives the step
    acq = ["101500.000", "101500.040", "101500.080", "101500.120"]
    write_cine(tmp_path / "acq", frames, acquisition_times=acq[::-1] and acq)
    cine = read_dicom_cine(tmp_path / "acq")
    np.testing.assert_array_equal(cine.array, frames)
    assert cine.meta["time_source"] == "AcquisitionTime" and cine.dt_ms == pytest.approx(40.0, abs=1e-6)
    # neither: InstanceNumber gives the order only; the NIfTI has no time unit then
    write_cine(tmp_path / "inst", frames, instance_order=True)
    cine = convert_dicom_cine(tmp_path / "inst", tmp_path / "inst.nii")
    np.testing.assert_array_equal(cine.array, frames)
    assert cine.meta["time_source"] == "InstanceNumber" and cine.dt_ms is None
    import nibabel as nib

    img = nib.load(tmp_path / "inst.nii")
    assert img.header.get_xyzt_units() == ("mm", "unknown") and img.header.get_zooms()[3] == 1.0
    # no header orders them at all (InstanceNumber repeats across phases): an error
    write_cine(tmp_path / "none", frames)
    with pytest.raises(DicomSeriesError, match="cannot order the phases"):
        read_dicom_cine(tmp_path / "none")


TRIG = [10.0, 40.0, 70.0]


def _good_cine(folder, frames=None, **kw):
    frames = _cine_frames(shape=(6, 5, 4, 3)) if frames is None else frames
    return write_cine(folder, frames, trigger_times=TRIG, **kw)


def test_cine_errors_mixed_series(tmp_path):
    _good_cine(tmp_path)
    write_cine(tmp_path / "other", _cine_frames(shape=(6, 5, 4, 3)), trigger_times=TRIG)  # another series
    with pytest.raises(DicomSeriesError, match=r"2 different series"):
        read_dicom_cine(tmp_path)


def test_cine_errors_orientation_and_size(tmp_path):
    import pydicom

    paths = _good_cine(tmp_path / "o")
    ds = pydicom.dcmread(paths[1][2])
    ds.ImageOrientationPatient = [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    ds.save_as(paths[1][2])
    with pytest.raises(DicomSeriesError, match="different ImageOrientationPatient"):
        read_dicom_cine(tmp_path / "o")
    paths = _good_cine(tmp_path / "s")
    ds = pydicom.dcmread(paths[2][0])
    ds.Rows, ds.Columns = 4, 6
    ds.PixelData = np.zeros((4, 6), np.int16).tobytes()
    ds.save_as(paths[2][0])
    with pytest.raises(DicomSeriesError, match=r"different sizes .*4x6 vs 5x6"):
        read_dicom_cine(tmp_path / "s")


def test_cine_errors_missing_phase_and_unequal_slices(tmp_path):
    paths = _good_cine(tmp_path / "p")
    paths[1][2].unlink()  # slice 2 lacks phase 1
    with pytest.raises(DicomSeriesError, match=r"unequal phase counts.* has 2 phase\(s\), fewer than the 3 of 3"):
        read_dicom_cine(tmp_path / "p")
    # an extra slice position present in one phase only
    frames = _cine_frames(shape=(6, 5, 5, 3))
    paths = write_cine(tmp_path / "z", frames, trigger_times=TRIG)
    for k in (0, 1):
        paths[k][4].unlink()
    with pytest.raises(DicomSeriesError, match=r"has 1 phase\(s\), fewer than the 3 of 4 other"):
        read_dicom_cine(tmp_path / "z")
    # a slice position missing in every phase: a gap in the stack
    paths = write_cine(tmp_path / "g", _cine_frames(shape=(6, 5, 6, 3)), trigger_times=TRIG)
    for k in range(3):
        paths[k][2].unlink()
    with pytest.raises(DicomSeriesError, match=r"missing slice\(s\): gap of 5.000 mm .*about 1 slice"):
        read_dicom_cine(tmp_path / "g")


def test_cine_errors_duplicate_phase(tmp_path):
    import pydicom

    paths = _good_cine(tmp_path)
    ds = pydicom.dcmread(paths[0][1])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "copy.dcm")  # the same slice and trigger time twice
    with pytest.raises(
        DicomSeriesError, match=r"duplicated phase: (copy.dcm and c00_|c00_IM\d+.dcm and copy.dcm).* 10.0 ms"
    ):
        read_dicom_cine(tmp_path)
    ds.TriggerTime = 55.0  # one more phase at that slice only
    ds.save_as(tmp_path / "copy.dcm")
    with pytest.raises(DicomSeriesError, match=r"has 4 phase\(s\), more than the 3 of 3 other"):
        read_dicom_cine(tmp_path)


def test_cine_errors_files_and_folders(tmp_path):
    paths = _good_cine(tmp_path / "c")
    (tmp_path / "c" / "notes.dat").write_bytes(b"not a dicom file at all" * 20)
    with pytest.raises(DicomSeriesError, match=r"notes.dat: not a DICOM file"):
        read_dicom_cine(tmp_path / "c")
    (tmp_path / "c" / "notes.dat").unlink()
    data = paths[0][0].read_bytes()
    paths[0][0].write_bytes(data[: len(data) - 20])  # truncated pixel data
    with pytest.raises(DicomSeriesError, match=paths[0][0].name + r": (corrupt DICOM|cannot decode pixel data)"):
        read_dicom_cine(tmp_path / "c")
    paths[0][0].write_bytes(data[:300])  # truncated inside the header
    with pytest.raises(DicomSeriesError, match=paths[0][0].name + ": corrupt DICOM"):
        read_dicom_cine(tmp_path / "c")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: the folder is empty"):
        read_dicom_cine(tmp_path / "empty")
    with pytest.raises(DataError, match="nowhere: folder not found"):
        read_dicom_cine(tmp_path / "nowhere")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README.md").write_text("only a readme")
    with pytest.raises(DataError, match="no DICOM image among its 1 file"):
        read_dicom_cine(tmp_path / "docs")


def test_convert_output_errors(tmp_path):
    with pytest.raises(DataError, match=r"out.png: the output must be a NIfTI"):
        convert_dicom_cine(REAL_CINE, tmp_path / "out.png")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DataError, match="cannot create its folder"):
        convert_dicom_cine(REAL_CINE, tmp_path / "afile" / "out.nii.gz")
    (tmp_path / "d.nii.gz").mkdir()
    with pytest.raises(DataError, match="is a folder"):
        convert_dicom_cine(REAL_CINE, tmp_path / "d.nii.gz")
    import os

    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(DataError, match="is not writable"):
                convert_dicom_cine(REAL_CINE, ro / "out.nii.gz")
        finally:
            ro.chmod(0o700)


def test_convert_says_how_to_install_pydicom(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pydicom", None)  # import pydicom now raises ImportError
    with pytest.raises(DataError, match=r"needs pydicom: pip install 'interp4d_lite\[download\]'"):
        convert_dicom_cine(REAL_CINE, tmp_path / "o.nii.gz")


def test_convert_command(tmp_path, capsys):
    from interp4d_lite.cli import main

    out = tmp_path / "o.nii.gz"
    assert main(["convert", str(REAL_CINE), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "9 DICOM files" in text and "3 slices x 3 phases" in text and "ordered by TriggerTime" in text
    assert "time step 164.5 ms" in text and out.is_file()
    for argv, msg in (
        (["convert", str(REAL_CINE), "--out", str(out)], "exists; pass --force"),
        (["convert", str(tmp_path / "none"), "--out", str(tmp_path / "x.nii.gz")], "none: folder not found"),
        (["convert", str(out), "--out", str(tmp_path / "x.nii.gz")], "not a folder"),
        (["convert", str(REAL_CINE), "--out", str(tmp_path / "x.npy")], "must be a NIfTI"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and msg in err, err
    assert main(["convert", str(REAL_CINE), "--out", str(out), "--force"]) == 0
