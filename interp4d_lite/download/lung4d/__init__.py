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
sort slices by position along the normal, spacing,     :mod:`interp4d_lite.data.dicom`
affine (LPS -> RAS), RescaleSlope/Intercept -> HU
couch removal: HU > -500, holes (lungs, airways)       :func:`.convert.remove_couch`
filled per axial slice, 2-voxel erosion (cuts thin
contacts), largest 3D component, dilated back within
the mask; everything else set to air, -1024 HU
resample onto a 128^3 grid spanning the 0 % phase's    :func:`.convert.resample_to_grid`
field of view (same orientation; Gaussian anti-
aliasing, then trilinear); all phases on that grid
store as int16 HU (rounded), NOT clipped               :func:`.convert.write_patient`
clip to [-1400, 200] HU and min-max to [0, 1]          the loader, at load time
=====================================================  ===========================

Output: ``DEST/<PatientID>/<PatientID>_4d.nii.gz`` (X, Y, Z, 10) phases 0..90 %
in order + ``phases.json``; ``DEST/dataset.json``. Download state lives in
``DEST/.lung4d/`` (``state.json``, ``raw/<PatientID>/<SeriesUID>.zip``; zips are
kept unless ``--delete-raw``). Patients already converted are skipped.

Modules by job: :mod:`.plan` (phases, sessions, the :class:`~.plan.Plan` of a run),
:mod:`.fetch` (the run: download, check, record), :mod:`.convert` (DICOM -> NIfTI, the
layout check), :mod:`.cli` (the command). Every public name is importable from here.
"""

from .cli import DESCRIPTION, LICENCE, PROG, add_arguments, main, run
from .convert import (
    AIR_HU,
    BODY_THRESHOLD_HU,
    axial_axis,
    check_patient,
    convert_session,
    grid_from,
    remove_couch,
    resample_to_grid,
    verify,
    write_patient,
)
from .fetch import RunResult, fetch
from .plan import (
    BYTES_PER_IMAGE_ESTIMATE,
    COLLECTION,
    DEFAULT_API,
    ENV_API,
    INPUT_PHASES,
    PHASES,
    SOURCE,
    Plan,
    Session,
    choose_session,
    group_sessions,
    parse_phase,
    select_sessions,
)

__all__ = [
    "DEFAULT_API",
    "ENV_API",
    "COLLECTION",
    "PHASES",
    "INPUT_PHASES",
    "SOURCE",
    "BYTES_PER_IMAGE_ESTIMATE",
    "AIR_HU",
    "BODY_THRESHOLD_HU",
    "LICENCE",
    "PROG",
    "DESCRIPTION",
    "parse_phase",
    "Session",
    "group_sessions",
    "choose_session",
    "select_sessions",
    "Plan",
    "RunResult",
    "axial_axis",
    "remove_couch",
    "grid_from",
    "resample_to_grid",
    "convert_session",
    "write_patient",
    "check_patient",
    "verify",
    "fetch",
    "add_arguments",
    "run",
    "main",
]
