"""Writing files safely: every file the package writes for later reading (checkpoints,
loss histories, metrics tables, download state and manifests) goes through
:func:`atomic_write`.

The data goes to a temporary file in the destination's own folder (so the final
``os.replace`` is a rename on one file system, atomic on POSIX and Windows), is flushed
and fsynced, then replaces the destination. A crash, a full disk or an exception mid-write
leaves the previous version (or nothing) under the real name and no temporary file behind.

:func:`check_output_path` is the other half: a command checks, before any heavy work, that
it can write its output where it was asked to, and says in one line why not.

Standard library only: importing it costs nothing (the CLI's ``--help`` uses no torch).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from .errors import CLIError

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "check_output_path",
    "check_frames",
]

#: What the package writes volumes as (:func:`check_output_path`'s default).
NIFTI_SUFFIXES = (".nii", ".nii.gz")


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None, newline: str | None = None
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` for writing (``mode`` ``"wb"`` or ``"w"``);
    when the ``with`` block ends without an exception it replaces ``path``.

    >>> with atomic_write("out/table.csv", "w") as fh:   # doctest: +SKIP
    ...     fh.write("a,b\\n1,2\\n")
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600): give it the mode the file has, or the one a
        # plain open() would give a new file (0666 less the umask)
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        if mode == "w":
            fh = os.fdopen(fd, "w", encoding=encoding or "utf-8", newline=newline)
        else:
            fh = os.fdopen(fd, "wb")
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any, **dumps_kwargs: Any) -> Path:
    """``json.dumps(obj, **dumps_kwargs)`` written atomically (``indent=1`` unless given)."""
    dumps_kwargs.setdefault("indent", 1)
    return atomic_write_text(path, json.dumps(obj, **dumps_kwargs))


def check_output_path(
    path: str | os.PathLike, suffixes: Sequence[str] | None = NIFTI_SUFFIXES, *, what: str = "--out"
) -> Path:
    """Check that a command can write its output at ``path``, before it does any heavy work.

    Args:
        path: the output the user gave.
        suffixes: the file name endings the writer supports (``.nii``, ``.nii.gz`` by default):
            ``path`` is a file, which must end in one of them and whose folder must exist, be a
            folder and be writable. ``None``: ``path`` is an output folder (created by the
            command if missing), which must not be a file and whose nearest existing ancestor
            must be a writable folder.
        what: how the message names the path (the flag, e.g. ``"--out"`` or ``"--dest"``).

    Returns:
        ``Path(path)``.

    Raises:
        CLIError: one line naming the path and what is wrong with it.
    """
    p = Path(path)
    label = f"{what} {p}" if what else str(p)
    if suffixes is not None:
        if not any(p.name.endswith(s) and len(p.name) > len(s) for s in suffixes):
            got = "".join(p.suffixes) or "none"
            raise CLIError(f"{label}: unsupported file name suffix ({got}); use {' or '.join(suffixes)}")
        if p.is_dir():
            raise CLIError(f"{label}: is a folder; give a file name ending in {' or '.join(suffixes)}")
        folder = p.parent
        if not folder.exists():
            raise CLIError(f"{label}: the folder {folder} does not exist; create it first")
    else:
        if p.exists() and not p.is_dir():
            raise CLIError(f"{label}: exists and is not a folder")
        folder = p
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
    if not folder.is_dir():
        raise CLIError(f"{label}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CLIError(f"{label}: the folder {folder} is not writable")
    return p


def check_frames(frames: Sequence[int] | None, n: int | None = None, path=None) -> tuple[int, int]:
    """The two 0-based frame indices of ``--frames I J``, checked before the file is read:
    two of them, not negative, and different; with ``n`` (the frames of the file ``path``), also
    that both exist."""
    if frames is None or len(frames) != 2:
        raise CLIError("--input needs --frames I J (two 0-based frame indices)")
    i, j = (int(f) for f in frames)
    if min(i, j) < 0:
        raise CLIError(f"--frames {i} {j}: frame indices are 0-based, so they must be >= 0")
    if i == j:
        raise CLIError(f"--frames {i} {j}: frames I and J must differ (between a frame and itself there is no motion)")
    for f in (i, j) if n is not None else ():
        if not f < n:
            raise CLIError(f"frame index {f} out of range for {path}: it has {n} frames (0-based: 0..{n - 1})")
    return i, j
