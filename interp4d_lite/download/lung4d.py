"""Download TCIA 4D-Lung through the public NBIA REST API and convert it to our
lung layout (docs/ARCHITECTURE.md, "On-disk layouts").

Usage::

    interp4d-lite download lung4d --dest data/lung4d --list            # what would be fetched
    interp4d-lite download lung4d --dest data/lung4d --max-gb 20       # stop before 20 GB
    interp4d-lite download lung4d --dest data/lung4d --patients 100_HM10395 101_HM101
    interp4d-lite download lung4d --dest data/lung4d --verify

API (no account needed for this public collection): ``API/getSeries?Collection=4D-Lung&format=json``
lists the series, ``API/getSeriesSize?SeriesInstanceUID=UID`` gives a size, and
``API/getImage?SeriesInstanceUID=UID`` returns a zip of the series' DICOM files;
``API`` is :data:`DEFAULT_API` unless ``--api-url`` or ``$TCIA_API_URL`` says otherwise.

Selection: CT series whose description carries a respiratory phase as a
percentage (``"P4^P100^... Gated, 50.0%"`` -> 50; :func:`parse_phase`), grouped
per patient into sessions (one study on one date); a session is usable when it
has all ten phases 0, 10, ..., 90 %. One session per patient is taken: the
earliest by default (``--session first|last|N|YYYYMMDD``).

Processing, per phase, and where each step lives:

=====================================================  ===========================
step                                                   where
=====================================================  ===========================
sort slices by position along the normal, spacing,     here (:mod:`.dicom`)
affine (LPS -> RAS), RescaleSlope/Intercept -> HU
couch removal: HU > -500, holes (lungs, airways)        here (:func:`remove_couch`)
filled per axial slice, 2-voxel erosion (cuts thin
contacts), largest 3D component, dilated back within
the mask; everything else set to air, -1024 HU
resample onto a 128^3 grid spanning the 0 % phase's     here (:func:`resample_to_grid`)
field of view (same orientation; Gaussian anti-
aliasing, then trilinear); all phases on that grid
store as int16 HU (rounded), NOT clipped                 here
clip to [-1400, 200] HU and min-max to [0, 1]          the loader, at load time
=====================================================  ===========================

Output: ``DEST/<PatientID>/<PatientID>_4d.nii.gz`` (X, Y, Z, 10) phases 0..90 %
in order + ``phases.json``; ``DEST/dataset.json``. Download state lives in
``DEST/.lung4d/`` (``state.json``, ``raw/<PatientID>/<SeriesUID>.zip``; zips are
kept unless ``--delete-raw``). Patients already converted are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io_utils import atomic_write_json
from . import _common as C
from .archive import list_safe_members, safe_extract, zip_content_digest
from .dicom import read_dicom_series
from .errors import ChecksumError, DownloadError
from .http import HTTPSettings, _session, download_file, get_json, read_json

DEFAULT_API = "https://services.cancerimagingarchive.net/nbia-api/services/v1"
ENV_API = "TCIA_API_URL"
COLLECTION = "4D-Lung"
PHASES = list(range(0, 100, 10))
INPUT_PHASES = [0, 50]
AIR_HU = -1024
BODY_THRESHOLD_HU = -500
BYTES_PER_IMAGE_ESTIMATE = 530_000  # 512x512 int16 + header, when the API gives no size

LICENCE = """\
4D-Lung (The Cancer Imaging Archive) is published under the Creative Commons
Attribution 4.0 International licence (CC BY 4.0): https://creativecommons.org/licenses/by/4.0/
Cite, when you use it:
  Data:  Hugo GD, Weiss E, Sleeman WC, Balik S, Keall PJ, Lu J, Williamson JF. Data from
         4D Lung Imaging of NSCLC Patients. The Cancer Imaging Archive, 2016.
         doi:10.7937/K9/TCIA.2016.ELN8YGLE
  Paper: Hugo GD, et al. A longitudinal four-dimensional computed tomography and cone beam
         computed tomography dataset for image-guided radiation therapy research in lung
         cancer. Medical Physics 44(2):762-771, 2017. doi:10.1002/mp.12059
  TCIA:  Clark K, Vendt B, Smith K, et al. The Cancer Imaging Archive (TCIA): Maintaining and
         Operating a Public Information Repository. Journal of Digital Imaging
         26(6):1045-1057, 2013. doi:10.1007/s10278-013-9622-7"""

SOURCE = "TCIA 4D-Lung (doi:10.7937/K9/TCIA.2016.ELN8YGLE), CC BY 4.0"

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_EXCLUDE = re.compile(r"\b(mip|minip|avg|average|ave|mean|max|min|cbct|cone)\b", re.I)
_PCT = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d+)?)\s*%")


def parse_phase(description: str | None) -> int | None:
    """The respiratory phase (0, 10, ..., 90) in a series description, or None.

    Accepts ``"... Gated, 50.0%"``, ``"50%"``, ``"T=50 %"``, ``"P4^P100^..., 0.0%"``;
    rejects projections (MIP/MinIP/AVG/average), CBCT, descriptions with no or
    several percentages (``"0%-90% MIP"``) and values that are not a multiple of 10
    in 0..90."""
    if not description:
        return None
    text = str(description).replace("^", " ")
    if _EXCLUDE.search(text):
        return None
    values = {float(v) for v in _PCT.findall(text)}
    if len(values) != 1:
        return None
    v = values.pop()
    r = int(round(v / 10.0)) * 10
    if abs(v - r) > 0.5 or r not in PHASES:
        return None
    return r


def _date(s: dict) -> str:
    for key in ("SeriesDate", "StudyDate", "AcquisitionDate"):
        m = re.search(r"(\d{4})-?(\d{2})-?(\d{2})", str(s.get(key) or ""))
        if m:
            return "".join(m.groups())
    return ""


def _int(v, default=None):
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return default


@dataclass
class Session:
    """One 4D-CT session of a patient: its study, date and one series per respiratory phase."""

    patient_id: str
    study_uid: str
    date: str
    phases: dict[int, dict] = field(default_factory=dict)  # phase % -> series record
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(p in self.phases for p in PHASES)

    def as_json(self) -> dict:
        return {
            "study_instance_uid": self.study_uid,
            "date": self.date,
            "series": {str(p): self.phases[p]["SeriesInstanceUID"] for p in sorted(self.phases)},
        }


def group_sessions(series: list[dict]) -> dict[str, list[Session]]:
    """Group phase series into sessions per patient, sorted by date (undated last)."""
    groups: dict[tuple, dict[int, list[dict]]] = {}
    for s in series:
        if str(s.get("Modality", "CT")).upper() != "CT":
            continue
        phase = parse_phase(s.get("SeriesDescription"))
        if phase is None or not s.get("PatientID") or not s.get("SeriesInstanceUID"):
            continue
        key = (str(s["PatientID"]), str(s.get("StudyInstanceUID", "")), _date(s))
        groups.setdefault(key, {}).setdefault(phase, []).append(s)
    out: dict[str, list[Session]] = {}
    for (pid, study, date), by_phase in groups.items():
        sess = Session(pid, study, date)
        counts = [_int(x.get("ImageCount"), 0) for v in by_phase.values() for x in v]
        typical = max(set(counts), key=counts.count) if counts else 0
        for phase, cands in sorted(by_phase.items()):
            if len(cands) > 1:
                cands = sorted(
                    cands,
                    key=lambda x: (
                        _int(x.get("ImageCount"), 0) != typical,
                        _int(x.get("SeriesNumber"), 1 << 30),
                        str(x["SeriesInstanceUID"]),
                    ),
                )
                sess.notes.append(
                    f"{len(cands)} series for phase {phase}%; took "
                    f"{cands[0]['SeriesInstanceUID']} ({cands[0].get('SeriesDescription')!r})"
                )
            sess.phases[phase] = cands[0]
        out.setdefault(pid, []).append(sess)
    for pid in out:
        out[pid].sort(key=lambda s: (s.date == "", s.date, s.study_uid))
    return out


def choose_session(sessions: list[Session], which: str = "first") -> Session | None:
    complete = [s for s in sessions if s.complete]
    if not complete:
        return None
    w = (which or "first").strip().lower()
    if w == "first":
        return complete[0]
    if w == "last":
        return complete[-1]
    digits = w.replace("-", "")
    if len(digits) == 8 and digits.isdigit():
        hits = [s for s in complete if s.date == digits]
        return hits[0] if hits else None
    if w.lstrip("-").isdigit():
        i = int(w)
        return complete[i] if -len(complete) <= i < len(complete) else None
    raise DownloadError(f"--session {which!r}: use first, last, an index (0 = earliest) or a date YYYYMMDD")


# ------------------------------------------------------------------ preprocessing


def axial_axis(affine: np.ndarray) -> int:
    """The voxel axis closest to the superior-inferior world axis."""
    cols = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    return int(np.argmax(np.abs(cols[2])))


def remove_couch(
    vol: np.ndarray, affine: np.ndarray, threshold: float = BODY_THRESHOLD_HU, erode: int = 2, air: float = AIR_HU
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the patient's body, set everything else (couch, blanket, air) to ``air``.

    Returns (volume, body mask). If nothing exceeds the threshold the volume is returned unchanged."""
    from scipy import ndimage as ndi

    mask = vol > threshold
    if not mask.any():
        return vol, np.ones_like(mask)
    ax = axial_axis(affine)

    def fill_slices(m):
        m = np.moveaxis(m, ax, 0).copy()
        for k in range(m.shape[0]):
            m[k] = ndi.binary_fill_holes(m[k])
        return np.moveaxis(m, 0, ax)

    # Fill the lungs/airways first (per axial slice) so that the body is one solid blob
    # which the erosion cannot split; thin couch parts and contacts do not survive it.
    solid = fill_slices(mask)
    st = ndi.generate_binary_structure(3, 1)
    core = ndi.binary_erosion(solid, st, iterations=erode) if erode else solid
    if not core.any():
        core = solid
    lab, n = ndi.label(core, st)
    if n == 0:
        return vol, np.ones_like(mask)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    body = lab == int(np.argmax(sizes))
    if erode:
        body = ndi.binary_dilation(body, st, iterations=erode) & solid
    body = fill_slices(body)
    return np.where(body, vol, np.float32(air)).astype(np.float32), body


