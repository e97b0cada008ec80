"""Run the tutorial notebooks end to end: ``python -m interp4d_lite.tutorial``.

``make tutorial`` calls exactly ``python -m interp4d_lite.tutorial --run-dir runs/tutorial``.
The runner

1. generates the phantom data the notebooks need into ``RUN_DIR/data`` (ACDC layout),
2. executes every notebook (:func:`notebook_dir`: the package's copy, so a wheel install
   works too) in order with papermill, in ``RUN_DIR``, passing the same ``out_dir=RUN_DIR``
   to all of them (so later notebooks reuse earlier checkpoints),
3. writes each executed notebook to ``RUN_DIR/executed/`` and an HTML export of it to
   ``RUN_DIR/html/``; the notebooks themselves save figures to ``RUN_DIR/figures/``,
   metrics to ``RUN_DIR/metrics/<notebook>.json`` and checkpoints to ``RUN_DIR/checkpoints/``,
4. prints one line of progress per notebook and writes ``summary.csv``, ``summary.json``
   and ``summary.md`` (notebook, status, seconds, key metrics).

``--smoke`` uses the small parameter set (the one the notebook tests use);
``--only NAME`` runs just the notebooks whose name contains NAME (repeatable).

The module also holds the two small helpers the notebooks share for their set-up
(:func:`ensure_phantom_data`, :func:`save_metrics`), their common first cell
(:data:`SETUP_CELL`), and the ``interp4d-lite notebooks DEST`` (:func:`copy_notebooks`) and
``interp4d-lite tutorial`` commands.
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

from .io_utils import atomic_write, atomic_write_bytes, atomic_write_json, atomic_write_text

PACKAGE_DIR = Path(__file__).resolve().parent
#: The repository root when the package runs from a clone (tests keep their run folders there).
REPO_ROOT = PACKAGE_DIR.parent


def notebook_dir() -> Path:
    """The folder of the tutorial notebooks: ``interp4d_lite/notebooks`` (package data in
    a wheel; in a clone a symlink to the repository's ``notebooks/``, the one copy), else
    the repository's ``notebooks/`` (a clone checked out without symlinks)."""
    for d in (PACKAGE_DIR / "notebooks", PACKAGE_DIR.parent / "notebooks"):
        if d.is_dir() and any(d.glob("*.ipynb")):
            return d.resolve()
    raise FileNotFoundError(f"no tutorial notebooks in {PACKAGE_DIR / 'notebooks'}: a broken installation?")


NOTEBOOK_DIR = notebook_dir()

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
    "04_timestamp_sweeps": [
        "volume_shape",
        "n_frames",
        "n_patients",
        "teacher_steps",
        "student_steps",
        "baseline_steps",
        "sweep_points",
    ],
    "05_visualizers": ["volume_shape", "n_frames", "n_patients", "student_steps"],
    "06_real_data": ["volume_shape", "n_frames", "n_patients", "max_steps"],
}

#: Artifacts (globs relative to out_dir) each notebook promises; the tests check them.
ARTIFACTS: dict[str, list[str]] = {
    "00_quickstart": ["figures/00_*.png", "metrics/00_quickstart.json", "checkpoints/quickstart_student.pt"],
    "01_data_loading": ["figures/01_*.png", "metrics/01_data_loading.json"],
    "02_teacher_training": ["figures/02_*.png", "metrics/02_teacher_training.json", "checkpoints/teacher.pt"],
    "03_distillation": [
        "figures/03_*.png",
        "metrics/03_distillation.json",
        "checkpoints/student.pt",
        "checkpoints/student_nokd.pt",
    ],
    "04_timestamp_sweeps": [
        "figures/04_*.png",
        "metrics/04_timestamp_sweeps.json",
        "tables/04_*.csv",
        "superres/*.nii.gz",
    ],
    "05_visualizers": ["figures/05_*.png", "metrics/05_visualizers.json"],
    "06_real_data": ["figures/06_*.png", "metrics/06_real_data.json"],
}


