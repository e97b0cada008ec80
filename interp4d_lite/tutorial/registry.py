"""The tutorial notebooks: where they are and the one table of what each declares, writes
and exercises (the runner, the copy command, the exercises and the tests read it).

Standard library only: the command line imports it to build its parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
]

#: The folder of the ``interp4d_lite`` package.
PACKAGE_DIR = Path(__file__).resolve().parent.parent
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


@dataclass(frozen=True)
class Notebook:
    """One tutorial notebook: its name (the file ``<name>.ipynb``), the global knobs of
    :data:`SMOKE_PARAMS` its parameters cell declares (papermill warns about others), the
    artifacts it promises (globs relative to its ``out_dir``; the tests check them) and its
    self-checking exercises (names of ``interp4d_lite.tutorial.exercises.check_*``, in notebook order)."""

    name: str
    params: tuple[str, ...]
    artifacts: tuple[str, ...]
    exercises: tuple[str, ...]


_DATA = ("volume_shape", "n_frames", "n_patients")

#: The notebooks in the order they are meant to be read and run.
REGISTRY: tuple[Notebook, ...] = (
    Notebook(
        "00_quickstart",
        params=("volume_shape", "n_frames", "max_steps"),
        artifacts=("figures/00_*.png", "metrics/00_quickstart.json", "checkpoints/quickstart_student.pt"),
        exercises=("check_to_batch", "check_linear_blend"),
    ),
    Notebook(
        "01_data_loading",
        params=_DATA,
        artifacts=("figures/01_*.png", "metrics/01_data_loading.json"),
        exercises=("check_minmax_per_frame", "check_hu_to_unit", "check_warp_mm"),
    ),
    Notebook(
        "02_teacher_training",
        params=(*_DATA, "teacher_steps"),
        artifacts=("figures/02_*.png", "metrics/02_teacher_training.json", "checkpoints/teacher.pt"),
        exercises=("check_translation_fields", "check_charbonnier", "check_gradient_smoothness"),
    ),
    Notebook(
        "03_distillation",
        params=(*_DATA, "teacher_steps", "student_steps"),
        artifacts=(
            "figures/03_*.png",
            "metrics/03_distillation.json",
            "checkpoints/student.pt",
            "checkpoints/student_nokd.pt",
        ),
        exercises=("check_upsample_field", "check_field_distillation"),
    ),
    Notebook(
        "04_timestamp_sweeps",
        params=(*_DATA, "teacher_steps", "student_steps", "baseline_steps", "sweep_points"),
        artifacts=("figures/04_*.png", "metrics/04_timestamp_sweeps.json", "tables/04_*.csv", "superres/*.nii.gz"),
        exercises=("check_endpoint_error", "check_folding_percent"),
    ),
    Notebook(
        "05_visualizers",
        params=(*_DATA, "student_steps"),
        artifacts=("figures/05_*.png", "metrics/05_visualizers.json"),
        exercises=("check_window_level", "check_nearest_frame"),
    ),
    Notebook(
        "06_real_data",
        params=("max_steps", "adapt_minutes"),
        artifacts=("figures/06_*.png", "metrics/06_real_data.json"),
        exercises=("check_surrogate_times", "check_lung_phase_times"),
    ),
)

#: The notebook names, in order.
NOTEBOOKS: list[str] = [nb.name for nb in REGISTRY]
#: Which of the global knobs each notebook declares.
NOTEBOOK_PARAMS: dict[str, list[str]] = {nb.name: list(nb.params) for nb in REGISTRY}
#: The artifacts each notebook promises.
ARTIFACTS: dict[str, list[str]] = {nb.name: list(nb.artifacts) for nb in REGISTRY}
#: The self-checking exercises of each notebook.
EXERCISES: dict[str, list[str]] = {nb.name: list(nb.exercises) for nb in REGISTRY}

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
    "adapt_minutes": 0.5,
}

#: The phantom dataset of the default (non-smoke) run; notebooks use the same defaults.
DEFAULT_DATA = {"volume_shape": [48, 48, 16], "n_frames": 20, "n_patients": 10}