def grid_from(affine: np.ndarray, shape: Sequence[int], out_shape: Sequence[int]) -> np.ndarray:
    """The affine of an ``out_shape`` grid covering the same field of view as (affine, shape)."""
    s = np.asarray(shape, float) / np.asarray(out_shape, float)
    m = np.eye(4)
    m[:3, :3] = np.diag(s)
    m[:3, 3] = -0.5 + 0.5 * s
    return affine @ m


def resample_to_grid(
    vol: np.ndarray,
    affine: np.ndarray,
    ref_affine: np.ndarray,
    ref_shape: Sequence[int],
    cval: float = AIR_HU,
    order: int = 1,
) -> np.ndarray:
    """Resample ``vol`` (with ``affine``) onto the grid (ref_affine, ref_shape), world-coordinate
    exact; a Gaussian (sigma = (f - 1) / 2 per axis shrunk by factor f) avoids aliasing."""
    from scipy import ndimage as ndi

    m = np.linalg.inv(affine) @ ref_affine  # ref voxel -> input voxel
    f = np.abs(m[:3, :3]).max(axis=1)
    sigma = np.maximum(0.0, (f - 1.0) / 2.0)
    src = ndi.gaussian_filter(vol.astype(np.float32), sigma, mode="nearest") if np.any(sigma > 0.1) else vol
    return ndi.affine_transform(
        src.astype(np.float32),
        m[:3, :3],
        offset=m[:3, 3],
        output_shape=tuple(int(x) for x in ref_shape),
        order=order,
        mode="constant",
        cval=cval,
    ).astype(np.float32)


