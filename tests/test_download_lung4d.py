"""`interp4d-lite download lung4d` against a fake TCIA NBIA API on 127.0.0.1."""

from __future__ import annotations

import errno
import io
import json
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from _download_dicom import write_series
from _download_server import FakeServer, Route, closed_port_url
from _download_server import lock_is_free as _lock_is_free

import interp4d_lite.download.http as dh
import interp4d_lite.download.lung4d as L
import interp4d_lite.download.lung4d.convert as LC  # where convert_session looks up resample_to_grid
import interp4d_lite.io_utils as io_utils
from interp4d_lite.download.errors import DownloadError

API = "/nbia-api/services/v1"
SHAPE = (32, 26, 12)  # X, Y, Z of the fake DICOM
SPACING = (1.2, 1.1)
STEP = 2.5
BODY_HU, LUNG_HU, COUCH_HU = 40.0, -800.0, 100.0
OUT = ("--shape", "12", "10", "6")


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setattr(dh, "CHUNK", 1024)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("TCIA_API_URL", raising=False)


def phantom(phase: int) -> np.ndarray:
    """Air, an elliptic body, two lungs whose size follows the phase, and a couch below."""
    x, y, z = np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij")
    vol = np.full(SHAPE, -1000.0, np.float32)
    body = ((x - 15.5) / 15) ** 2 + ((y - 11) / 9.5) ** 2 <= 1
    vol[body] = BODY_HU
    grow = 1.0 + 0.4 * np.cos(np.pi * phase / 100.0) ** 2  # inhale at 0 %, exhale at 50 %
    for cx in (9.5, 21.5):
        lung = ((x - cx) / (2.5 * grow)) ** 2 + ((y - 11) / (3.0 * grow)) ** 2 + ((z - 6) / 8.0) ** 2 <= 1
        vol[lung & body] = LUNG_HU
    vol[:, 22:25, :] = COUCH_HU  # couch: 3 rows, one air row below the body
    return vol


