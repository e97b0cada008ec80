"""Run the tutorial notebooks end to end: ``python -m interp4d_lite.tutorial``.

``make tutorial`` calls exactly ``python -m interp4d_lite.tutorial --run-dir runs/tutorial``.
The runner

1. generates the phantom data the notebooks need into ``RUN_DIR/data`` (ACDC layout),
2. executes every notebook of ``notebooks/`` in order with papermill, passing the same
   ``out_dir=RUN_DIR`` to all of them (so later notebooks reuse earlier checkpoints),
3. writes each executed notebook to ``RUN_DIR/executed/`` and an HTML export of it to
   ``RUN_DIR/html/``; the notebooks themselves save figures to ``RUN_DIR/figures/``,
   metrics to ``RUN_DIR/metrics/<notebook>.json`` and checkpoints to ``RUN_DIR/checkpoints/``,
4. prints one line of progress per notebook and writes ``summary.csv``, ``summary.json``
   and ``summary.md`` (notebook, status, seconds, key metrics).

``--smoke`` uses the small parameter set (the one the notebook tests use);
``--only NAME`` runs just the notebooks whose name contains NAME (repeatable).

The module also holds the two small helpers the notebooks share for their set-up:
:func:`ensure_phantom_data` and :func:`save_metrics`.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from .io_utils import atomic_write, atomic_write_json, atomic_write_text

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"

#: The notebooks in the order they are meant to be read and run.
NOTEBOOKS = [
    "00_quickstart",
    "01_data_loading",
    "02_teacher_training",
    "03_distillation",
    "04_timestamp_sweeps",
    "05_visualizers",
    "06_real_data",
]

#: Parameters of the smoke run (tests, ``--smoke``): tiny volumes, few steps. A notebook
#: gets only the keys it declares (:data:`NOTEBOOK_PARAMS`), so papermill never warns.
SMOKE_PARAMS: dict[str, Any] = {
    "volume_shape": [24, 24, 12],
    "n_frames": 8,
    "n_patients": 3,
    "max_steps": 6,
    "teacher_steps": 6,
    "student_steps": 6,
    "baseline_steps": 6,
    "sweep_points": 5,
}

#: Which of the global knobs each notebook declares (papermill warns about others).
NOTEBOOK_PARAMS: dict[str, list[str]] = {
    "00_quickstart": ["volume_shape", "n_frames", "max_steps"],
    "01_data_loading": ["volume_shape", "n_frames", "n_patients"],
    "02_teacher_training": ["volume_shape", "n_frames", "n_patients", "teacher_steps"],
    "03_distillation": ["volume_shape", "n_frames", "n_patients", "teacher_steps", "student_steps"],
    "04_timestamp_sweeps": ["volume_shape", "n_frames", "n_patients", "teacher_steps", "student_steps",
                            "baseline_steps", "sweep_points"],
    "05_visualizers": ["volume_shape", "n_frames", "n_patients", "student_steps"],
    "06_real_data": ["volume_shape", "n_frames", "n_patients", "max_steps"],
}

#: Artifacts (globs relative to out_dir) each notebook promises; the tests check them.
ARTIFACTS: dict[str, list[str]] = {
    "00_quickstart": ["figures/00_*.png", "metrics/00_quickstart.json", "checkpoints/quickstart_student.pt"],
    "01_data_loading": ["figures/01_*.png", "metrics/01_data_loading.json"],
    "02_teacher_training": ["figures/02_*.png", "metrics/02_teacher_training.json", "checkpoints/teacher.pt"],
    "03_distillation": ["figures/03_*.png", "metrics/03_distillation.json", "checkpoints/student.pt",
                        "checkpoints/student_nokd.pt"],
    "04_timestamp_sweeps": ["figures/04_*.png", "metrics/04_timestamp_sweeps.json", "tables/04_*.csv",
                            "superres/*.nii.gz"],
    "05_visualizers": ["figures/05_*.png", "metrics/05_visualizers.json"],
    "06_real_data": ["figures/06_*.png", "metrics/06_real_data.json"],
}


# --------------------------------------------------------------------------- helpers used by notebooks
def ensure_phantom_data(root: str | os.PathLike, kind: str = "cardiac", n_patients: int = 4,
                        volume_shape=(48, 48, 16), n_frames: int = 10, seed: int = 0) -> Path:
    """Return ``root`` after making sure it holds a phantom dataset of ``n_patients``.

    The dataset is written with the data module's own writer
    (:func:`interp4d_lite.data.phantoms.write_phantom_dataset`) in ACDC layout for cardiac
    phantoms and in our 4D-Lung layout for lung phantoms; an existing dataset of the same
    kind, shape, frame count and size is reused, anything else is regenerated.
    """
    from .data.phantoms import write_phantom_dataset

    root = Path(root)
    manifest = root / "dataset.json"
    want = {"kind": kind, "n_patients": int(n_patients), "volume_shape": [int(s) for s in volume_shape],
            "n_frames": int(n_frames), "seed": int(seed)}
    stamp = root / ".tutorial_phantoms.json"
    if manifest.exists() and stamp.exists():
        try:
            if json.loads(stamp.read_text()) == want:
                return root
        except (OSError, ValueError):
            pass
    root.mkdir(parents=True, exist_ok=True)
    write_phantom_dataset(root, kind=kind, n_patients=int(n_patients), shape=tuple(want["volume_shape"]),
                          n_frames=int(n_frames), seed=int(seed))
    stamp.write_text(json.dumps(want))
    return root


def save_metrics(out_dir: str | os.PathLike, notebook: str, metrics: dict, key: list[str] | None = None) -> Path:
    """Write ``out_dir/metrics/<notebook>.json``: ``{"key": {...}, "all": {...}}``.

    ``key`` names the entries of ``metrics`` that the runner's summary table shows
    (all scalar entries when omitted)."""
    out = Path(out_dir) / "metrics"
    out.mkdir(parents=True, exist_ok=True)
    clean = _jsonable(metrics)
    if key is None:
        key = [k for k, v in clean.items() if isinstance(v, (int, float))]
    payload = {"notebook": notebook, "key": {k: clean[k] for k in key if k in clean}, "all": clean}
    path = out / f"{notebook}.json"
    return atomic_write_json(path, payload, indent=2)


def _jsonable(obj):
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # a pandas DataFrame: its records, named index first
        return _jsonable((obj.reset_index() if obj.index.name is not None else obj).to_dict("records"))
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if np is not None and isinstance(obj, np.generic):
        return obj.item()
    if np is not None and isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    if isinstance(obj, float) and obj != obj:  # NaN -> null
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


# --------------------------------------------------------------------------- runner
def notebook_parameters(name: str, run_dir: Path, smoke: bool, data_root: Path | None) -> dict[str, Any]:
    """The papermill parameters for one notebook in a run folder."""
    params: dict[str, Any] = {"out_dir": str(run_dir.resolve())}
    if data_root is not None:
        params["data_root"] = str(data_root.resolve())
    if name == "06_real_data":
        params.pop("data_root", None)  # 06 takes real data only when the user points it there
    if smoke:
        for key in NOTEBOOK_PARAMS.get(name, []):
            params[key] = SMOKE_PARAMS[key]
    return params


def export_html(executed: Path, html_path: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(body, encoding="utf-8")


def run_notebook(name: str, run_dir: str | os.PathLike, smoke: bool = False, data_root=None,
                 html: bool = True, kernel_name: str = "python3", timeout: int | None = 1200,
                 extra_params: dict | None = None) -> dict[str, Any]:
    """Execute ``notebooks/<name>.ipynb`` into ``run_dir``; return a summary row.

    The row holds ``notebook``, ``status`` ("ok" or "failed"), ``seconds``, ``error``
    (one line) and the notebook's key metrics (from ``run_dir/metrics/<name>.json``)."""
    import papermill as pm

    # OpenMP threads that spin while waiting collapse when other processes share the
    # cores (10x slower steps measured on a shared 2-core machine); the kernel inherits this
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    run_dir = Path(run_dir)
    src = NOTEBOOK_DIR / f"{name}.ipynb"
    executed = run_dir / "executed" / f"{name}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    params = notebook_parameters(name, run_dir, smoke, Path(data_root) if data_root else None)
    params.update(extra_params or {})
    row: dict[str, Any] = {"notebook": name, "status": "ok", "seconds": 0.0, "error": ""}
    start = time.perf_counter()
    log = run_dir / "logs" / f"{name}.stderr.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        # the kernel inherits our stderr: send its chatter (TCP notice, shutdown messages)
        # to a log file so the progress lines stay one per notebook
        with open(log, "w") as fh, _redirect_fd(2, fh.fileno()):
            pm.execute_notebook(str(src), str(executed), parameters=params, kernel_name=kernel_name,
                                cwd=str(NOTEBOOK_DIR), progress_bar=False, log_output=False,
                                execution_timeout=timeout, report_mode=False)
    except Exception as exc:  # papermill raises PapermillExecutionError with the cell's error
        row["status"] = "failed"
        msg = getattr(exc, "ename", type(exc).__name__) + ": " + str(getattr(exc, "evalue", exc))
        row["error"] = " ".join(msg.split())[:300]
    row["seconds"] = round(time.perf_counter() - start, 1)
    if html and executed.exists():
        try:
            export_html(executed, run_dir / "html" / f"{name}.html")
        except Exception as exc:  # an export problem must not hide the run's own status
            row["html_error"] = f"{type(exc).__name__}: {exc}"[:200]
    metrics_file = run_dir / "metrics" / f"{name}.json"
    if metrics_file.exists() and row["status"] == "ok":
        try:
            row["metrics"] = json.loads(metrics_file.read_text()).get("key", {})
        except ValueError:
            row["metrics"] = {}
    else:
        row["metrics"] = {}
    return row


