"""Write small synthetic CT series and cine series with pydicom (test helper for the
download and convert tests).

A series is described by a volume ``hu`` of shape (X, Y, Z) (X along a DICOM row,
Y down the columns) and the geometry: row/column direction cosines (LPS), pixel
spacing (X, Y), slice step vector (LPS mm) and the LPS position of voxel (0, 0, 0).
Stored values are ``(hu - intercept) / slope`` as int16. A cine (:func:`write_cine`) is
one such series per phase, all with one SeriesInstanceUID, each file with the phase's
TriggerTime (and/or AcquisitionTime)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def expected_ras_affine(row_cos, col_cos, spacing_xy, step_vec, origin_lps) -> np.ndarray:
    a = np.eye(4)
    a[:3, 0] = np.asarray(row_cos) * spacing_xy[0]
    a[:3, 1] = np.asarray(col_cos) * spacing_xy[1]
    a[:3, 2] = np.asarray(step_vec)
    a[:3, 3] = np.asarray(origin_lps)
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ a


def write_series(
    out_dir: Path,
    hu: np.ndarray,
    *,
    row_cos=(1, 0, 0),
    col_cos=(0, 1, 0),
    spacing_xy=(0.8, 0.7),
    step_vec=None,
    origin_lps=(-10.0, -20.0, 30.0),
    slope: float = 1.0,
    intercept: float = -1024.0,
    patient_id: str = "P1",
    description: str = "test series",
    series_uid: str | None = None,
    study_uid: str | None = None,
    shuffle_seed: int | None = 0,
    skip: tuple[int, ...] = (),
    duplicate: tuple[int, ...] = (),
    series_date: str = "20100101",
    prefix: str = "IM",
    trigger_time: float | None = None,
    acquisition_time: str | None = None,
    instance_base: int | None = None,
) -> list[Path]:
    """Write the series; returns the paths in slice order (file names shuffled unless
    ``shuffle_seed`` is None). ``instance_base``: InstanceNumber ``instance_base + k + 1`` for
    slice ``k`` instead of deliberately misleading numbers."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    row_cos = np.asarray(row_cos, float)
    col_cos = np.asarray(col_cos, float)
    if step_vec is None:
        step_vec = np.cross(row_cos, col_cos) * 2.5
    step_vec = np.asarray(step_vec, float)
    origin = np.asarray(origin_lps, float)
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    frame_uid = generate_uid()
    nx, ny, nz = hu.shape
    stored = np.round((hu - intercept) / slope).astype(np.int16)
    indices = [k for k in range(nz) if k not in skip] + list(duplicate)
    names = [f"{prefix}{i:04d}.dcm" for i in range(len(indices))]
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(names)
    paths = []
    for n, (k, fname) in enumerate(zip(indices, names)):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        sop = generate_uid()
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(out_dir / fname), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop
        ds.Modality = "CT"
        ds.PatientID = patient_id
        ds.PatientName = patient_id
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.SeriesDescription = description
        ds.SeriesDate = series_date
        ds.StudyDate = series_date
        ds.SeriesNumber = 1
        # deliberately misleading instance numbers: reading must sort by position
        ds.InstanceNumber = (n * 7) % (len(indices) + 3) + 1 if instance_base is None else instance_base + n + 1
        if trigger_time is not None:
            ds.TriggerTime = float(trigger_time)
        if acquisition_time is not None:
            ds.AcquisitionTime = acquisition_time
        ds.ImageOrientationPatient = [float(v) for v in np.concatenate([row_cos, col_cos])]
        ds.ImagePositionPatient = [float(v) for v in origin + k * step_vec]
        ds.PixelSpacing = [float(spacing_xy[1]), float(spacing_xy[0])]  # [row spacing, column spacing]
        ds.SliceThickness = float(np.linalg.norm(step_vec))
        ds.Rows, ds.Columns = ny, nx
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        path = out_dir / fname
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_cine(
    out_dir: Path,
    frames: np.ndarray,
    *,
    trigger_times=None,
    acquisition_times=None,
    instance_order: bool = False,
    series_uid: str | None = None,
    **geometry,
) -> list[list[Path]]:
    """A cine of ``frames`` ``(X, Y, Z, T)``: phase ``k`` is a series of Z slices with
    TriggerTime ``trigger_times[k]`` ms (``None``: no TriggerTime) and AcquisitionTime
    ``acquisition_times[k]`` (DICOM TM text), files ``c<k>_IMxxxx.dcm`` with shuffled numbers;
    ``instance_order``: InstanceNumber increases with the phase (else misleading). ``geometry``
    goes to :func:`write_series`. Returns ``paths[k][z]`` (phase, slice)."""
    nt = frames.shape[3]
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid()
    paths = []
    for k in range(nt):
        paths.append(
            write_series(
                out_dir,
                frames[..., k],
                series_uid=series_uid,
                study_uid=study_uid,
                prefix=f"c{k:02d}_IM",
                shuffle_seed=k,
                trigger_time=None if trigger_times is None else trigger_times[k],
                acquisition_time=None if acquisition_times is None else acquisition_times[k],
                instance_base=k * frames.shape[2] if instance_order else None,
                **geometry,
            )
        )
    return paths
