"""Safe extraction of zip and tar(.gz/.bz2/.xz) archives.

Every member is checked *before* anything is written: absolute paths, drive
letters, ``..`` components, symbolic or hard links whose target leaves the
destination, and device/FIFO members are rejected with
:class:`UnsafeArchiveError`. Extraction goes into a fresh temporary folder next
to the destination, which is renamed into place only when every member has been
written, so a failed or interrupted extraction never leaves a half-filled
destination (the temporary folder is removed on failure; a crash leaves only a
``.extract-*`` folder that the next run deletes).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from .errors import DiskFullError, DownloadError, UnsafeArchiveError
from .http import is_disk_full


def archive_format(path: Path) -> str:
    path = Path(path)
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except OSError:
        pass
    raise DownloadError(f"{path}: neither a zip nor a tar archive (corrupt or an HTML error page?)")


def _check_name(archive: Path, name: str) -> str:
    """Return the normalised relative POSIX path of a member, or raise."""
    raw = name.replace("\\", "/")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":") or raw.startswith("//"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeArchiveError(f"{archive}: member {name!r} contains '..'; refusing to extract")
    if "\x00" in raw:
        raise UnsafeArchiveError(f"{archive}: member {name!r} contains a NUL byte")
    return "/".join(parts)


def _check_link(archive: Path, member: str, target: str, hard: bool) -> None:
    t = target.replace("\\", "/")
    if t.startswith("/") or (len(t) > 1 and t[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: link {member!r} -> {target!r} points outside the destination")
    base = "" if hard else posixpath.dirname(member)
    resolved = posixpath.normpath(posixpath.join(base, t))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(f"{archive}: link {member!r} -> {target!r} points outside the destination")


def list_safe_members(archive: Path) -> tuple[str, list]:
    """Check every member; return (archive format, members). Raises UnsafeArchiveError."""
    archive = Path(archive)
    fmt = archive_format(archive)
    if fmt == "zip":
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                name = _check_name(archive, info.filename)
                mode = (info.external_attr >> 16) & 0xFFFF
                if stat.S_ISLNK(mode):
                    target = zf.read(info).decode("utf-8", "replace")
                    _check_link(archive, name, target, hard=False)
                    raise UnsafeArchiveError(
                        f"{archive}: member {name!r} is a symbolic link; links are not extracted from zip archives"
                    )
        return fmt, infos
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
    for m in members:
        name = _check_name(archive, m.name)
        if m.issym():
            _check_link(archive, name, m.linkname, hard=False)
        elif m.islnk():
            _check_name(archive, m.linkname)
            _check_link(archive, name, m.linkname, hard=True)
        elif not (m.isfile() or m.isdir()):
            raise UnsafeArchiveError(f"{archive}: member {name!r} is a device or FIFO; refusing to extract")
    return fmt, members


def zip_content_digest(archive: Path) -> str | None:
    """SHA-256 over the sorted (name, size, CRC-32) of a zip's members: equal for two
    zips with the same contents even if the server re-packed them (other timestamps
    or order). None for other archive formats."""
    if archive_format(archive) != "zip":
        return None
    with zipfile.ZipFile(archive) as zf:
        rows = sorted((i.filename, i.file_size, i.CRC) for i in zf.infolist() if not i.is_dir())
    h = hashlib.sha256()
    for name, size, crc in rows:
        h.update(f"{name}\t{size}\t{crc:08x}\n".encode())
    return h.hexdigest()


def safe_extract(archive: Path, dest: Path, *, check_space: bool = True) -> Path:
    """Extract ``archive`` into the new folder ``dest`` (which must not exist).

    Returns ``dest``. On any failure ``dest`` does not exist afterwards."""
    archive, dest = Path(archive), Path(dest)
    if dest.exists():
        raise DownloadError(f"{dest}: already exists; refusing to extract over it")
    fmt, members = list_safe_members(archive)
    if fmt == "zip":
        need = sum(i.file_size for i in members)
    else:
        need = sum(m.size for m in members if m.isfile())
    dest.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(dest.parent).free if check_space else 0
    if check_space and need > free:
        raise DiskFullError(
            f"{archive}: extraction needs {need / 1e9:.2f} GB but only {free / 1e9:.2f} GB are free in {dest.parent}"
        )
    for stale in dest.parent.glob(f".extract-{dest.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".extract-{dest.name}-", dir=dest.parent))
    try:
        if fmt == "zip":
            with zipfile.ZipFile(archive) as zf:
                for info in members:
                    rel = _check_name(archive, info.filename)
                    if not rel:
                        continue
                    out = tmp / rel
                    if info.is_dir():
                        out.mkdir(parents=True, exist_ok=True)
                        continue
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        else:
            with tarfile.open(archive) as tf:
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tf.extractall(tmp, members=members, **kwargs)
        _assert_inside(tmp)
        os.replace(tmp, dest)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(exc):
            raise DiskFullError(
                f"{archive}: disk full while extracting into {dest.parent}; "
                "the archive is kept, free some space and re-run"
            ) from exc
        if isinstance(exc, (zipfile.BadZipFile, tarfile.TarError, EOFError)):
            raise DownloadError(f"{archive}: corrupt archive ({exc})") from exc
        if isinstance(exc, tarfile.FilterError if hasattr(tarfile, "FilterError") else ()):
            raise UnsafeArchiveError(f"{archive}: {exc}") from exc
        raise
    return dest


def _assert_inside(root: Path) -> None:
    """Defence in depth: no extracted link may resolve outside ``root``."""
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                target = os.path.realpath(p)
                if os.path.commonpath([real_root, target]) != real_root:
                    raise UnsafeArchiveError(f"extracted link {p} points outside the destination")
