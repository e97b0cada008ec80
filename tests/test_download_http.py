"""Resumable download, retries, checksums, disk-full and safe extraction, against a
local HTTP server on 127.0.0.1 (no internet)."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import tarfile
import zipfile

import pytest
from _download_server import FakeServer, Route, closed_port_url

import interp4d_lite.download.http as dh
from interp4d_lite.download.archive import safe_extract, zip_content_digest
from interp4d_lite.download.errors import ChecksumError, DiskFullError, DownloadError, UnsafeArchiveError
from interp4d_lite.errors import Interp4DError

FAST = dh.HTTPSettings(retries=0, backoff=0.0, connect_timeout=5, read_timeout=5, progress=False)


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch):
    monkeypatch.setattr(dh, "CHUNK", 8 * 1024)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def _payload(n=200_000, seed=0):
    import random

    return random.Random(seed).randbytes(n)


def _sha(b):
    return hashlib.sha256(b).hexdigest()


def test_plain_download_and_idempotent_rerun(tmp_path):
    body = _payload()
    with FakeServer({"/f.bin": Route(body)}) as srv:
        out = dh.download_file(srv.url + "/f.bin", tmp_path / "f.bin", expected_sha256=_sha(body), settings=FAST)
        assert out["sha256"] == _sha(body) and out["size"] == len(body) and not out["resumed"]
        assert (tmp_path / "f.bin").read_bytes() == body
        assert not (tmp_path / "f.bin.part").exists()
        again = dh.download_file(srv.url + "/f.bin", tmp_path / "f.bin", settings=FAST)
        assert again["sha256"] == _sha(body)
        assert srv.hits("/f.bin") == 1  # the complete file is not fetched again


def test_resume_after_cut_connection(tmp_path):
    body = _payload()
    route = Route(body, cut_after=70_000, cut_times=1)
    with FakeServer({"/f.bin": route}) as srv:
        with pytest.raises(DownloadError, match="re-run to resume"):
            dh.download_file(srv.url + "/f.bin", tmp_path / "f.bin", settings=FAST)
        part = tmp_path / "f.bin.part"
        assert not (tmp_path / "f.bin").exists()
        kept = part.stat().st_size
        assert 0 < kept <= 70_000 and part.read_bytes() == body[:kept]
        out = dh.download_file(srv.url + "/f.bin", tmp_path / "f.bin", expected_sha256=_sha(body), settings=FAST)
        assert out["resumed"] and out["sha256"] == _sha(body)
        assert srv.log[-1][2] == f"bytes={kept}-"
        assert (tmp_path / "f.bin").read_bytes() == body


def test_cut_connection_resumed_within_one_call(tmp_path):
    body = _payload(seed=1)
    settings = dh.HTTPSettings(retries=2, backoff=0.0, progress=False)
    with FakeServer({"/f.bin": Route(body, cut_after=50_000, cut_times=1)}) as srv:
        out = dh.download_file(
            srv.url + "/f.bin",
            tmp_path / "f.bin",
            expected_size=len(body),
            expected_sha256=_sha(body),
            settings=settings,
        )
        assert out["resumed"] and srv.hits("/f.bin") == 2
    assert (tmp_path / "f.bin").read_bytes() == body


def test_server_without_range_support_restarts(tmp_path):
    body = _payload(seed=2)
    (tmp_path / "f.bin.part").write_bytes(b"garbage-from-elsewhere")
    with FakeServer({"/f.bin": Route(body, ranges=False)}) as srv:
        out = dh.download_file(srv.url + "/f.bin", tmp_path / "f.bin", expected_sha256=_sha(body), settings=FAST)
    assert not out["resumed"] and (tmp_path / "f.bin").read_bytes() == body


def test_part_already_complete_gets_416(tmp_path):
    body = _payload(seed=3)
    (tmp_path / "f.bin.part").write_bytes(body)
    with FakeServer({"/f.bin": Route(body)}) as srv:
        out = dh.download_file(srv.url + "/f.bin", tmp_path / "f.bin", expected_sha256=_sha(body), settings=FAST)
    assert out["sha256"] == _sha(body)


def test_checksum_mismatch_deletes_unverified_part_and_keeps_existing(tmp_path):
    body = _payload(seed=4)
    with FakeServer({"/f.bin": Route(body)}) as srv:
        with pytest.raises(ChecksumError, match="SHA-256"):
            dh.download_file(srv.url + "/f.bin", tmp_path / "f.bin", expected_sha256="0" * 64, settings=FAST)
        assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()
        with pytest.raises(ChecksumError, match="announces 200000 bytes, expected 200001"):
            dh.download_file(srv.url + "/f.bin", tmp_path / "g.bin", expected_size=len(body) + 1, settings=FAST)
        # an existing (verified earlier) file is never deleted by a failed check
        (tmp_path / "h.bin").write_bytes(b"old")
        with pytest.raises(ChecksumError, match="left in place"):
            dh.download_file(srv.url + "/f.bin", tmp_path / "h.bin", expected_sha256=_sha(body), settings=FAST)
        assert (tmp_path / "h.bin").read_bytes() == b"old"


def test_http_404_fails_at_once(tmp_path):
    with FakeServer({}) as srv:
        settings = dh.HTTPSettings(retries=3, backoff=0.0, progress=False)
        with pytest.raises(DownloadError, match="HTTP 404"):
            dh.download_file(srv.url + "/missing.zip", tmp_path / "m.zip", settings=settings)
        assert srv.hits("/missing.zip") == 1
        with pytest.raises(DownloadError, match="HTTP 404"):
            dh.get_json(srv.url + "/missing.json", settings=settings)
    assert list(tmp_path.iterdir()) == []


def test_http_5xx_is_retried_with_bounded_attempts(tmp_path, monkeypatch):
    sleeps = []
    monkeypatch.setattr(dh.time, "sleep", sleeps.append)
    body = _payload(seed=5)
    settings = dh.HTTPSettings(retries=2, backoff=0.5, progress=False)
    with FakeServer({"/ok.bin": Route(body, statuses=[500, 503]), "/bad.bin": Route(body, statuses=[500] * 10)}) as srv:
        dh.download_file(srv.url + "/ok.bin", tmp_path / "ok.bin", settings=settings)
        assert srv.hits("/ok.bin") == 3 and sleeps == [0.5, 1.0]  # exponential backoff
        with pytest.raises(DownloadError, match=r"HTTP 500.*3 attempts"):
            dh.download_file(srv.url + "/bad.bin", tmp_path / "bad.bin", settings=settings)
        assert srv.hits("/bad.bin") == 3
    assert (tmp_path / "ok.bin").read_bytes() == body


def test_unreachable_server_message(tmp_path):
    with pytest.raises(Interp4DError, match="cannot reach .*connection refused"):
        dh.get_json(closed_port_url(), settings=FAST)
    with pytest.raises(DownloadError, match="cannot download .*connection refused"):
        dh.download_file(closed_port_url(), tmp_path / "x.zip", settings=FAST)
    assert not (tmp_path / "x.zip").exists()


def test_disk_full_keeps_resumable_part(tmp_path, monkeypatch):
    body = _payload(seed=6)
    real = dh._write_chunk
    written = {"n": 0}

    def full_after_40k(fh, data):
        if written["n"] >= 40_000:
            raise OSError(errno.ENOSPC, "No space left on device")
        written["n"] += len(data)
        real(fh, data)

    with FakeServer({"/f.bin": Route(body)}) as srv:
        monkeypatch.setattr(dh, "_write_chunk", full_after_40k)
        with pytest.raises(DiskFullError, match="disk full.*re-run"):
            dh.download_file(srv.url + "/f.bin", tmp_path / "f.bin", settings=FAST)
        kept = (tmp_path / "f.bin.part").read_bytes()
        assert 0 < len(kept) < len(body) and body.startswith(kept)
        monkeypatch.setattr(dh, "_write_chunk", real)
        out = dh.download_file(srv.url + "/f.bin", tmp_path / "f.bin", expected_sha256=_sha(body), settings=FAST)
        assert out["resumed"]


def test_state_file_survives_disk_full(tmp_path, monkeypatch, capsys):
    """The downloaders write state files with io_utils.atomic_write_json: a full disk keeps
    the previous version and no temporary file, and the command prints it as one line."""
    from interp4d_lite import io_utils
    from interp4d_lite.download import _common as C

    p = tmp_path / "state.json"
    io_utils.atomic_write_json(p, {"a": 1}, indent=2, sort_keys=True)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_utils.os, "fsync", full)
    with pytest.raises(OSError) as exc:
        io_utils.atomic_write_json(p, {"a": 2}, indent=2, sort_keys=True)
    assert dh.is_disk_full(exc.value)
    assert json.loads(p.read_text()) == {"a": 1}
    assert [q.name for q in tmp_path.iterdir()] == ["state.json"]
    assert C.run_cli(lambda _: io_utils.atomic_write_json(p, {"a": 3}), None, "dl") == 2
    err = capsys.readouterr().err
    assert err.startswith("dl: error: disk full") and err.count("\n") == 1, err
    assert json.loads(p.read_text()) == {"a": 1}


# ------------------------------------------------------------------ archives


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def _link(name, target, member_type=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = member_type
    info.linkname = target
    return info


def test_good_zip_and_tar_extract(tmp_path):
    (tmp_path / "a.zip").write_bytes(_zip({"db/training/p1/x.txt": b"1", "db/README": b"r"}))
    safe_extract(tmp_path / "a.zip", tmp_path / "outz")
    assert (tmp_path / "outz/db/training/p1/x.txt").read_bytes() == b"1"
    (tmp_path / "a.tar.gz").write_bytes(_tar([("d/f.txt", b"2"), _link("d/l", "f.txt")]))
    safe_extract(tmp_path / "a.tar.gz", tmp_path / "outt")
    assert (tmp_path / "outt/d/l").read_bytes() == b"2"  # a link inside is fine
    assert not list(tmp_path.glob(".extract-*"))
    with pytest.raises(DownloadError, match="already exists"):
        safe_extract(tmp_path / "a.zip", tmp_path / "outz")


@pytest.mark.parametrize(
    "name,make",
    [
        ("zip-dotdot", lambda: _zip({"ok.txt": b"ok", "../evil.txt": b"x"})),
        ("zip-nested-dotdot", lambda: _zip({"a/../../evil.txt": b"x"})),
        ("zip-absolute", lambda: _zip({"/tmp/evil.txt": b"x"})),
        ("tar-dotdot", lambda: _tar([("ok.txt", b"ok"), ("../evil.txt", b"x")])),
        ("tar-absolute", lambda: _tar([("/etc/evil", b"x")])),
        ("tar-symlink-escape", lambda: _tar([_link("d/esc", "../../outside"), ("ok.txt", b"ok")])),
        ("tar-symlink-absolute", lambda: _tar([_link("esc", "/etc/passwd")])),
        ("tar-hardlink-escape", lambda: _tar([_link("h", "../outside", tarfile.LNKTYPE)])),
        ("tar-device", lambda: _tar([_link("dev", "", tarfile.CHRTYPE)])),
    ],
)
def test_hostile_archives_rejected(tmp_path, name, make):
    arc = tmp_path / "in" / ("x.zip" if name.startswith("zip") else "x.tar.gz")
    arc.parent.mkdir()
    arc.write_bytes(make())
    dest = tmp_path / "box" / "out"
    dest.parent.mkdir()
    with pytest.raises(UnsafeArchiveError):
        safe_extract(arc, dest)
    assert not dest.exists()
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "box" / "evil.txt").exists()
    assert [p for p in (tmp_path / "box").iterdir()] == []


def test_zip_symlink_rejected_and_corrupt_archive(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "../../etc/passwd")
    (tmp_path / "l.zip").write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(tmp_path / "l.zip", tmp_path / "o")
    (tmp_path / "bad.zip").write_bytes(b"<html>login required</html>")
    with pytest.raises(DownloadError, match="neither a zip nor a tar"):
        safe_extract(tmp_path / "bad.zip", tmp_path / "o2")


def test_extraction_disk_full_leaves_nothing(tmp_path, monkeypatch):
    import shutil

    (tmp_path / "a.zip").write_bytes(_zip({f"f{i}.bin": os.urandom(1000) for i in range(5)}))

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", full)
    with pytest.raises(DiskFullError, match="archive is kept"):
        safe_extract(tmp_path / "a.zip", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]


def test_zip_content_digest_ignores_repacking(tmp_path):
    a = _zip({"x": b"1", "y": b"2"})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("y", date_time=(2001, 1, 1, 0, 0, 0)), b"2")
        zf.writestr("x", b"1")
    (tmp_path / "a.zip").write_bytes(a)
    (tmp_path / "b.zip").write_bytes(buf.getvalue())
    assert zip_content_digest(tmp_path / "a.zip") == zip_content_digest(tmp_path / "b.zip")
    (tmp_path / "c.zip").write_bytes(_zip({"x": b"1", "y": b"3"}))
    assert zip_content_digest(tmp_path / "a.zip") != zip_content_digest(tmp_path / "c.zip")


# ------------------------------------------------------------------ destination lock


def test_dest_lock_refuses_a_second_run_and_survives_a_crash(tmp_path):
    """While one process holds the destination lock a second run fails at once with a
    message naming the lock; a holder killed with SIGKILL (no clean-up) frees it."""
    import signal
    import subprocess
    import sys

    from interp4d_lite.download._common import dest_lock

    lock = tmp_path / ".acdc" / "lock"
    lock.parent.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, filelock; l = filelock.FileLock(sys.argv[1]); l.acquire(); "
            "print('held', flush=True); time.sleep(60)",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DownloadError, match=r"lock: another download is writing to this destination"):
            with dest_lock(lock):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with dest_lock(lock):  # the crashed holder left no stale lock
        with pytest.raises(DownloadError):
            with dest_lock(lock):
                pass
