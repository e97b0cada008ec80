"""A cine DICOM series (one file per slice and phase) -> one 4D NIfTI ``(X, Y, Z, T)``.

The geometry (slice order along the normal, RAS affine, spacing) and the phase order come
from :func:`interp4d_lite.data.dicom.read_dicom_cine`; this module writes the result:

* the voxel -> RAS affine as sform and qform (code 1, scanner);
* zooms ``(sx, sy, sz, dt)`` with ``xyzt_units = ("mm", "msec")``: ``pixdim[4]`` is the time
  step between phases in ms; when the series gives no times (phases ordered by
  ``InstanceNumber``) it is 1 and the time unit is left unknown;
* int16 when every value is an integer in the int16 range (MRI magnitudes, CT HU), else float32;
* ``descrip`` says which header ordered the phases.

``interp4d-lite convert DICOM_DIR --out NII4D`` runs :func:`convert_dicom_cine`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dicom import DicomCine, read_dicom_cine
from .io import write_nifti as save_nifti

__all__ = ["DicomCine", "read_dicom_cine", "convert_dicom_cine", "cine_to_nifti", "check_nifti_out", "save_nifti"]

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def check_nifti_out(out, overwrite: bool = True) -> Path:
    """``out`` as a path a NIfTI can be written to: it ends in ``.nii`` or ``.nii.gz``, is not
    a folder, its folder exists or can be made and is writable; with ``overwrite=False`` it
    must not exist yet. Else a one-line :class:`~interp4d_lite.errors.DataError`."""
    out = Path(out)
    if not out.name.lower().endswith(NIFTI_SUFFIXES):
        raise DataError(f"{out}: the output must be a NIfTI file ending in .nii.gz or .nii")
    if out.is_dir():
        raise DataError(f"{out}: is a folder; give a file name ending in .nii.gz")
    if out.exists() and not overwrite:
        raise DataError(f"{out}: exists; pass --force to replace it")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{out}: cannot create its folder {parent} ({exc.strerror or exc})") from None
    if not parent.is_dir():
        raise DataError(f"{out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"{out}: the folder {parent} is not writable")
    return out


def cine_to_nifti(cine: DicomCine):
    """The :class:`DicomCine` as a ``nibabel.Nifti1Image`` (see the module docstring)."""
    import nibabel as nib

    data = cine.array
    if np.all(np.isfinite(data)) and np.all(data == np.round(data)) and data.min() >= -32768 and data.max() <= 32767:
        data = data.astype(np.int16)
    img = nib.Nifti1Image(data, cine.affine)
    img.set_sform(cine.affine, code=1)
    img.set_qform(cine.affine, code=1)
    dt = cine.dt_ms if cine.dt_ms is not None and cine.dt_ms > 0 else None
    img.header.set_zooms((*(float(s) for s in cine.spacing), float(dt) if dt else 1.0))
    img.header.set_xyzt_units("mm", "msec" if dt else "unknown")
    source = cine.meta.get("time_source") or "?"
    img.header["descrip"] = f"DICOM cine, phases by {source}"[:79].encode()
    return img


def convert_dicom_cine(folder, out, *, overwrite: bool = True, tolerance: float = 0.05) -> DicomCine:
    """Read the cine DICOM series in ``folder`` (:func:`read_dicom_cine`) and write it to
    ``out`` (``.nii.gz`` or ``.nii``) as one 4D NIfTI, atomically. Returns the
    :class:`DicomCine` (array, affine, spacing, ``dt_ms``, ``meta["time_source"]``).

    >>> cine = convert_dicom_cine("dicom/", "cine_4d.nii.gz")  # doctest: +SKIP
    >>> cine.shape, cine.dt_ms, cine.meta["time_source"]  # doctest: +SKIP
    ((256, 256, 14, 20), 33.0, 'TriggerTime')
    """
    out = check_nifti_out(out, overwrite=overwrite)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: not a folder (give the folder holding the DICOM files)")
    cine = read_dicom_cine(folder, tolerance=tolerance)
    save_nifti(cine_to_nifti(cine), out)  # data.io.write_nifti, the one NIfTI writer
    return cine