def convert_session(
    phase_dirs: dict[int, Path],
    out_shape=(128, 128, 128),
    counts: dict | None = None,
    couch: bool = True,
    label: str = "",
) -> tuple[np.ndarray, np.ndarray, dict]:
    """DICOM folders of the ten phases -> (X, Y, Z, 10) int16 HU, affine, info."""
    ref_affine = None
    frames, info = [], {"phases": {}}
    for phase in PHASES:
        d = phase_dirs[phase]
        vol = read_dicom_series(d, expected_count=(counts or {}).get(phase), name=f"{label} phase {phase}% ({d.name})")
        arr = vol.array
        if couch:
            arr, body = remove_couch(arr, vol.affine)
            info["phases"][str(phase)] = {"body_fraction": round(float(body.mean()), 4)}
        if ref_affine is None:
            ref_affine = grid_from(vol.affine, arr.shape, out_shape)
            info["source_shape"] = list(arr.shape)
            info["source_spacing_mm"] = [round(float(x), 4) for x in vol.spacing]
            ref_center = vol.affine @ np.append((np.asarray(arr.shape) - 1) / 2.0, 1)
            ref_extent = np.asarray(arr.shape) * np.asarray(vol.spacing)
        else:
            c = vol.affine @ np.append((np.asarray(arr.shape) - 1) / 2.0, 1)
            if np.linalg.norm((c - ref_center)[:3]) > 0.25 * float(np.min(ref_extent)):
                raise DownloadError(
                    f"{label} phase {phase}%: its volume is {np.linalg.norm((c - ref_center)[:3]):.0f} mm "
                    "away from the 0% phase; not one 4D-CT"
                )
        frames.append(resample_to_grid(arr, vol.affine, ref_affine, out_shape))
    data = np.stack(frames, axis=-1)
    data = np.clip(np.rint(data), -32768, 32767).astype(np.int16)
    return data, ref_affine, info


