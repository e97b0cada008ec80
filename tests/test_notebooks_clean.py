"""Fast checks on the committed notebooks: no outputs, no execution counts, a
``parameters`` cell first among the code cells, learning objectives at the top and
exercises at the bottom (docs/STYLE: clean diffs, papermill-ready)."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from interp4d_lite.tutorial import NOTEBOOK_DIR, NOTEBOOK_PARAMS, NOTEBOOKS

ALL = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def test_every_tutorial_notebook_exists():
    missing = [n for n in NOTEBOOKS if not (NOTEBOOK_DIR / f"{n}.ipynb").exists()]
    assert not missing, f"notebooks listed in interp4d_lite.tutorial.NOTEBOOKS but missing: {missing}"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_committed_without_outputs(path: Path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.get("outputs", []) == [], f"{path.name}: code cell {i} has outputs; strip them before committing"
        assert cell.get("execution_count") is None, f"{path.name}: code cell {i} has an execution count"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_first_code_cell_is_parameters(path: Path):
    nb = nbformat.read(str(path), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    tags = code[0].get("metadata", {}).get("tags", [])
    assert "parameters" in tags, f"{path.name}: the first code cell must be tagged 'parameters'"
    src = code[0].source
    for knob in ["data_root", "device", "seed", "out_dir", "volume_shape"]:
        assert f"{knob} =" in src, f"{path.name}: parameters cell lacks `{knob}`"
    for knob in NOTEBOOK_PARAMS.get(path.stem, []):
        assert f"{knob} =" in src, f"{path.name}: parameters cell lacks `{knob}` (the smoke run sets it)"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_objectives_summary_and_exercises(path: Path):
    nb = nbformat.read(str(path), as_version=4)
    md = [c.source.lower() for c in nb.cells if c.cell_type == "markdown"]
    assert md and "learning objectives" in md[0], f"{path.name}: first markdown cell should list learning objectives"
    tail = "\n".join(md[-4:])
    assert "summary" in tail and "exercise" in tail, f"{path.name}: should end with a summary and exercises"
    hidden = [c for c in nb.cells if c.get("metadata", {}).get("jupyter", {}).get("source_hidden")]
    assert hidden, f"{path.name}: exercises need worked answers in a collapsed (source_hidden) cell"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_papermill_sees_every_parameter(path: Path):
    """papermill's parser skips a line with a second '=' (e.g. in a comment): such a knob
    would be missing from `papermill --help-notebook` and warned about when passed."""
    from papermill.translators import PythonTranslator

    nb = nbformat.read(str(path), as_version=4)
    cell = [c for c in nb.cells if c.cell_type == "code"][0]
    names = {p.name for p in PythonTranslator.inspect(cell)}
    assigned = {line.split("=")[0].strip() for line in cell.source.splitlines()
                if "=" in line and not line.strip().startswith("#")}
    assert assigned <= names, f"{path.name}: papermill cannot parse {sorted(assigned - names)} (no '=' in comments)"
