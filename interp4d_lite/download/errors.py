"""Exceptions of the download tools.

All derive from :class:`interp4d_lite.errors.Interp4DError`, so the CLIs print
them as one line and exit with status 2 (docs/ARCHITECTURE.md, "Errors")."""

from __future__ import annotations

from ..errors import DataError, Interp4DError


class DownloadError(Interp4DError):
    """A download, extraction or conversion could not be completed.

    The destination is left as it was before the failing step, or in a state
    that a re-run of the same command resumes from."""


class ChecksumError(DownloadError):
    """A downloaded file does not have the expected size or SHA-256."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the destination
    (absolute path, ``..``, a link leaving the destination, a device file)."""


class DiskFullError(DownloadError):
    """The disk filled up (ENOSPC) while writing."""


class DicomSeriesError(DownloadError, DataError):
    """A DICOM series that cannot be turned into one regular volume
    (missing or duplicated slices, mixed geometry, no pixel data, ...)."""


__all__ = [
    "DownloadError",
    "ChecksumError",
    "UnsafeArchiveError",
    "DiskFullError",
    "DicomSeriesError",
]