def write_patient(dest: Path, pid: str, data: np.ndarray, affine: np.ndarray, meta: dict) -> Path:
    """Write DEST/<pid>/ atomically: build DEST/.<pid>.part/ then rename."""
    import nibabel as nib

    final = Path(dest) / pid
    tmp = Path(dest) / f".{pid}.part"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        img = nib.Nifti1Image(data, affine)
        img.header.set_data_dtype(np.int16)
        img.header.set_xyzt_units("mm", "sec")
        img.header["descrip"] = b"4D-Lung phases 0-90%, HU"
        nib.save(img, tmp / f"{pid}_4d.nii.gz")
        (tmp / "phases.json").write_text(json.dumps(meta, indent=2) + "\n")
        if final.exists():
            raise DownloadError(f"{final}: exists but is not a complete conversion; move it away and re-run")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def check_patient(pdir: Path) -> list[str]:
    import nibabel as nib

    pid = pdir.name
    f, pj = pdir / f"{pid}_4d.nii.gz", pdir / "phases.json"
    probs = [f"{p}: missing" for p in (f, pj) if not p.is_file()]
    if probs:
        return probs
    try:
        meta = json.loads(pj.read_text())
        shape = nib.load(str(f)).shape
    except Exception as exc:
        return [f"{pdir}: unreadable ({exc})"]
    if meta.get("phases") != PHASES or meta.get("units") != "HU" or meta.get("input_phases") != INPUT_PHASES:
        probs.append(f"{pj}: expected phases {PHASES}, input_phases {INPUT_PHASES}, units HU")
    if len(shape) != 4 or shape[3] != len(PHASES):
        probs.append(f"{f}: shape {shape}, expected (X, Y, Z, {len(PHASES)})")
    return probs


