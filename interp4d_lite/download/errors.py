"""Exceptions of the download tools.

All derive from :class:`interp4d_lite.errors.Interp4DError`, so the CLIs print
them as one line and exit with status 2 (docs/ARCHITECTURE.md, "Errors"). ``DicomSeriesError``
(a DICOM series that is not one regular volume) belongs to the DICOM reader in ``data/``; it
is defined in :mod:`interp4d_lite.errors` and re-exported here."""

from __future__ import annotations

from ..errors import DicomSeriesError, Interp4DError


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


__all__ = [
    "DownloadError",
    "ChecksumError",
    "UnsafeArchiveError",
    "DiskFullError",
    "DicomSeriesError",
]
