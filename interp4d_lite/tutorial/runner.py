"""Run the tutorial notebooks end to end: ``python -m interp4d_lite.tutorial``.

``make tutorial`` calls exactly ``python -m interp4d_lite.tutorial --run-dir runs/tutorial``.
The runner

1. generates the phantom data the notebooks need into ``RUN_DIR/data`` (ACDC layout),
2. executes every notebook (:data:`~interp4d_lite.tutorial.registry.NOTEBOOK_DIR`: the
   package's copy, so a wheel install works too) in order with papermill, in ``RUN_DIR``,
   passing the same ``out_dir=RUN_DIR`` to all of them (so later notebooks reuse earlier
   checkpoints),
3. writes each executed notebook to ``RUN_DIR/executed/`` and an HTML export of it to
   ``RUN_DIR/html/``; the notebooks themselves save figures to ``RUN_DIR/figures/``,
   metrics to ``RUN_DIR/metrics/<notebook>.json`` and checkpoints to ``RUN_DIR/checkpoints/``,
4. prints one line of progress per notebook and writes ``summary.csv``, ``summary.json``
   and ``summary.md`` (notebook, status, seconds, key metrics).

``--smoke`` uses the small parameter set (the one the notebook tests use);
``--only NAME`` runs just the notebooks whose name contains NAME (repeatable).
The same runner is the ``interp4d-lite tutorial`` command.
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

from ..errors import CLIError
from ..io_utils import atomic_write, atomic_write_json, atomic_write_text, check_output_path
from .helpers import ensure_phantom_data
from .registry import DEFAULT_DATA, NOTEBOOK_DIR, NOTEBOOK_PARAMS, NOTEBOOKS, SMOKE_PARAMS

__all__ = [
    "DESCRIPTION",
    "notebook_parameters",
    "export_html",
    "run_notebook",
    "write_summary",
    "select_notebooks",
    "add_tutorial_args",
    "run_tutorial",
    "main",
]

#: One line on what the runner does (``--help`` of both entry points).
DESCRIPTION = __doc__.split("\n\n")[0]


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
    """Write an HTML export (nbconvert) of the executed notebook ``executed``."""
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
    """Write ``summary.csv``, ``summary.json`` and ``summary.md`` of the rows so far."""
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
    """The notebooks whose name contains one of ``only`` (all of them when it is empty)."""
    if not only:
        return list(NOTEBOOKS)
    chosen = [n for n in NOTEBOOKS if any(o in n for o in only)]
    if not chosen:
        raise CLIError(f"--only {only}: no notebook matches; choose from {', '.join(NOTEBOOKS)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    """``python -m interp4d_lite.tutorial [--run-dir DIR] [--smoke] [--only NAME] ...``."""
    p = argparse.ArgumentParser(prog="python -m interp4d_lite.tutorial", description=DESCRIPTION)
    add_tutorial_args(p)
    return run_tutorial(p.parse_args(argv))


def add_tutorial_args(p: argparse.ArgumentParser) -> None:
    """The runner's flags (both entry points)."""
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


def run_tutorial(args: argparse.Namespace) -> int:
    """Run the selected notebooks into ``args.run_dir``; 0 when every one finished."""
    try:
        names = select_notebooks(args.only)
        check_output_path(args.run_dir, suffixes=None, what="--run-dir")
    except Exception as exc:
        print(f"tutorial: error: {exc}", file=sys.stderr)
        return 2
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    mode = "smoke" if args.smoke else "default"
    print(f"tutorial: {len(names)} notebook(s), {mode} parameters, run folder {run_dir.resolve()}", flush=True)

    # 1. the phantom data every notebook reads (each notebook would make it itself, too)
    data = SMOKE_PARAMS if args.smoke else DEFAULT_DATA
    data_root = run_dir / "data" / "cardiac"
    t0 = time.perf_counter()
    try:
        ensure_phantom_data(
            data_root,
            phantom="cardiac",
            volume_shape=data["volume_shape"],
            n_frames=data["n_frames"],
            n_patients=data["n_patients"],
        )
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