#: The first cell of every notebook, word for word (tests/test_notebooks_clean.py checks it).
#: With interp4d_lite importable it does nothing; on a hosted kernel without it (Colab, a
#: JupyterHub) it installs the package from ``INSTALL_SOURCE``, and on Colab it enables the
#: custom widget manager that the interactive tools of 05_visualizers need.
SETUP_CELL = """\
# Set-up, the same first cell in every notebook. Where interp4d_lite is installed (a clone's
# .venv, a course image) it does nothing. On Colab or a JupyterHub without it, it installs the
# package from INSTALL_SOURCE (set the environment variable INTERP4D_LITE_SOURCE to a wheel, a
# folder or a git URL to install from elsewhere); on Colab it also turns on the widget manager
# that the interactive tools need.
import importlib.util
import os
import sys

INSTALL_SOURCE = os.environ.get("INTERP4D_LITE_SOURCE", "interp4d-lite")
if importlib.util.find_spec("interp4d_lite") is None:
    %pip install --quiet {INSTALL_SOURCE}
    importlib.invalidate_caches()
if "google.colab" in sys.modules:
    from google.colab import output

    output.enable_custom_widget_manager()"""


# --------------------------------------------------------------------------- copying the notebooks out
COPY_MANIFEST = ".interp4d-lite-notebooks.json"


def copy_notebooks(dest: str | os.PathLike, force: bool = False) -> dict[str, list[str]]:
    """Copy the tutorial notebooks into ``dest`` (created if needed) to run them there.

    A copy the user has edited is never overwritten unless ``force``: ``dest`` keeps a
    manifest (:data:`COPY_MANIFEST`) of what was copied, so an unedited copy of an older
    version is updated while an edited one is kept. Returns the notebook names by outcome:
    ``{"copied": [...], "updated": [...], "unchanged": [...], "kept": [...]}``."""
    import hashlib

    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        from .errors import CLIError

        raise CLIError(f"{dest}: exists and is not a folder")
    dest.mkdir(parents=True, exist_ok=True)
    manifest_path = dest / COPY_MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    except (OSError, ValueError):
        manifest = {}
    sha = lambda b: hashlib.sha256(b).hexdigest()  # noqa: E731
    out: dict[str, list[str]] = {"copied": [], "updated": [], "unchanged": [], "kept": []}
    for src in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        data, target = src.read_bytes(), dest / src.name
        if not target.exists():
            outcome = "copied"
        else:
            have = target.read_bytes()
            if have == data:
                out["unchanged"].append(src.name)
                manifest[src.name] = sha(data)
                continue
            if force or manifest.get(src.name) == sha(have):  # forced, or our unedited copy of another version
                outcome = "updated"
            else:
                out["kept"].append(src.name)
                continue
        atomic_write_bytes(target, data)
        manifest[src.name] = sha(data)
        out[outcome].append(src.name)
    atomic_write_json(manifest_path, manifest, indent=1, sort_keys=True)
    return out


def _run_copy(args) -> int:
    res = copy_notebooks(args.dest, force=args.force)
    dest = Path(args.dest)
    for outcome in ("copied", "updated", "unchanged"):
        if res[outcome]:
            print(f"{outcome}: {', '.join(res[outcome])}")
    if res["kept"]:
        print(f"kept (edited; --force overwrites them): {', '.join(res['kept'])}", file=sys.stderr)
    print(
        f"notebooks in {dest.resolve()}: open them with `jupyter lab {dest}`; "
        "each writes its results under runs/ in its own folder"
    )
    return 0


def add_commands(subparsers) -> None:
    """``interp4d-lite notebooks DEST`` and ``interp4d-lite tutorial``."""
    p = subparsers.add_parser(
        "notebooks",
        help="copy the tutorial notebooks into a folder, to open and run them there",
        description="Copy the seven tutorial notebooks (00_quickstart ... 06_real_data) into DEST. A notebook "
        "you have edited there is never overwritten without --force; an unedited copy of an older version is "
        "updated.",
    )
    p.add_argument("dest", metavar="DEST", help="folder to copy the notebooks into (created if missing)")
    p.add_argument("--force", action="store_true", help="overwrite notebooks edited in DEST too")
    p.set_defaults(func=_run_copy)
    p = subparsers.add_parser(
        "tutorial",
        help="execute every tutorial notebook into a run folder (papermill; the [notebooks] extra)",
        description=__doc__.split("\n\n")[0],
    )
    _add_tutorial_args(p)
    p.set_defaults(func=lambda args: _run_tutorial(args))


