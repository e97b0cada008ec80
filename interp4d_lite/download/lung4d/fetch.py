"""The 4D-Lung download run: list the collection, choose a session per patient
(:mod:`.plan`), download and check each phase's zip (resumable, recorded in
``DEST/.lung4d/state.json``), convert (:mod:`.convert`) and write ``DEST/dataset.json``."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import DicomSeriesError
from ...io_utils import atomic_write_json
from .. import _common as C
from ..archive import list_safe_members, safe_extract, zip_content_digest
from ..errors import ChecksumError, DownloadError
from ..http import HTTPSettings, _session, download_file, get_json, read_json
from .convert import AIR_HU, BODY_THRESHOLD_HU, check_patient, convert_session, verify, write_patient
from .plan import (
    BYTES_PER_IMAGE_ESTIMATE,
    COLLECTION,
    DEFAULT_API,
    INPUT_PHASES,
    PHASES,
    SOURCE,
    Plan,
    Session,
    _int,
    group_sessions,
    select_sessions,
)

__all__ = ["fetch", "RunResult"]


@dataclass
class RunResult:
    """What a run of a :class:`~.plan.Plan` did."""

    done: list[str] = field(default_factory=list)  # patients converted in this run
    failed: list[str] = field(default_factory=list)  # patients that failed (with --keep-going)
    stopped: str | None = None  # why the run stopped before the end of the plan (--max-gb)


def _series_size(api: str, s: dict, settings: HTTPSettings, session) -> tuple[int, str]:
    for key in ("FileSize", "TotalSizeInBytes"):
        v = _int(s.get(key))
        if v:
            return v, "api"
    try:
        ans = get_json(
            f"{api}/getSeriesSize", {"SeriesInstanceUID": s["SeriesInstanceUID"]}, settings=settings, session=session
        )
        row = ans[0] if isinstance(ans, list) and ans else ans
        v = _int((row or {}).get("TotalSizeInBytes"))
        if v:
            return v, "getSeriesSize"
    except DownloadError:
        pass
    return _int(s.get("ImageCount"), 0) * BYTES_PER_IMAGE_ESTIMATE, "estimate"


def fetch(
    dest: Path,
    api: str = DEFAULT_API,
    *,
    patients: Sequence[str] | None = None,
    max_gb: float | None = None,
    session_choice: str = "first",
    out_shape=(128, 128, 128),
    settings: HTTPSettings | None = None,
    delete_raw: bool = False,
    list_only: bool = False,
    couch: bool = True,
    keep_going: bool = False,
) -> dict:
    """Download, check and convert 4D-Lung into ``dest`` (resumable; converted patients
    are skipped). Returns ``{"plan": [patient ids]}`` with ``list_only``, else
    ``{"done": [...], "stopped": reason or None, "patients": [every patient ready in dest]}``."""
    dest = Path(dest)
    api = api.rstrip("/")
    settings = settings or HTTPSettings()
    http = _session()
    sd = dest / ".lung4d"
    sd.mkdir(parents=True, exist_ok=True)
    with C.dest_lock(sd / "lock"):
        state = read_json(sd / "state.json", default={}) or {}
        state.setdefault("series", {})
        state.setdefault("patients", {})

        C.say(f"Listing {COLLECTION} series from {api} ...")
        series = get_json(
            f"{api}/getSeries", {"Collection": COLLECTION, "format": "json"}, settings=settings, session=http
        )
        if not isinstance(series, list) or not series:
            raise DownloadError(f"{api}/getSeries: no series listed for {COLLECTION} (API changed?)")
        plan = Plan(
            select_sessions(group_sessions(series), patients, session_choice),
            dest,
            api=api,
            settings=settings,
            out_shape=tuple(out_shape),
            couch=couch,
            max_gb=max_gb,
            list_only=list_only,
            keep_going=keep_going,
            delete_raw=delete_raw,
        )
        try:
            result = _run_plan(plan, state, http)
        finally:
            if not list_only:
                good, _ = verify(dest)
                atomic_write_json(
                    dest / "dataset.json",
                    {"kind": "lung", "layout": "lung4d", "patients": good, "source": SOURCE},
                    indent=2,
                    sort_keys=True,
                )
        if list_only:
            return {"plan": [s.patient_id for s in plan.sessions]}
        if result.stopped:
            C.say(result.stopped)
        C.say(f"4D-Lung in {dest}: {len(good)} patient(s) ready ({len(result.done)} converted in this run).")
        if result.failed:
            raise DownloadError(
                f"{len(result.failed)} patient(s) failed: {', '.join(result.failed)} (messages above); "
                "the others are complete, re-run to retry"
            )
        return {"done": result.done, "stopped": result.stopped, "patients": good}


def _run_plan(plan: Plan, state: dict, http) -> RunResult:
    """Fetch and convert the plan's sessions in order (with ``list_only``: only say what
    each needs); stops before the download that would exceed ``max_gb``."""
    result = RunResult()
    used = 0
    for sess in plan.sessions:
        pid = sess.patient_id
        pdir = Path(plan.dest) / pid
        if pdir.exists():
            probs = check_patient(pdir)
            if not probs:
                C.say(f"  {pid}: already converted; skipped")
                continue
            msg = f"{pdir}: exists but is not a complete conversion ({probs[0]}); move it away and re-run"
            if not plan.keep_going:
                raise DownloadError(msg)
            result.failed.append(pid)
            C.say(f"  {pid}: FAILED: {msg}")
            continue
        raw = plan.state_dir / "raw" / pid
        need, how = 0, set()
        for p in PHASES:
            s = sess.phases[p]
            rec = state["series"].get(s["SeriesInstanceUID"], {})
            if rec.get("status") == "downloaded" and (raw / f"{s['SeriesInstanceUID']}.zip").exists():
                continue
            n, h = _series_size(plan.api, s, plan.settings, http)
            need += n
            how.add(h)
        C.say(
            f"  {pid}: session {sess.date or '?'} ({sess.study_uid}), "
            f"{need / 1e9:.2f} GB to download ({'/'.join(sorted(how)) or 'cached'})"
        )
        if plan.list_only:
            continue
        if plan.budget is not None and used + need > plan.budget:
            result.stopped = (
                f"--max-gb {plan.max_gb:g}: stopping before {pid} (needs {need / 1e9:.2f} GB, "
                f"{used / 1e9:.2f} GB used in this run)"
            )
            return result
        used += need
        try:
            _do_patient(plan, sess, state, http)
        except (DownloadError, DicomSeriesError) as exc:  # a series that is not one volume fails this patient only
            if not plan.keep_going:
                raise
            result.failed.append(pid)
            C.say(f"  {pid}: FAILED: {exc}")
            continue
        result.done.append(pid)
        if plan.delete_raw:
            shutil.rmtree(raw, ignore_errors=True)
    return result


def _check_zip(z: Path, label: str) -> None:
    """A fresh download must be a safe, complete zip; otherwise it is deleted (it was never
    verified) so that a re-run downloads it again."""
    import zipfile

    try:
        list_safe_members(z)
        with zipfile.ZipFile(z) as zf:
            bad = zf.testzip()
        if bad is not None:
            raise DownloadError(f"{z}: member {bad} fails its CRC check")
    except (DownloadError, zipfile.BadZipFile, OSError, EOFError) as exc:
        z.unlink(missing_ok=True)
        raise DownloadError(
            f"{label}: the download is not a valid zip ({exc}); it was deleted, re-run to download it again"
        ) from exc


def _do_patient(plan: Plan, sess: Session, state: dict, http) -> None:
    """Download (or reuse), check and record the ten phase zips of one session, then convert
    them into ``DEST/<PatientID>/``."""
    pid = sess.patient_id
    dest, sd, api, settings = Path(plan.dest), plan.state_dir, plan.api, plan.settings
    out_shape, couch = plan.out_shape, plan.couch
    raw = sd / "raw" / pid
    work = sd / "work" / pid
    zips, counts = {}, {}
    for p in PHASES:
        s = sess.phases[p]
        uid = s["SeriesInstanceUID"]
        z = raw / f"{uid}.zip"
        rec = state["series"].get(uid, {})
        res = download_file(
            f"{api}/getImage", z, params={"SeriesInstanceUID": uid}, settings=settings, session=http, desc=f"{pid} {p}%"
        )
        if rec.get("status") != "downloaded" or rec.get("sha256") != res["sha256"]:
            _check_zip(z, f"{pid} phase {p}% ({uid})")  # not yet verified: test every CRC
        content = zip_content_digest(z)
        if rec.get("sha256") and res["sha256"] != rec["sha256"] and content != rec.get("content_sha256"):
            z.unlink()
            raise ChecksumError(
                f"{pid} phase {p}% ({uid}): the download differs from the first good one "
                "recorded in .lung4d/state.json; the new file was deleted, nothing else changed"
            )
        state["series"][uid] = {
            "patient": pid,
            "phase": p,
            "status": "downloaded",
            "file": str(z.relative_to(sd)),
            "size": res["size"],
            "sha256": rec.get("sha256") or res["sha256"],
            "content_sha256": rec.get("content_sha256") or content,
            "description": s.get("SeriesDescription"),
            "at": C.now_iso(),
        }
        atomic_write_json(sd / "state.json", state, indent=2, sort_keys=True)
        zips[p] = z
        counts[p] = _int(s.get("ImageCount"))
    if work.exists():
        shutil.rmtree(work)  # derived files of an interrupted run
    work.mkdir(parents=True)
    try:
        dirs = {}
        for p, z in zips.items():
            dirs[p] = safe_extract(z, work / f"{p:02d}")
        C.say(f"  {pid}: converting 10 phases -> {'x'.join(map(str, out_shape))} ...")
        data, affine, info = convert_session(dirs, out_shape, counts, couch=couch, label=pid)
        meta = {
            "phases": PHASES,
            "input_phases": INPUT_PHASES,
            "units": "HU",
            "source": SOURCE,
            "patient_id": pid,
            "session": sess.as_json(),
            "preprocessing": {
                "couch_removed": couch,
                "body_threshold_hu": BODY_THRESHOLD_HU,
                "outside_body_hu": AIR_HU,
                "resampled_shape": list(out_shape),
                "resampling": "Gaussian anti-aliasing + trilinear onto the 0% phase FOV",
                "hu_clip": "not applied here; the loader clips to [-1400, 200]",
                **info,
            },
        }
        write_patient(dest, pid, data, affine, meta)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    state["patients"][pid] = {"status": "converted", "session": sess.as_json(), "at": C.now_iso()}
    atomic_write_json(sd / "state.json", state, indent=2, sort_keys=True)
