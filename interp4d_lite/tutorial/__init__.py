"""The tutorial notebooks, as the package serves them, in modules by job:

* :mod:`.registry`: where the notebooks are (:data:`NOTEBOOK_DIR`) and the one table of
  what each declares, writes and exercises (:data:`REGISTRY`, with the views
  :data:`NOTEBOOKS`, :data:`NOTEBOOK_PARAMS`, :data:`ARTIFACTS`, :data:`EXERCISES`), the
  smoke and default parameters;
* :mod:`.setup_cell`: their common first cell (:data:`SETUP_CELL`);
* :mod:`.helpers`: what the notebooks import for their set-up (:func:`start_notebook`,
  :func:`ensure_phantom_data`, :func:`ensure_real_cine_data`, :func:`held_out_patients`,
  :func:`verdict`, :func:`save_metrics`);
* :mod:`.copying`: ``interp4d-lite notebooks DEST`` (:func:`copy_notebooks`);
* :mod:`.runner`: the papermill runner, ``python -m interp4d_lite.tutorial`` and
  ``interp4d-lite tutorial`` (:func:`run_notebook`, :func:`main`);
* :mod:`.exercises`: the notebooks' self-checking exercises (``check_*``; also importable as
  ``interp4d_lite.exercises``), imported on first use;
* :mod:`.cli`: registers both commands with :mod:`interp4d_lite.cli` (:func:`add_commands`).

Every public name is importable from here (``from interp4d_lite.tutorial import
ensure_phantom_data, save_metrics``). Nothing here imports torch or papermill until it runs.
"""

from .cli import add_commands
from .copying import COPY_MANIFEST, copy_notebooks
from .helpers import (
    ensure_phantom_data,
    ensure_real_cine_data,
    held_out_patients,
    save_metrics,
    start_notebook,
    verdict,
)
from .registry import (
    ARTIFACTS,
    DEFAULT_DATA,
    EXERCISES,
    NOTEBOOK_DIR,
    NOTEBOOK_PARAMS,
    NOTEBOOKS,
    PACKAGE_DIR,
    REGISTRY,
    REPO_ROOT,
    SMOKE_PARAMS,
    Notebook,
    notebook_dir,
)
from .runner import export_html, main, notebook_parameters, run_notebook, select_notebooks, write_summary
from .setup_cell import SETUP_CELL

__all__ = [
    "PACKAGE_DIR",
    "REPO_ROOT",
    "notebook_dir",
    "NOTEBOOK_DIR",
    "Notebook",
    "REGISTRY",
    "NOTEBOOKS",
    "NOTEBOOK_PARAMS",
    "ARTIFACTS",
    "EXERCISES",
    "SMOKE_PARAMS",
    "DEFAULT_DATA",
    "SETUP_CELL",
    "COPY_MANIFEST",
    "copy_notebooks",
    "add_commands",
    "start_notebook",
    "ensure_phantom_data",
    "ensure_real_cine_data",
    "held_out_patients",
    "verdict",
    "save_metrics",
    "notebook_parameters",
    "export_html",
    "run_notebook",
    "write_summary",
    "select_notebooks",
    "main",
]