# --------------------------------------------------------------------------- helpers used by notebooks
def ensure_phantom_data(
    root: str | os.PathLike,
    kind: str = "cardiac",
    n_patients: int = 4,
    volume_shape=(48, 48, 16),
    n_frames: int = 10,
    seed: int = 0,
) -> Path:
    """Return ``root`` after making sure it holds a phantom dataset of ``n_patients``.

    The dataset is written with the data module's own writer
    (:func:`interp4d_lite.data.phantoms.write_phantom_dataset`) in ACDC layout for cardiac
    phantoms and in our 4D-Lung layout for lung phantoms; an existing dataset of the same
    kind, shape, frame count and size is reused, anything else is regenerated.
    """
    from .data.phantoms import write_phantom_dataset

    root = Path(root)
    manifest = root / "dataset.json"
    want = {
        "kind": kind,
        "n_patients": int(n_patients),
        "volume_shape": [int(s) for s in volume_shape],
        "n_frames": int(n_frames),
        "seed": int(seed),
    }
    stamp = root / ".tutorial_phantoms.json"
    if manifest.exists() and stamp.exists():
        try:
            if json.loads(stamp.read_text()) == want:
                return root
        except (OSError, ValueError):
            pass
    root.mkdir(parents=True, exist_ok=True)
    write_phantom_dataset(
        root,
        kind=kind,
        n_patients=int(n_patients),
        shape=tuple(want["volume_shape"]),
        n_frames=int(n_frames),
        seed=int(seed),
    )
    atomic_write_json(stamp, want)
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


def run_notebook(
    name: str,
    run_dir: str | os.PathLike,
    smoke: bool = False,
    data_root=None,
    html: bool = True,
    kernel_name: str = "python3",
    timeout: int | None = 1200,
    extra_params: dict | None = None,
) -> dict[str, Any]:
    """Execute ``notebooks/<name>.ipynb`` into ``run_dir``; return a summary row.

    The row holds ``notebook``, ``status`` ("ok" or "failed"), ``seconds``, ``error``
    (one line) and the notebook's key metrics (from ``run_dir/metrics/<name>.json``)."""
    import papermill as pm

    # OpenMP threads that spin while waiting collapse when other processes share the
    # cores (steps up to 10x slower on 2 busy cores); the kernel inherits this
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
            pm.execute_notebook(
                str(src),
                str(executed),
                parameters=params,
                kernel_name=kernel_name,
                cwd=str(run_dir),
                progress_bar=False,
                log_output=False,
                execution_timeout=timeout,
                report_mode=False,
            )
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
    _add_tutorial_args(p)
    return _run_tutorial(p.parse_args(argv))


def _add_tutorial_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", default="runs/tutorial", help="output folder (default: runs/tutorial)")
    p.add_argument("--smoke", action="store_true", help="small parameters (as the notebook tests)")
    p.add_argument(
        "--only", action="append", metavar="NAME", help="run only notebooks whose name contains NAME (repeatable)"
    )
    p.add_argument("--no-html", action="store_true", help="skip the HTML export")
    p.add_argument(
        "--timeout",
        type=int,
        default=1200,
        help="per-cell timeout in seconds (default 1200): a stuck cell fails its notebook, not the run",
    )
    p.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")


def _run_tutorial(args: argparse.Namespace) -> int:
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
            kw = dict(
                volume_shape=DEFAULT_DATA["volume_shape"],
                n_frames=DEFAULT_DATA["n_frames"],
                n_patients=DEFAULT_DATA["n_patients"],
            )
        ensure_phantom_data(data_root, kind="cardiac", **kw)
        print(f"[data] cardiac phantoms in {data_root} ({time.perf_counter() - t0:.1f} s)", flush=True)
    except Exception as exc:
        print(f"[data] could not write phantoms ({type(exc).__name__}: {exc}); notebooks make their own", flush=True)
        traceback.print_exc()
        data_root = None

    rows = []
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name} ...", end=" ", flush=True)
        row = run_notebook(
            name,
            run_dir,
            smoke=args.smoke,
            data_root=data_root,
            html=not args.no_html,
            kernel_name=args.kernel,
            timeout=args.timeout,
        )
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
