"""`interp4d-lite download acdc` against a fabricated ACDC zip on a local server (127.0.0.1)."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from _download_server import FakeServer, Route
from _download_server import lock_is_free as _lock_is_free

import interp4d_lite.download.acdc as acdc
import interp4d_lite.download.http as dh

PATIENTS = {
    "patient001": ("training", 4, 1, 3),
    "patient002": ("training", 5, 1, 4),
    "patient101": ("testing", 3, 1, 2),
}


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setattr(dh, "CHUNK", 512)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("ACDC_URL", raising=False)


def _nifti_bytes(shape, seed, spacing=(1.5, 1.4, 10.0)):
    data = np.random.default_rng(seed).integers(0, 500, size=shape).astype(np.int16)
    img = nib.Nifti1Image(data, np.diag([*spacing, 1.0]))
    img.header.set_zooms(spacing + ((1.0,) if len(shape) == 4 else ()))
    return gzip_bytes(img.to_bytes()), data


def gzip_bytes(raw: bytes) -> bytes:
    import gzip

    return gzip.compress(raw, mtime=0)


def make_acdc_zip(
    extra: dict[str, bytes] | None = None, frames_delta: int = 0, compression=zipfile.ZIP_STORED, prefix: str = "ACDC/"
) -> tuple[bytes, dict]:
    arrays = {}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        zf.writestr(prefix + "MANDATORY_CITATION.md", "cite Bernard et al. 2018")
        for i, (pid, (subset, nt, ed, es)) in enumerate(PATIENTS.items()):
            base = f"{prefix}database/{subset}/{pid}/"
            b, arr = _nifti_bytes((6, 5, 3, nt + frames_delta), seed=i)
            arrays[pid] = arr
            zf.writestr(base + f"{pid}_4d.nii.gz", b)
            zf.writestr(
                base + "Info.cfg", f"ED: {ed}\nES: {es}\nGroup: NOR\nHeight: 180.0\nNbFrame: {nt}\nWeight: 80.0\n"
            )
            zf.writestr(base + f"{pid}_frame01.nii.gz", _nifti_bytes((6, 5, 3), seed=10 + i)[0])
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue(), arrays


def run(dest, url, *extra):
    return acdc.main(["--dest", str(dest), "--url", url, "--retries", "0", "--backoff", "0", "--no-progress", *extra])


def test_download_extract_arrange_and_idempotent(tmp_path, capsys):
    body, arrays = make_acdc_zip()
    dest = tmp_path / "acdc"
    with FakeServer({"/acdc.zip": Route(body)}) as srv:
        assert run(dest, srv.url + "/acdc.zip") == 0
        out = capsys.readouterr().out
        assert "doi:10.1109/TMI.2018.2837502" in out and "Bernard" in out
        for pid, (_subset, nt, _ed, es) in PATIENTS.items():
            img = nib.load(dest / pid / f"{pid}_4d.nii.gz")
            assert img.shape == (6, 5, 3, nt)
            np.testing.assert_array_equal(np.asarray(img.dataobj), arrays[pid])
            assert f"ES: {es}" in (dest / pid / "Info.cfg").read_text()
            assert (dest / pid / f"{pid}_frame01.nii.gz").exists()
        ds = json.loads((dest / "dataset.json").read_text())
        assert ds["layout"] == "acdc" and ds["kind"] == "cardiac" and ds["patients"] == sorted(PATIENTS)
        assert ds["acdc_subsets"]["patient101"] == "testing"
        state = json.loads((dest / ".acdc" / "state.json").read_text())
        assert state["complete"] and state["archive"]["sha256"] == hashlib.sha256(body).hexdigest()
        assert (dest / ".acdc" / "extras" / "ACDC" / "MANDATORY_CITATION.md").exists()
        assert not list(dest.rglob("*.part")) and _lock_is_free(dest / ".acdc" / "lock")
        hits = srv.hits("/acdc.zip")
        assert run(dest, srv.url + "/acdc.zip") == 0
        assert "already complete" in capsys.readouterr().out
        assert srv.hits("/acdc.zip") == hits
    assert acdc.main(["--dest", str(dest), "--verify"]) == 0


def test_resume_after_cut_connection(tmp_path, capsys):
    body, _ = make_acdc_zip()
    dest = tmp_path / "acdc"
    with FakeServer({"/acdc.zip": Route(body, cut_after=len(body) // 2, cut_times=1)}) as srv:
        assert run(dest, srv.url + "/acdc.zip") == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "re-run to resume" in err
        part = dest / ".acdc" / "acdc.zip.part"
        kept = part.stat().st_size
        assert 0 < kept < len(body)
        assert not any(p.name.startswith("patient") for p in dest.iterdir())
        assert run(dest, srv.url + "/acdc.zip") == 0
        assert srv.log[-1][2] == f"bytes={kept}-"
    state = json.loads((dest / ".acdc" / "state.json").read_text())
    assert state["archive"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert sorted(p.name for p in dest.glob("patient*")) == sorted(PATIENTS)


def test_wrong_sha256_and_http_errors_leave_dest_clean(tmp_path, capsys):
    body, _ = make_acdc_zip()
    dest = tmp_path / "acdc"
    with FakeServer({"/acdc.zip": Route(body), "/boom.zip": Route(body, statuses=[500] * 5)}) as srv:
        assert run(dest, srv.url + "/acdc.zip", "--sha256", "ab" * 32) == 2
        assert "SHA-256" in capsys.readouterr().err
        assert run(dest, srv.url + "/nothing.zip") == 2
        assert "HTTP 404" in capsys.readouterr().err
        assert run(dest, srv.url + "/boom.zip", "--retries", "1") == 2
        assert "HTTP 500" in capsys.readouterr().err and srv.hits("/boom.zip") == 2
    assert sorted(p.name for p in dest.iterdir()) == [".acdc"]
    # nothing but the (free) destination lock: no partial download, no state
    assert sorted(p.name for p in (dest / ".acdc").iterdir() if p.name != "lock") == []
    assert _lock_is_free(dest / ".acdc" / "lock")


def test_recorded_hash_guards_later_downloads(tmp_path, capsys):
    body, _ = make_acdc_zip()
    dest = tmp_path / "acdc"
    with FakeServer({"/acdc.zip": Route(body)}) as srv:
        assert run(dest, srv.url + "/acdc.zip") == 0
    # the user lost one patient and the archive; the server now serves other content
    import shutil

    shutil.rmtree(dest / "patient002")
    (dest / ".acdc" / "acdc.zip").unlink()
    changed, _ = make_acdc_zip(frames_delta=1)
    with FakeServer({"/acdc.zip": Route(changed)}) as srv:
        assert run(dest, srv.url + "/acdc.zip") == 2
        err = capsys.readouterr().err
        assert "differs from the first good download" in err
    assert (dest / "patient001" / "patient001_4d.nii.gz").exists()  # verified data untouched
    assert not (dest / ".acdc" / "acdc.zip").exists()
    # same content, re-packed (other compression => other bytes): accepted via the content digest
    repacked, _ = make_acdc_zip(compression=zipfile.ZIP_DEFLATED)
    assert hashlib.sha256(repacked).digest() != hashlib.sha256(body).digest()
    with FakeServer({"/acdc.zip": Route(repacked)}) as srv:
        assert run(dest, srv.url + "/acdc.zip") == 0
    assert (dest / "patient002" / "Info.cfg").exists()


@pytest.mark.parametrize("evil", ["ACDC/../../evil.txt", "/tmp/acdc_evil_abs.txt"])
def test_hostile_archive_rejected(tmp_path, capsys, evil):
    body, _ = make_acdc_zip(extra={evil: b"pwned"})
    dest = tmp_path / "a" / "acdc"
    with FakeServer({"/acdc.zip": Route(body)}) as srv:
        assert run(dest, srv.url + "/acdc.zip") == 2
    assert "refusing to extract" in capsys.readouterr().err
    assert not list(tmp_path.rglob("evil.txt")) and not Path("/tmp/acdc_evil_abs.txt").exists()
    assert not any(p.name.startswith("patient") for p in dest.iterdir())


def test_disk_full_then_resume(tmp_path, capsys, monkeypatch):
    body, _ = make_acdc_zip()
    dest = tmp_path / "acdc"
    real = dh._write_chunk
    n = {"w": 0}

    def full_later(fh, data):
        n["w"] += 1
        if n["w"] > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fh, data)

    with FakeServer({"/acdc.zip": Route(body)}) as srv:
        monkeypatch.setattr(dh, "_write_chunk", full_later)
        assert run(dest, srv.url + "/acdc.zip") == 2
        assert "disk full" in capsys.readouterr().err
        assert (dest / ".acdc" / "acdc.zip.part").stat().st_size == 2 * 512
        monkeypatch.setattr(dh, "_write_chunk", real)
        monkeypatch.setenv("ACDC_URL", srv.url + "/acdc.zip")
        assert acdc.main(["--dest", str(dest), "--no-progress", "--retries", "0"]) == 0  # URL from $ACDC_URL
    assert len(list(dest.glob("patient*"))) == 3


def test_interrupted_arrangement_resumes(tmp_path, capsys, monkeypatch):
    body, _ = make_acdc_zip()
    dest = tmp_path / "acdc"
    real = acdc.os.replace
    calls = {"n": 0}

    def interrupt_second_move(src, dst):
        if Path(dst).name.startswith("patient"):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
        return real(src, dst)

    with FakeServer({"/acdc.zip": Route(body)}) as srv:
        monkeypatch.setattr(acdc.os, "replace", interrupt_second_move)
        assert run(dest, srv.url + "/acdc.zip") == 130
        assert "re-run the same command" in capsys.readouterr().err
        assert not (dest / "dataset.json").exists()
        monkeypatch.setattr(acdc.os, "replace", real)
        assert run(dest, srv.url + "/acdc.zip") == 0
        assert srv.hits("/acdc.zip") == 1  # the archive was not fetched again
    assert sorted(json.loads((dest / "dataset.json").read_text())["patients"]) == sorted(PATIENTS)


def test_verify_reports_broken_copy(tmp_path, capsys):
    body, _ = make_acdc_zip()
    dest = tmp_path / "acdc"
    with FakeServer({"/acdc.zip": Route(body)}) as srv:
        assert run(dest, srv.url + "/acdc.zip") == 0
    capsys.readouterr()
    cfg = dest / "patient002" / "Info.cfg"
    cfg.write_text(cfg.read_text().replace("NbFrame: 5", "NbFrame: 7"))
    (dest / "patient101" / "patient101_4d.nii.gz").unlink()
    assert acdc.main(["--dest", str(dest), "--verify"]) == 2
    out, err = capsys.readouterr()
    assert "5 frames but Info.cfg says NbFrame: 7" in out and "patient101_4d.nii.gz: missing" in out
    assert "2 problem(s)" in err
    assert acdc.main(["--dest", str(tmp_path / "nowhere"), "--verify"]) == 2
    # Info.cfg is read by the loaders' reader (interp4d_lite.data.io.read_info_cfg): its messages
    cfg.write_text("ED: 1\nNbFrame: 5\n")
    assert acdc.check_patient(dest / "patient002") == [f"{cfg}: no 'ES:' line (keys found: ED, NbFrame)"]
    cfg.write_text("ED: 1\nES: two\nNbFrame: 5\n")
    assert acdc.check_patient(dest / "patient002") == [f"{cfg}: ES must be a frame number, got 'two'"]
    cfg.write_text("ED: 1\nES: 2\n")
    assert acdc.check_patient(dest / "patient002") == [f"{cfg}: no 'NbFrame:' line"]


def test_not_acdc_archive(tmp_path, capsys):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with FakeServer({"/x.zip": Route(buf.getvalue()), "/login.zip": Route(b"<html>please log in</html>")}) as srv:
        assert run(tmp_path / "d", srv.url + "/x.zip") == 2
        assert "is this the ACDC zip" in capsys.readouterr().err
        assert run(tmp_path / "e", srv.url + "/login.zip") == 2
        err = capsys.readouterr().err
        assert "neither a zip nor a tar" in err and "archive was deleted" in err
        assert [p.name for p in (tmp_path / "e" / ".acdc").iterdir() if p.name != "lock"] == []


def test_package_main_dispatch(tmp_path, capsys):
    from interp4d_lite.download.__main__ import main

    assert main([]) == 2
    assert main(["acdc", "--dest", str(tmp_path / "none"), "--verify"]) == 2
    assert "no such folder" in capsys.readouterr().out
    assert main(["lung4d", "--dest", str(tmp_path / "none"), "--verify"]) == 2


def test_reachable_as_interp4d_lite_download_and_through_the_clone_shim(tmp_path, capsys):
    """`interp4d-lite download acdc|lung4d` runs the downloaders (their errors are one line,
    exit 2); `python -m data_download.acdc` in a clone still works (a shim, not installed)."""
    import subprocess
    import sys

    from interp4d_lite.cli import main

    assert main(["download", "acdc", "--dest", str(tmp_path / "none"), "--verify"]) == 2
    captured = capsys.readouterr()
    assert "no such folder" in captured.out and "interp4d-lite download acdc: error:" in captured.err
    assert main(["download", "lung4d", "--dest", str(tmp_path / "none"), "--verify"]) == 2
    assert "interp4d-lite download lung4d: error:" in capsys.readouterr().err
    repo = Path(__file__).resolve().parent.parent
    r = subprocess.run(
        [sys.executable, "-m", "data_download.acdc", "--dest", str(tmp_path / "none"), "--verify"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "python -m data_download.acdc: error:" in r.stderr


def test_output_loads_through_interp4d_lite(tmp_path):
    from interp4d_lite.data import discover_patients, load_patient

    body, arrays = make_acdc_zip()
    dest = tmp_path / "acdc"
    with FakeServer({"/acdc.zip": Route(body)}) as srv:
        assert run(dest, srv.url + "/acdc.zip") == 0
    assert [p.name for p in discover_patients(dest)] == sorted(PATIENTS)
    for pid, (_subset, nt, ed, es) in PATIENTS.items():
        p = load_patient(dest / pid, volume_shape=(6, 5, 3))
        assert p.patient_id == pid and p.data_kind == "cardiac"
        assert p.frames.shape == (nt, 6, 5, 3)
        assert (p.i0, p.i1) == (ed - 1, es - 1)
        assert 0.0 <= p.frames.min() and p.frames.max() <= 1.0
        np.testing.assert_allclose(p.spacing, (1.5, 1.4, 10.0), rtol=1e-5)


def test_tar_gz_archive_and_unreachable_server(tmp_path, capsys):
    import tarfile

    from _download_server import closed_port_url

    body, arrays = make_acdc_zip()
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(body)) as zf, tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for info in zf.infolist():
            data = zf.read(info)
            ti = tarfile.TarInfo(info.filename)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    dest = tmp_path / "acdc"
    with FakeServer({"/ACDC.tar.gz": Route(buf.getvalue())}) as srv:
        assert run(dest, srv.url + "/ACDC.tar.gz") == 0
    assert (dest / ".acdc" / "ACDC.tar.gz").exists()
    np.testing.assert_array_equal(
        np.asarray(nib.load(dest / "patient002" / "patient002_4d.nii.gz").dataobj), arrays["patient002"]
    )
    capsys.readouterr()
    assert run(tmp_path / "b", closed_port_url()) == 2
    err = capsys.readouterr().err
    assert "connection refused" in err and err.count("\n") == 1
    assert not any(p.name.startswith("patient") for p in (tmp_path / "b").iterdir())