def _zip_dir(d: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(d.iterdir()):
            zf.write(f, f.name)
        zf.writestr("LICENSE", "CC BY 4.0")
    return buf.getvalue()


class FakeTCIA:
    """Builds the getSeries listing and the per-series zips once per module."""

    def __init__(self, root: Path):
        self.root = root
        self.series: list[dict] = []
        self.zips: dict[str, bytes] = {}
        self.sizes: dict[str, int] = {}

    def add_session(self, pid, date, study, phases=tuple(L.PHASES), with_filesize=True, skip=None, extra=True):
        for p in phases:
            uid = f"1.2.826.0.1.{abs(hash((pid, date))) % 10**8}.{p + 1}"
            d = self.root / f"{pid}_{date}_{p}"
            desc = f"P4^P100^P100 Gated, {p:.1f}%"
            write_series(
                d,
                phantom(p),
                spacing_xy=SPACING,
                step_vec=(0, 0, STEP),
                patient_id=pid,
                description=desc,
                series_uid=uid,
                study_uid=study,
                shuffle_seed=p,
                skip=(skip or {}).get(p, ()),
                series_date=date,
            )
            self.zips[uid] = _zip_dir(d)
            n = SHAPE[2] - len((skip or {}).get(p, ()))
            rec = {
                "SeriesInstanceUID": uid,
                "StudyInstanceUID": study,
                "PatientID": pid,
                "Modality": "CT",
                "SeriesDescription": desc,
                "SeriesDate": f"{date[:4]}-{date[4:6]}-{date[6:]} 00:00:00.0",
                "ImageCount": SHAPE[2],
                "SeriesNumber": p + 1,
                "Collection": "4D-Lung",
            }
            self.sizes[uid] = 2000 * n
            if with_filesize:
                rec["FileSize"] = self.sizes[uid]
            self.series.append(rec)
        if extra:
            self.series.append(
                {
                    "SeriesInstanceUID": f"9.{pid}.{date}.avg",
                    "StudyInstanceUID": study,
                    "PatientID": pid,
                    "Modality": "CT",
                    "SeriesDescription": "P4^P100^P100^AVG",
                    "ImageCount": SHAPE[2],
                    "SeriesDate": date,
                }
            )
            self.series.append(
                {
                    "SeriesInstanceUID": f"9.{pid}.{date}.rt",
                    "StudyInstanceUID": study,
                    "PatientID": pid,
                    "Modality": "RTSTRUCT",
                    "SeriesDescription": "Gated, 50.0%",
                }
            )

    def routes(self, cut: dict[str, int] | None = None) -> dict:
        r = {
            f"{API}/getSeries": lambda q: (
                (200, json.dumps(self.series).encode(), {"Content-Type": "application/json"})
                if q.get("Collection") == "4D-Lung"
                else (200, b"[]", {})
            ),
            f"{API}/getSeriesSize": lambda q: (
                200,
                json.dumps(
                    [{"TotalSizeInBytes": str(float(self.sizes[q["SeriesInstanceUID"]])), "ObjectCount": "12"}]
                ).encode(),
                {},
            ),
        }
        for uid, body in self.zips.items():
            c = (cut or {}).get(uid)
            r[f"{API}/getImage?SeriesInstanceUID={uid}"] = Route(
                body, content_type="application/zip", cut_after=c, cut_times=1 if c else 0
            )
        return r


A, B, C_ = "100_HM10395", "101_HM10396", "102_HM10397"


@pytest.fixture(scope="module")
def tcia(tmp_path_factory):
    t = FakeTCIA(tmp_path_factory.mktemp("tcia"))
    t.add_session(A, "19970701", "1.1.2")  # listed first but later in time
    t.add_session(A, "19970623", "1.1.1")
    t.add_session(B, "19980101", "2.1.1", with_filesize=False)
    t.add_session(C_, "19990101", "3.1.1", phases=[p for p in L.PHASES if p != 30], extra=False)
    return t


def uids_of(tcia, pid, date):
    return [
        s["SeriesInstanceUID"]
        for s in tcia.series
        if s["PatientID"] == pid
        and str(s.get("SeriesDate", "")).replace("-", "").startswith(date)
        and L.parse_phase(s["SeriesDescription"]) is not None
        and s["Modality"] == "CT"
    ]


def run(dest, srv, *extra):
    return L.main(
        [
            "--dest",
            str(dest),
            "--api-url",
            srv.url + API,
            "--retries",
            "0",
            "--backoff",
            "0",
            "--no-progress",
            *OUT,
            *extra,
        ]
    )


def getimage_hits(srv, uids=None):
    return [
        q["SeriesInstanceUID"]
        for p, q, _ in srv.log
        if p.endswith("/getImage") and (uids is None or q["SeriesInstanceUID"] in uids)
    ]


@pytest.mark.parametrize(
    "desc,phase",
    [
        ("P4^P100^P100 Gated, 50.0%", 50),
        ("P4^P100^P100 Gated, 0.0%", 0),
        ("Gated, 90.0 %", 90),
        ("T=40%", 40),
        ("4DCT 20% phase", 20),
        ("P4^P100^P100^AVG", None),
        ("MIP 0%-90%", None),
        ("Average CT 50%", None),
        ("CBCT 50%", None),
        ("Gated, 45.0%", None),
        ("Gated, 100.0%", None),
        ("", None),
        (None, None),
        ("helical", None),
    ],
)
def test_parse_phase(desc, phase):
    assert L.parse_phase(desc) == phase


def test_sessions_grouped_and_chosen(tcia):
    sessions = L.group_sessions(tcia.series)
    assert sorted(sessions) == [A, B, C_]
    assert [s.date for s in sessions[A]] == ["19970623", "19970701"]
    assert L.choose_session(sessions[A]).date == "19970623"
    assert L.choose_session(sessions[A], "last").date == "19970701"
    assert L.choose_session(sessions[A], "1997-07-01").date == "19970701"
    assert L.choose_session(sessions[A], "1").date == "19970701"
    assert L.choose_session(sessions[A], "20000101") is None
    assert L.choose_session(sessions[C_]) is None  # 30 % missing
    with pytest.raises(DownloadError):
        L.choose_session(sessions[A], "sometimes")
    # a duplicated phase series: the one with the typical ImageCount wins, and it is reported
    dup = dict(sessions[B][0].phases[50], SeriesInstanceUID="dup", ImageCount=3, SeriesNumber=0)
    s2 = L.group_sessions(tcia.series + [dup])[B][0]
    assert s2.phases[50]["SeriesInstanceUID"] != "dup" and "2 series for phase 50%" in s2.notes[0]


def test_full_run_layout_geometry_and_idempotence(tmp_path, tcia, capsys):
    dest = tmp_path / "lung"
    with FakeServer(tcia.routes()) as srv:
        assert run(dest, srv) == 0
        out = capsys.readouterr().out
        assert "CC BY 4.0" in out and "10.7937/K9/TCIA.2016.ELN8YGLE" in out and "10.1007/s10278-013-9622-7" in out
        assert f"{C_}: no complete 10-phase session" in out
        got = getimage_hits(srv)
        assert sorted(got) == sorted(uids_of(tcia, A, "19970623") + uids_of(tcia, B, "19980101"))
        assert any(p.endswith("/getSeriesSize") for p, _, _ in srv.log)  # B has no FileSize
        assert run(dest, srv) == 0  # idempotent
        assert len(getimage_hits(srv)) == len(got)
    for pid in (A, B):
        img = nib.load(dest / pid / f"{pid}_4d.nii.gz")
        assert img.shape == (12, 10, 6, 10) and img.get_data_dtype() == np.int16
        meta = json.loads((dest / pid / "phases.json").read_text())
        assert meta["phases"] == list(range(0, 100, 10)) and meta["input_phases"] == [0, 50]
        assert meta["units"] == "HU" and "4D-Lung" in meta["source"]
    assert json.loads((dest / A / "phases.json").read_text())["session"]["date"] == "19970623"
    ds = json.loads((dest / "dataset.json").read_text())
    assert ds == {"kind": "lung", "layout": "lung4d", "patients": [A, B], "source": L.SOURCE}
    # geometry: the 12x10x6 grid spans the DICOM field of view (RAS)
    img = nib.load(dest / A / f"{A}_4d.nii.gz")
    fov = np.array([SHAPE[0] * SPACING[0], SHAPE[1] * SPACING[1], SHAPE[2] * STEP])
    np.testing.assert_allclose(img.header.get_zooms()[:3], fov / np.array([12, 10, 6]), rtol=1e-5)
    corner_lps = np.array([-10.0, -20.0, 30.0]) - 0.5 * np.array([SPACING[0], SPACING[1], STEP])
    corner_ras = corner_lps * np.array([-1, -1, 1])
    np.testing.assert_allclose(img.affine @ [-0.5, -0.5, -0.5, 1], [*corner_ras, 1], atol=1e-6)
    # values: couch gone, body and lungs kept (HU), lungs larger at 0 % than at 50 %
    data = np.asarray(img.dataobj).astype(float)
    assert data[:, 9:, :, :].max() <= -1000  # rows of the couch (y >= 22 of 26) -> air
    assert abs(np.median(data[6, 2, 2:4, :]) - BODY_HU) < 80
    lung0 = (data[..., 0] < -500).sum() - (data[..., 0] <= -1000).sum()
    lung5 = (data[..., 5] < -500).sum() - (data[..., 5] <= -1000).sum()
    assert lung0 > lung5 > 0
    assert L.main(["--dest", str(dest), "--verify"]) == 0
    assert not list(dest.rglob("*.part")) and not (dest / ".lung4d" / "work" / A).exists()


def test_max_gb_and_patient_filter(tmp_path, tcia, capsys):
    dest = tmp_path / "lung"
    a_bytes = sum(tcia.sizes[u] for u in uids_of(tcia, A, "19970623"))
    with FakeServer(tcia.routes()) as srv:
        assert run(dest, srv, "--patients", A, B, "--max-gb", f"{1.5 * a_bytes / 1e9:.9f}") == 0
        out = capsys.readouterr().out
        assert f"stopping before {B}" in out
        assert not getimage_hits(srv, uids_of(tcia, B, "19980101"))
        assert (dest / A).is_dir() and not (dest / B).exists()
        assert run(dest, srv, "--patients", "999_NOPE") == 2
        assert "no 4D-CT phase series for 999_NOPE" in capsys.readouterr().err
        assert run(dest, srv, "--patients", B, "--list") == 0
        out = capsys.readouterr().out
        assert f"{B}: session 19980101" in out and "GB to download (getSeriesSize)" in out
        assert not (dest / B).exists()


def test_cut_connection_resumes_without_refetching(tmp_path, tcia, capsys):
    dest = tmp_path / "lung"
    a = uids_of(tcia, A, "19970623")
    victim = a[4]
    with FakeServer(tcia.routes(cut={victim: 3000})) as srv:
        assert run(dest, srv, "--patients", A) == 2
        assert "re-run to resume" in capsys.readouterr().err
        assert not (dest / A).exists()
        first = getimage_hits(srv)
        assert first[-1] == victim and len(first) == 5
        state = json.loads((dest / ".lung4d" / "state.json").read_text())
        assert sorted(state["series"]) == sorted(a[:4])
        part = dest / ".lung4d" / "raw" / A / f"{victim}.zip.part"
        kept = part.stat().st_size
        assert kept > 0
        assert run(dest, srv, "--patients", A) == 0
        second = getimage_hits(srv)[len(first) :]
        assert second[0] == victim and set(second).isdisjoint(a[:4])
        assert [r for p, q, r in srv.log if q.get("SeriesInstanceUID") == victim][-1] == f"bytes={kept}-"
    assert (dest / A / f"{A}_4d.nii.gz").exists()


def test_missing_slice_gives_clear_error_and_keeps_downloads(tmp_path, capsys):
    t = FakeTCIA(tmp_path / "src")
    t.add_session(A, "19970623", "1.1.1", skip={40: (5,)})
    dest = tmp_path / "lung"
    with FakeServer(t.routes()) as srv:
        assert run(dest, srv) == 2
    err = capsys.readouterr().err
    assert "missing slice" in err and "phase 40%" in err and A in err and err.count("\n") == 1
    assert not (dest / A).exists() and not list(dest.glob(f".{A}*"))
    assert len(list((dest / ".lung4d" / "raw" / A).glob("*.zip"))) == 10
    assert not (dest / ".lung4d" / "work" / A).exists()


def test_disk_full_while_writing_nifti(tmp_path, tcia, capsys, monkeypatch):
    dest = tmp_path / "lung"

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_utils, "atomic_write_bytes", full)  # under the one NIfTI writer
    with FakeServer(tcia.routes()) as srv:
        assert run(dest, srv, "--patients", B) == 2
        assert "disk full" in capsys.readouterr().err
        assert not (dest / B).exists() and not list(dest.glob(f".{B}*"))
        monkeypatch.undo()
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        n = len(getimage_hits(srv))
        assert run(dest, srv, "--patients", B) == 0
        assert len(getimage_hits(srv)) == n  # downloads were kept
    assert L.main(["--dest", str(dest), "--verify"]) == 0


