"""What 4D-Lung holds and what one run fetches: the respiratory phase of a series
description, the sessions (one study on one date, one series per phase) of each patient,
the session chosen per patient, and the :class:`Plan` of a run."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import _common as C
from ..errors import DownloadError
from ..http import HTTPSettings

__all__ = [
    "DEFAULT_API",
    "ENV_API",
    "COLLECTION",
    "PHASES",
    "INPUT_PHASES",
    "SOURCE",
    "BYTES_PER_IMAGE_ESTIMATE",
    "parse_phase",
    "Session",
    "group_sessions",
    "choose_session",
    "select_sessions",
    "Plan",
]

DEFAULT_API = "https://services.cancerimagingarchive.net/nbia-api/services/v1"
ENV_API = "TCIA_API_URL"
COLLECTION = "4D-Lung"
PHASES = list(range(0, 100, 10))
INPUT_PHASES = [0, 50]
BYTES_PER_IMAGE_ESTIMATE = 530_000  # 512x512 int16 + header, when the API gives no size
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
    """The complete session ``which`` names: ``first`` (earliest), ``last``, an index
    (0 = earliest) or a date ``YYYYMMDD``; None when there is no such complete session."""
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


def select_sessions(
    sessions: dict[str, list[Session]], patients: list[str] | None = None, session_choice: str = "first"
) -> list[Session]:
    """One session per patient (all patients, or ``patients``), in patient order; a patient
    whose ID is unusable as a folder name or who has no complete session is skipped (said)."""
    wanted = sorted(sessions)
    if patients:
        unknown = sorted(set(patients) - set(sessions))
        if unknown:
            raise DownloadError(
                f"--patients: no 4D-CT phase series for {', '.join(unknown)} "
                f"(known: {', '.join(wanted[:5])}{' ...' if len(wanted) > 5 else ''})"
            )
        wanted = [p for p in wanted if p in set(patients)]
    chosen = []
    for pid in wanted:
        if not _SAFE_ID.match(pid):
            C.say(f"  {pid!r}: PatientID unusable as a folder name; skipped")
            continue
        sess = choose_session(sessions[pid], session_choice)
        if sess is None:
            have = ", ".join(f"{s.date or '?'}: {sorted(s.phases)}" for s in sessions[pid])
            C.say(
                f"  {pid}: no complete 10-phase session matching --session {session_choice} (sessions: {have}); skipped"
            )
            continue
        for note in sess.notes:
            C.say(f"  {pid} {sess.date}: {note}")
        chosen.append(sess)
    return chosen


@dataclass
class Plan:
    """One run of the downloader: the sessions to fetch, in order, and how."""

    sessions: list[Session]
    dest: Path
    api: str = DEFAULT_API
    settings: HTTPSettings = field(default_factory=HTTPSettings)
    out_shape: tuple[int, int, int] = (128, 128, 128)  # the output grid, voxels
    couch: bool = True  # remove the couch
    max_gb: float | None = None  # stop before this run's downloads would exceed it
    list_only: bool = False  # only say what would be downloaded
    keep_going: bool = False  # go on with the other patients after one fails
    delete_raw: bool = False  # delete a patient's zips once its NIfTI is written

    @property
    def state_dir(self) -> Path:
        """``DEST/.lung4d``: state, downloaded zips, work folders."""
        return Path(self.dest) / ".lung4d"

    @property
    def budget(self) -> int | None:
        """``max_gb`` in bytes (None: no limit)."""
        return None if self.max_gb is None else int(self.max_gb * 1e9)
