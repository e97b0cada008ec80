"""Download tools for the real data sets of the tutorial.

* ``interp4d-lite download acdc --dest DIR``    ACDC cardiac cine MRI (NIfTI, ~7 GB)
* ``interp4d-lite download lung4d --dest DIR``  TCIA 4D-Lung (DICOM -> NIfTI, ~170 GB raw)

Both write the on-disk layouts of docs/ARCHITECTURE.md, so that
``interp4d_lite.data.load_patient(DIR / patient_id)`` reads the result and the
``06_real_data`` notebook only needs ``data_root = DIR``. See README.md here.
Submodules: ``http`` (resumable download), ``archive`` (safe extraction),
``dicom`` (DICOM series -> volume + RAS affine), ``errors``.
"""

from .errors import ChecksumError, DicomSeriesError, DiskFullError, DownloadError, UnsafeArchiveError

__all__ = ["DownloadError", "ChecksumError", "UnsafeArchiveError", "DiskFullError", "DicomSeriesError"]