def test_api_errors(tmp_path, capsys):
    with FakeServer({f"{API}/getSeries": Route(b"", statuses=[500, 502, 500])}) as srv:
        assert (
            L.main(
                [
                    "--dest",
                    str(tmp_path / "d"),
                    "--api-url",
                    srv.url + API,
                    "--retries",
                    "1",
                    "--backoff",
                    "0",
                    "--no-progress",
                ]
            )
            == 2
        )
        assert "HTTP 502" in capsys.readouterr().err and srv.hits(f"{API}/getSeries") == 2
    url = closed_port_url().rsplit("/", 1)[0]
    assert L.main(["--dest", str(tmp_path / "d"), "--api-url", url, "--retries", "0", "--no-progress"]) == 2
    assert "connection refused" in capsys.readouterr().err
    with FakeServer({f"{API}/getSeries": Route(b"[]")}) as srv:
        assert L.main(["--dest", str(tmp_path / "d"), "--api-url", srv.url + API, "--no-progress"]) == 2
        assert "no series listed" in capsys.readouterr().err
    assert L.main(["--dest", str(tmp_path / "empty"), "--verify"]) == 2


def test_remove_couch_and_resample_geometry():
    vol = phantom(0)
    aff = np.diag([-1.2, -1.1, 2.5, 1.0])
    clean, body = L.remove_couch(vol, aff)
    assert (clean[:, 22:25, :] == L.AIR_HU).all() and (vol[:, 22:25, :] == COUCH_HU).all()
    assert body[15, 11, 6] and (clean[9, 11, 6] == LUNG_HU)  # lungs are inside the body
    assert (clean[body] == vol[body]).all() and body.sum() > 0.4 * body.size
    # resampling preserves world positions: a bright block lands where it should
    v = np.full((20, 20, 20), -1000.0, np.float32)
    v[8:12, 4:8, 12:16] = 500.0
    a = np.array([[0, 1.0, 0, 5], [-1.0, 0, 0, 3], [0, 0, 2.0, -7], [0, 0, 0, 1]])
    ref = L.grid_from(a, v.shape, (10, 10, 10))
    r = L.resample_to_grid(v, a, ref, (10, 10, 10))
    com_in = np.argwhere(v > 0).mean(0)
    w = np.argwhere(r > 0)
    com_out = np.average(w, axis=0, weights=r[r > 0] + 1000)
    np.testing.assert_allclose((ref @ [*com_out, 1])[:3], (a @ [*com_in, 1])[:3], atol=1.0)


