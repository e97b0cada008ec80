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
