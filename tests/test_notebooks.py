"""Execute every tutorial notebook with papermill and the smoke parameters.

The executed copies are kept in ``runs/test-notebooks/executed/`` (git-ignored) so a
failure can be read in Jupyter. Notebooks share that run folder in order (as in
``make tutorial``), so later ones reuse earlier checkpoints; the folder is emptied first.
Each test checks the notebook finished without error and left the artifacts it promises
(figures, metrics JSON, checkpoints, tables, NIfTI) -- ``interp4d_lite.tutorial.ARTIFACTS``.
The lessons 01-05 also run on a folder of real scans, with no true fields: every
real cine the package ships, in ACDC layout (:func:`interp4d_lite.tutorial.ensure_real_cine_data`),
in ``runs/test-notebooks-real/``. Select with ``pytest -m notebook``; all together take a few
minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from interp4d_lite.tutorial import (
    ARTIFACTS,
    NOTEBOOKS,
    REPO_ROOT,
    SMOKE_PARAMS,
    ensure_phantom_data,
    ensure_real_cine_data,
    main,
    run_notebook,
)

RUN_DIR = REPO_ROOT / "runs" / "test-notebooks"
REAL_RUN_DIR = REPO_ROOT / "runs" / "test-notebooks-real"
#: the lessons that take a data_root of patients and use true fields where a phantom has them (00 only
#: trains and interpolates; 06 reads one scan its own way), run on real scans too
LESSONS = [n for n in NOTEBOOKS if n not in ("00_quickstart", "06_real_data")]

pytestmark = [pytest.mark.slow, pytest.mark.notebook]


@pytest.fixture(scope="module")
def run_dir() -> Path:
    if RUN_DIR.exists():
        shutil.rmtree(RUN_DIR)
    RUN_DIR.mkdir(parents=True)
    ensure_phantom_data(
        RUN_DIR / "data" / "cardiac",
        phantom="cardiac",
        n_patients=SMOKE_PARAMS["n_patients"],
        volume_shape=SMOKE_PARAMS["volume_shape"],
        n_frames=SMOKE_PARAMS["n_frames"],
    )
    return RUN_DIR


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_and_leaves_its_artifacts(name: str, run_dir: Path):
    row = run_notebook(name, run_dir, smoke=True, data_root=run_dir / "data" / "cardiac", html=False, timeout=300)
    executed = run_dir / "executed" / f"{name}.ipynb"
    assert row["status"] == "ok", f"{name} failed ({row['seconds']} s): {row['error']} -- see {executed}"
    missing = [pattern for pattern in ARTIFACTS[name] if not list(run_dir.glob(pattern))]
    assert not missing, f"{name} ran but did not write {missing} under {run_dir}"
    metrics = json.loads((run_dir / "metrics" / f"{name}.json").read_text())
    assert metrics["notebook"] == name and metrics["key"], "metrics JSON needs key metrics for the summary table"
    for pattern in ARTIFACTS[name]:
        for path in run_dir.glob(pattern):
            assert path.stat().st_size > 0, f"{path} is empty"


@pytest.fixture(scope="module")
def real_run_dir() -> Path:
    if REAL_RUN_DIR.exists():
        shutil.rmtree(REAL_RUN_DIR)
    ensure_real_cine_data(REAL_RUN_DIR / "data" / "real", volume_shape=SMOKE_PARAMS["volume_shape"])
    return REAL_RUN_DIR


@pytest.mark.parametrize("name", LESSONS)
def test_notebook_runs_on_real_scans_without_true_fields(name: str, real_run_dir: Path):
    """``data_root`` a folder of real cines, as each parameters cell offers: the notebook
    finishes, and the cells that need true fields say what stood in for them."""
    data_root = real_run_dir / "data" / "real"
    row = run_notebook(name, real_run_dir, smoke=True, data_root=data_root, html=False, timeout=300)
    executed = real_run_dir / "executed" / f"{name}.ipynb"
    assert row["status"] == "ok", f"{name} failed on real scans ({row['seconds']} s): {row['error']} -- see {executed}"
    printed = executed.read_text()
    assert "scans without true motion" in printed, f"{name}: the set-up should say the data has no true fields"
    if name != "01_data_loading":
        assert "registration to each real frame" in printed, f"{name}: no cell names the reference it used"


def test_runner_writes_html_and_summary(run_dir: Path, capsys):
    """The `make tutorial` entry point on one quick notebook: progress line, HTML, summary."""
    out = run_dir / "runner"
    assert main(["--run-dir", str(out), "--smoke", "--only", "01_data"]) == 0
    printed = capsys.readouterr().out
    assert "[1/1] 01_data_loading ... ok" in printed
    assert (out / "html" / "01_data_loading.html").stat().st_size > 10_000
    assert (out / "executed" / "01_data_loading.ipynb").exists()
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("notebook,status,seconds") and summary[1].startswith("01_data_loading,ok,")