def verify(dest: Path) -> tuple[list[str], list[str]]:
    dest = Path(dest)
    if not dest.is_dir():
        return [], [f"{dest}: no such folder"]
    good, probs = [], []
    for p in sorted(dest.iterdir()):
        if not p.is_dir() or p.name.startswith("."):
            continue
        if (p / "phases.json").exists() or (p / f"{p.name}_4d.nii.gz").exists():
            pp = check_patient(p)
            (probs.extend(pp) if pp else good.append(p.name))
    if not good and not probs:
        probs.append(f"{dest}: no patient folders")
    return good, probs


# ------------------------------------------------------------------ the pipeline


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
        sessions = group_sessions(series)
        wanted = sorted(sessions)
        if patients:
            unknown = sorted(set(patients) - set(sessions))
            if unknown:
                raise DownloadError(
                    f"--patients: no 4D-CT phase series for {', '.join(unknown)} "
                    f"(known: {', '.join(wanted[:5])}{' ...' if len(wanted) > 5 else ''})"
                )
            wanted = [p for p in wanted if p in set(patients)]
        plan = []
        for pid in wanted:
            if not _SAFE_ID.match(pid):
                C.say(f"  {pid!r}: PatientID unusable as a folder name; skipped")
                continue
            sess = choose_session(sessions[pid], session_choice)
            if sess is None:
                have = ", ".join(f"{s.date or '?'}: {sorted(s.phases)}" for s in sessions[pid])
                C.say(
                    f"  {pid}: no complete 10-phase session matching --session {session_choice} "
                    f"(sessions: {have}); skipped"
                )
                continue
            for note in sess.notes:
                C.say(f"  {pid} {sess.date}: {note}")
            plan.append(sess)

        budget = None if max_gb is None else int(max_gb * 1e9)
        done, failed, stopped = [], [], None
        try:
            stopped = _run_plan(
                plan,
                dest,
                sd,
                state,
                api,
                settings,
                http,
                out_shape,
                couch,
                budget,
                max_gb,
                list_only,
                keep_going,
                delete_raw,
                done,
                failed,
            )
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
            return {"plan": [s.patient_id for s in plan]}
        if stopped:
            C.say(stopped)
        C.say(f"4D-Lung in {dest}: {len(good)} patient(s) ready ({len(done)} converted in this run).")
        if failed:
            raise DownloadError(
                f"{len(failed)} patient(s) failed: {', '.join(failed)} (messages above); "
                "the others are complete, re-run to retry"
            )
        return {"done": done, "stopped": stopped, "patients": good}


def _run_plan(
    plan,
    dest,
    sd,
    state,
    api,
    settings,
    http,
    out_shape,
    couch,
    budget,
    max_gb,
    list_only,
    keep_going,
    delete_raw,
    done,
    failed,
) -> str | None:
    used = 0
    for sess in plan:
        pid = sess.patient_id
        pdir = dest / pid
        if pdir.exists():
            probs = check_patient(pdir)
            if not probs:
                C.say(f"  {pid}: already converted; skipped")
                continue
            msg = f"{pdir}: exists but is not a complete conversion ({probs[0]}); move it away and re-run"
            if not keep_going:
                raise DownloadError(msg)
            failed.append(pid)
            C.say(f"  {pid}: FAILED: {msg}")
            continue
        raw = sd / "raw" / pid
        need, how = 0, set()
        for p in PHASES:
            s = sess.phases[p]
            rec = state["series"].get(s["SeriesInstanceUID"], {})
            if rec.get("status") == "downloaded" and (raw / f"{s['SeriesInstanceUID']}.zip").exists():
                continue
            n, h = _series_size(api, s, settings, http)
            need += n
            how.add(h)
        C.say(
            f"  {pid}: session {sess.date or '?'} ({sess.study_uid}), "
            f"{need / 1e9:.2f} GB to download ({'/'.join(sorted(how)) or 'cached'})"
        )
        if list_only:
            continue
        if budget is not None and used + need > budget:
            return (
                f"--max-gb {max_gb:g}: stopping before {pid} (needs {need / 1e9:.2f} GB, "
                f"{used / 1e9:.2f} GB used in this run)"
            )
        used += need
        try:
            _do_patient(dest, sd, sess, state, api, settings, http, out_shape, couch)
        except DownloadError as exc:
            if not keep_going:
                raise
            failed.append(pid)
            C.say(f"  {pid}: FAILED: {exc}")
            continue
        done.append(pid)
        if delete_raw:
            shutil.rmtree(raw, ignore_errors=True)
    return None


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