class _redirect_fd:
    """Point OS-level file descriptor ``fd`` at ``target`` for the duration of a ``with``."""

    def __init__(self, fd: int, target: int):
        self.fd, self.target, self.saved = fd, target, None

    def __enter__(self):
        try:
            sys.stderr.flush()
            self.saved = os.dup(self.fd)
            os.dup2(self.target, self.fd)
        except OSError:  # no real stderr (embedded interpreters): leave it alone
            self.saved = None
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            sys.stderr.flush()
            os.dup2(self.saved, self.fd)
            os.close(self.saved)
        return False


def _fmt_metrics(metrics: dict) -> str:
    parts = []
    for k, v in metrics.items():
        if isinstance(v, float):
            parts.append(f"{k}={v:.4g}")
        else:
            parts.append(f"{k}={v}")
    return ", ".join(parts)


def write_summary(run_dir: Path, rows: list[dict], smoke: bool) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(run_dir / "summary.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["notebook", "status", "seconds", "key_metrics", "error"])
        for r in rows:
            w.writerow([r["notebook"], r["status"], r["seconds"], _fmt_metrics(r["metrics"]), r["error"]])
    atomic_write_json(run_dir / "summary.json", {"smoke": smoke, "rows": rows}, indent=2)
    lines = ["| notebook | status | seconds | key metrics |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['notebook']} | {r['status']} | {r['seconds']:.1f} | {_fmt_metrics(r['metrics'])} |")
    total = sum(r["seconds"] for r in rows)
    lines.append(f"| **total** | {sum(r['status'] == 'ok' for r in rows)}/{len(rows)} ok | {total:.1f} | |")
    atomic_write_text(run_dir / "summary.md", "\n".join(lines) + "\n")


def select_notebooks(only: list[str] | None) -> list[str]:
    if not only:
        return list(NOTEBOOKS)
    chosen = [n for n in NOTEBOOKS if any(o in n for o in only)]
    if not chosen:
        from .errors import CLIError

        raise CLIError(f"--only {only}: no notebook matches; choose from {', '.join(NOTEBOOKS)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m interp4d_lite.tutorial", description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", default="runs/tutorial", help="output folder (default: runs/tutorial)")
    p.add_argument("--smoke", action="store_true", help="small parameters (as the notebook tests)")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only notebooks whose name contains NAME (repeatable)")
    p.add_argument("--no-html", action="store_true", help="skip the HTML export")
    p.add_argument("--timeout", type=int, default=1200,
                   help="per-cell timeout in seconds (default 1200): a stuck cell fails its notebook, not the run")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    args = p.parse_args(argv)
    try:
        names = select_notebooks(args.only)
    except Exception as exc:
        print(f"tutorial: error: {exc}", file=sys.stderr)
        return 2
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    mode = "smoke" if args.smoke else "default"
    print(f"tutorial: {len(names)} notebook(s), {mode} parameters, run folder {run_dir.resolve()}", flush=True)

    # 1. the phantom data every notebook reads (each notebook would make it itself, too)
    shape = SMOKE_PARAMS["volume_shape"] if args.smoke else None
    data_root = run_dir / "data" / "cardiac"
    t0 = time.perf_counter()
    try:
        kw = {}
        if args.smoke:
            kw = dict(volume_shape=shape, n_frames=SMOKE_PARAMS["n_frames"], n_patients=SMOKE_PARAMS["n_patients"])
        else:
            kw = dict(volume_shape=DEFAULT_DATA["volume_shape"], n_frames=DEFAULT_DATA["n_frames"],
                      n_patients=DEFAULT_DATA["n_patients"])
        ensure_phantom_data(data_root, kind="cardiac", **kw)
        print(f"[data] cardiac phantoms in {data_root} ({time.perf_counter() - t0:.1f} s)", flush=True)
    except Exception as exc:
        print(f"[data] could not write phantoms ({type(exc).__name__}: {exc}); notebooks make their own", flush=True)
        traceback.print_exc()
        data_root = None

    rows = []
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name} ...", end=" ", flush=True)
        row = run_notebook(name, run_dir, smoke=args.smoke, data_root=data_root, html=not args.no_html,
                           kernel_name=args.kernel, timeout=args.timeout)
        rows.append(row)
        extra = f"  {_fmt_metrics(row['metrics'])}" if row["metrics"] else ""
        err = f"  ERROR {row['error']}" if row["error"] else ""
        print(f"{row['status']} in {row['seconds']:.1f} s{extra}{err}", flush=True)
        write_summary(run_dir, rows, args.smoke)
    total = sum(r["seconds"] for r in rows)
    n_ok = sum(r["status"] == "ok" for r in rows)
    print(f"tutorial: {n_ok}/{len(rows)} notebooks ok in {total:.1f} s; summary in {run_dir / 'summary.csv'}")
    print((run_dir / "summary.md").read_text())
    return 0 if n_ok == len(rows) else 1


#: The phantom dataset of the default (non-smoke) run; notebooks use the same defaults.
DEFAULT_DATA = {"volume_shape": [48, 48, 16], "n_frames": 20, "n_patients": 10}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