def test_corrupt_series_zip_deleted_and_keep_going(tmp_path, tcia, capsys):
    dest = tmp_path / "lung"
    routes = tcia.routes()
    bad = uids_of(tcia, A, "19970623")[2]
    routes[f"{API}/getImage?SeriesInstanceUID={bad}"] = Route(b"<html>maintenance</html>")
    with FakeServer(routes) as srv:
        assert run(dest, srv, "--patients", A, B, "--keep-going") == 2
        out, err = capsys.readouterr()
        assert f"{A}: FAILED" in out and "not a valid zip" in out and "1 patient(s) failed" in err
        assert not (dest / ".lung4d" / "raw" / A / f"{bad}.zip").exists()  # unverified: deleted
        assert (dest / B / f"{B}_4d.nii.gz").exists() and not (dest / A).exists()
        assert json.loads((dest / "dataset.json").read_text())["patients"] == [B]


def test_interrupted_conversion_resumes_without_downloading(tmp_path, tcia, capsys, monkeypatch):
    dest = tmp_path / "lung"
    real = L.resample_to_grid
    calls = {"n": 0}

    def ctrl_c_on_third(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(LC, "resample_to_grid", ctrl_c_on_third)
    with FakeServer(tcia.routes()) as srv:
        assert run(dest, srv, "--patients", B) == 130
        assert "re-run the same command" in capsys.readouterr().err
        assert not (dest / B).exists() and not (dest / ".lung4d" / "work" / B).exists()
        assert _lock_is_free(dest / ".lung4d" / "lock")
        n = len(getimage_hits(srv))
        monkeypatch.setattr(LC, "resample_to_grid", real)
        assert run(dest, srv, "--patients", B) == 0
        assert len(getimage_hits(srv)) == n
    assert not L.check_patient(dest / B)


def test_output_loads_through_interp4d_lite(tmp_path, tcia):
    from interp4d_lite.data import discover_patients, load_patient

    dest = tmp_path / "lung"
    with FakeServer(tcia.routes()) as srv:
        assert run(dest, srv, "--patients", A, B) == 0
    assert [p.name for p in discover_patients(dest)] == [A, B]
    img = nib.load(dest / A / f"{A}_4d.nii.gz")
    p = load_patient(dest / A, volume_shape=(12, 10, 6))
    assert p.patient_id == A and p.data_kind == "lung"
    assert p.frames.shape == (10, 12, 10, 6) and (p.i0, p.i1) == (0, 5)
    assert p.target_indices == [1, 2, 3, 4]
    np.testing.assert_allclose(p.times[:6], [0, 0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-6)
    np.testing.assert_allclose(p.spacing, img.header.get_zooms()[:3], rtol=1e-5)
    np.testing.assert_allclose(p.affine, img.affine, atol=1e-5)
    assert 0.0 <= p.frames.min() and p.frames.max() <= 1.0
    # HU clip [-1400, 200] then min-max: air (-1024) is darker than the body (40 HU)
    assert p.frames[0, 6, 2, 3] > p.frames[0, 0, 9, 3]


def test_a_plan_runs_to_a_result(tmp_path, tcia, capsys):
    """A run is a Plan in and a RunResult out: --list says each session's size, --max-gb
    stops before the patient who would exceed it (sizes from the listing: no network)."""
    from interp4d_lite.download.lung4d.fetch import _run_plan

    sessions = L.select_sessions(L.group_sessions(tcia.series), [A], "first")
    assert [(s.patient_id, s.date) for s in sessions] == [(A, "19970623")]
    plan = L.Plan(sessions, tmp_path / "lung", max_gb=1e-4, list_only=True)
    assert plan.state_dir == tmp_path / "lung" / ".lung4d" and plan.budget == 100_000
    state = {"series": {}, "patients": {}}
    assert _run_plan(plan, state, http=None) == L.RunResult(done=[], failed=[], stopped=None)
    assert f"{A}: session 19970623 (1.1.1), 0.00 GB to download (api)" in capsys.readouterr().out
    plan.list_only = False  # 10 series of 24 000 bytes: 240 000 > 100 000 bytes
    res = _run_plan(plan, state, http=None)
    assert (res.done, res.failed) == ([], [])
    assert res.stopped == f"--max-gb 0.0001: stopping before {A} (needs 0.00 GB, 0.00 GB used in this run)"
    assert not (tmp_path / "lung").exists() and state == {"series": {}, "patients": {}}