def _do_patient(dest, sd, sess: Session, state, api, settings, http, out_shape, couch) -> None:
    pid = sess.patient_id
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


# ------------------------------------------------------------------ CLI

PROG = "interp4d-lite download lung4d"
DESCRIPTION = (
    "Download TCIA 4D-Lung (~170 GB of DICOM in total) through the NBIA API and write "
    "DEST/<PatientID>/<PatientID>_4d.nii.gz (10 phases, HU) + phases.json. "
    "Re-running resumes; converted patients are skipped."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's flags (also ``interp4d-lite download lung4d``)."""
    p.add_argument("--dest", required=True, type=Path, help="destination folder (the notebooks' data_root)")
    p.add_argument("--api-url", default=None, help=f"NBIA v1 API base (default: ${ENV_API} or {DEFAULT_API})")
    p.add_argument("--patients", nargs="+", default=None, help="only these PatientIDs")
    p.add_argument(
        "--max-gb",
        type=float,
        default=None,
        help="stop before this run's downloads would exceed N GB (sizes from the API)",
    )
    p.add_argument(
        "--session",
        default="first",
        help="which 4D-CT session per patient: first (default), last, an index, or YYYYMMDD",
    )
    p.add_argument(
        "--shape",
        type=int,
        nargs=3,
        default=(128, 128, 128),
        metavar=("X", "Y", "Z"),
        help="output grid (default 128 128 128, as UVI-Net)",
    )
    p.add_argument("--keep-couch", action="store_true", help="skip couch removal")
    p.add_argument(
        "--delete-raw", action="store_true", help="delete a patient's downloaded DICOM zips once its NIfTI is written"
    )
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="after a patient fails (e.g. a series with missing slices), go on with the others",
    )
    p.add_argument("--list", action="store_true", help="only list what would be downloaded")
    p.add_argument("--verify", action="store_true", help="only check DEST against the layout (no network)")
    C.add_http_args(p)


def run(args: argparse.Namespace) -> int:
    """Run the command on parsed flags (errors as exceptions; :func:`main` prints them)."""
    C.say(LICENCE)
    C.say()
    if args.verify:
        good, probs = verify(args.dest)
        for line in probs[:20]:
            C.say(f"  problem: {line}")
        if probs:
            raise DownloadError(f"4D-Lung in {args.dest}: {len(probs)} problem(s); {len(good)} patient(s) fine")
        C.say(f"4D-Lung in {args.dest}: {len(good)} patient(s) verified")
        return 0
    if any(n < 2 for n in args.shape):
        raise DownloadError(f"--shape {args.shape}: every size must be >= 2")
    api = args.api_url or os.environ.get(ENV_API) or DEFAULT_API
    fetch(
        args.dest,
        api,
        patients=args.patients,
        max_gb=args.max_gb,
        session_choice=args.session,
        out_shape=tuple(args.shape),
        settings=C.http_settings(args),
        delete_raw=args.delete_raw,
        list_only=args.list,
        couch=not args.keep_couch,
        keep_going=args.keep_going,
    )
    C.say()
    C.say(
        "Licence CC BY 4.0; cite doi:10.7937/K9/TCIA.2016.ELN8YGLE, doi:10.1002/mp.12059 and TCIA "
        "(doi:10.1007/s10278-013-9622-7)."
    )
    return 0


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Parse ``argv``, run, print any expected error as one line (exit 2)."""
    return C.command_main(sys.modules[__name__], argv, prog)


if __name__ == "__main__":
    sys.exit(main())
