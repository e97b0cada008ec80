"""HTTP helpers shared by the ACDC and 4D-Lung downloaders.

* :func:`download_file` streams a URL to ``dest`` through ``dest.part``: a
  partial ``.part`` file is resumed with an HTTP ``Range`` request (a server
  that ignores ``Range`` and answers 200 restarts the file from zero), the size
  is checked against ``Content-Length``/``Content-Range`` and an optional
  expected size, the SHA-256 is computed while streaming and checked against an
  optional expected hash, and only then is ``.part`` renamed to ``dest``
  (``os.replace``). An interrupted, cut or disk-full run leaves a resumable
  ``.part`` file; a checksum failure deletes the (unverified) ``.part`` file and
  never touches an existing ``dest``.
* 5xx answers, 429 and connection errors are retried ``retries`` times with
  exponential backoff (``backoff * 2**k`` seconds); other 4xx fail at once.
* :func:`get_json` fetches a JSON document with the same retry policy.

State and manifest files are written with :func:`interp4d_lite.io_utils.atomic_write_json`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ChecksumError, DiskFullError, DownloadError

if TYPE_CHECKING:  # requests (the [download] extra) is imported where it is used, not to parse the CLI
    import requests

CHUNK = 1 << 20
USER_AGENT = "interp4d_lite-data-download/0.1 (+https://github.com/; teaching package)"


@dataclass
class HTTPSettings:
    """Network policy. Tests use ``retries=1, backoff=0`` to stay fast."""

    retries: int = 4
    backoff: float = 2.0
    connect_timeout: float = 20.0
    read_timeout: float = 120.0
    progress: bool = True

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


def _session() -> requests.Session:
    import requests

    s = requests.Session()
    s.headers["User-Agent"] = USER_AGENT
    # Proxies from the environment (HTTPS_PROXY, NO_PROXY) are honoured.
    return s


# --------------------------------------------------------------------------- files


def _write_chunk(fh, data: bytes) -> None:
    """One write; a separate function so that tests can simulate a full disk."""
    fh.write(data)


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def sha256_file(path: Path, chunk: int = CHUNK) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def read_json(path: Path, default: Any = None) -> Any:
    path = Path(path)
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DownloadError(f"{path}: unreadable state file ({exc}); move it away to start afresh") from exc


# --------------------------------------------------------------------------- HTTP


def _describe(exc: BaseException) -> str:
    import requests

    text = str(exc)
    if isinstance(exc, requests.ConnectionError):
        if "refused" in text.lower():
            return "connection refused"
        if "Name or service not known" in text or "getaddrinfo" in text or "NameResolution" in text:
            return "host name not found"
        return "connection failed or was cut"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _retryable_status(code: int) -> bool:
    return code >= 500 or code == 429


def _sleep(settings: HTTPSettings, attempt: int) -> None:
    if settings.backoff > 0:
        time.sleep(settings.backoff * (2**attempt))


def get_json(
    url: str, params: dict | None = None, settings: HTTPSettings | None = None, session: requests.Session | None = None
) -> Any:
    """GET ``url`` and decode JSON, retrying 5xx/connection errors. An empty body is ``[]``
    (the NBIA API answers an empty 200/204 for an empty result)."""
    import requests

    settings = settings or HTTPSettings()
    session = session or _session()
    last = ""
    for attempt in range(settings.retries + 1):
        try:
            r = session.get(url, params=params, timeout=settings.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = f"cannot reach {url} ({_describe(exc)})"
        else:
            if r.status_code in (200, 204):
                if not r.content.strip():
                    return []
                try:
                    return r.json()
                except ValueError as exc:
                    raise DownloadError(f"{r.url}: answer is not JSON ({r.content[:80]!r})") from exc
            last = f"{r.url}: HTTP {r.status_code} {r.reason}"
            if not _retryable_status(r.status_code):
                raise DownloadError(last)
        if attempt < settings.retries:
            _sleep(settings, attempt)
    raise DownloadError(f"{last} (after {settings.retries + 1} attempts)")


def _total_from_headers(r: requests.Response, offset: int) -> int | None:
    cr = r.headers.get("Content-Range")
    if r.status_code == 206 and cr and "/" in cr:
        total = cr.rsplit("/", 1)[1].strip()
        if total.isdigit():
            return int(total)
    cl = r.headers.get("Content-Length")
    if cl and cl.isdigit() and "Content-Encoding" not in r.headers:
        return int(cl) + (offset if r.status_code == 206 else 0)
    return None


def _range_start(r: requests.Response) -> int | None:
    cr = r.headers.get("Content-Range", "")
    # "bytes 100-199/200"
    try:
        unit, rest = cr.split(" ", 1)
        return int(rest.split("-", 1)[0])
    except (ValueError, IndexError):
        return None


def download_file(
    url: str,
    dest: Path,
    *,
    params: dict | None = None,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
    settings: HTTPSettings | None = None,
    session: requests.Session | None = None,
    desc: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Download ``url`` to ``dest`` (see the module docstring). Returns
    ``{"path", "size", "sha256", "resumed", "url"}``.

    If ``dest`` already exists it is not downloaded again: its size and hash are
    checked against the expectations and returned."""
    import requests

    settings = settings or HTTPSettings()
    session = session or _session()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    expected_sha256 = expected_sha256.lower() if expected_sha256 else None

    if dest.exists():
        size = dest.stat().st_size
        digest = sha256_file(dest)
        _check(dest, size, digest, expected_size, expected_sha256, remove=None)
        return {"path": str(dest), "size": size, "sha256": digest, "resumed": False, "url": url}

    resumed = False
    last = ""
    attempt = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with session.get(url, params=params, headers=headers, stream=True, timeout=settings.timeout) as r:
                if r.status_code == 416 and offset:
                    # Range not satisfiable: the .part may already hold the whole file.
                    total = None
                    cr = r.headers.get("Content-Range", "")
                    if "/" in cr and cr.rsplit("/", 1)[1].strip().isdigit():
                        total = int(cr.rsplit("/", 1)[1])
                    if total is not None and total == offset:
                        break
                    # Otherwise the .part is inconsistent with the server's file: start over.
                    part.unlink()
                    last = f"{url}: server refused to resume (HTTP 416); restarting from zero"
                    raise _Retry()
                if r.status_code not in (200, 206):
                    last = f"{r.url}: HTTP {r.status_code} {r.reason}"
                    if _retryable_status(r.status_code):
                        raise _Retry()
                    raise DownloadError(last)
                if r.status_code == 206 and _range_start(r) != offset:
                    raise DownloadError(
                        f"{r.url}: server answered the wrong byte range "
                        f"({r.headers.get('Content-Range')!r} for offset {offset})"
                    )
                mode = "ab" if r.status_code == 206 else "wb"
                if r.status_code == 200:
                    offset = 0  # server ignored Range (or nothing to resume): start over
                else:
                    resumed = True
                total = _total_from_headers(r, offset)
                if expected_size is not None and total is not None and total != expected_size:
                    raise ChecksumError(
                        f"{url}: server announces {total} bytes, expected {expected_size}; "
                        "the file on the server changed or the URL is wrong"
                    )
                _stream(r, part, mode, offset, total or expected_size, settings, desc or dest.name, on_progress)
                got = part.stat().st_size
                if total is not None and got != total:
                    last = f"{url}: connection cut at {got} of {total} bytes"
                    raise _Retry()
                break
        except _Retry:
            pass
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            have = part.stat().st_size if part.exists() else 0
            last = f"cannot download {url} ({_describe(exc)}; {have} bytes kept in {part.name})"
        except OSError as exc:
            if is_disk_full(exc):
                have = part.stat().st_size if part.exists() else 0
                raise DiskFullError(
                    f"{part}: disk full after {have} bytes; free some space and re-run the same "
                    "command to resume (nothing else was changed)"
                ) from exc
            raise
        if attempt >= settings.retries:
            raise DownloadError(f"{last} (gave up after {attempt + 1} attempts; re-run to resume)")
        _sleep(settings, attempt)
        attempt += 1

    size = part.stat().st_size
    digest = sha256_file(part)
    _check(part, size, digest, expected_size, expected_sha256, remove=part)
    os.replace(part, dest)
    return {"path": str(dest), "size": size, "sha256": digest, "resumed": resumed, "url": url}


class _Retry(Exception):
    pass


def _stream(
    r, part: Path, mode: str, offset: int, total: int | None, settings: HTTPSettings, desc: str, on_progress
) -> None:
    bar = None
    if settings.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, leave=False)
    try:
        with open(part, mode) as fh:
            for chunk in r.iter_content(chunk_size=CHUNK):
                if not chunk:
                    continue
                _write_chunk(fh, chunk)
                if bar is not None:
                    bar.update(len(chunk))
                if on_progress is not None:
                    on_progress(len(chunk))
    finally:
        if bar is not None:
            bar.close()


def _check(path: Path, size: int, digest: str, expected_size, expected_sha256, remove: Path | None) -> None:
    problem = None
    if expected_size is not None and size != expected_size:
        problem = f"{path}: size {size} bytes, expected {expected_size}"
    elif expected_sha256 is not None and digest != expected_sha256:
        problem = f"{path}: SHA-256 {digest} does not match the expected {expected_sha256}"
    if problem is None:
        return
    if remove is not None:
        try:
            remove.unlink()
            problem += " (the unverified partial download was deleted; re-run to download again)"
        except OSError:
            pass
    else:
        problem += " (file left in place; delete it to download again)"
    raise ChecksumError(problem)
