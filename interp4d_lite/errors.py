"""The package's exceptions. Every message names the file (when there is one)
and what is wrong with it, so a user never has to read a traceback from deep
inside nibabel or torch."""

from __future__ import annotations


class Interp4DError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(Interp4DError, ValueError):
    """Bad input data: missing/corrupt files, wrong dimensionality, NaNs, bad Info.cfg, ..."""


class DicomSeriesError(DataError):
    """A DICOM series that cannot be turned into one regular volume
    (missing or duplicated slices, mixed geometry, no pixel data, ...)."""


class CheckpointError(Interp4DError, ValueError):
    """A checkpoint that is corrupt, of another model kind, or of an incompatible config."""


class CLIError(Interp4DError):
    """A wrong command-line argument: printed as one line, exit status 2."""
