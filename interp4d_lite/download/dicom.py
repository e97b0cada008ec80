"""DICOM reading lives in :mod:`interp4d_lite.data.dicom`; this module re-exports it for the
download tools and for code that imports it from here."""

from ..data.dicom import DicomCine, DicomVolume, read_dicom_cine, read_dicom_series

__all__ = ["DicomVolume", "DicomCine", "read_dicom_series", "read_dicom_cine"]
