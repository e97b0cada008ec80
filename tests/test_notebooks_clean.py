"""Fast checks on the committed notebooks: no outputs, no execution counts, the common
set-up cell first (a no-op where the package is importable) and the ``parameters`` cell
next, learning objectives at the top and exercises at the bottom (clean diffs,
papermill-ready)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from interp4d_lite.tutorial import NOTEBOOK_DIR, NOTEBOOK_PARAMS, NOTEBOOKS, SETUP_CELL

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
def test_every_cell_has_its_own_id(path: Path):
    """In the file itself: nbformat adds missing ids when it reads (and warns that this will
    become an error), so the raw JSON is checked."""
    import json

    ids = [cell.get("id") for cell in json.loads(path.read_text())["cells"]]
    assert None not in ids, f"{path.name}: cells {[i for i, x in enumerate(ids) if x is None]} have no id"
    assert len(set(ids)) == len(ids), f"{path.name}: cell ids repeat"


def _parameters_cell(nb):
    return next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_setup_cell_then_parameters(path: Path):
    """The first cell is the common set-up cell, word for word; the next code cell is the
    ``parameters`` cell with every knob."""
    nb = nbformat.read(str(path), as_version=4)
    assert nb.cells[0].cell_type == "code" and nb.cells[0].source == SETUP_CELL, (
        f"{path.name}: the first cell must be interp4d_lite.tutorial.SETUP_CELL, word for word"
    )
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) > 2, f"{path.name} has no code cells"
    tags = code[1].get("metadata", {}).get("tags", [])
    assert "parameters" in tags, f"{path.name}: the code cell after the set-up cell must be tagged 'parameters'"
    src = code[1].source
    for knob in ["data_root", "device", "seed", "out_dir", "volume_shape"]:
        assert f"{knob} =" in src, f"{path.name}: parameters cell lacks `{knob}`"
    for knob in NOTEBOOK_PARAMS.get(path.stem, []):
        assert f"{knob} =" in src, f"{path.name}: parameters cell lacks `{knob}` (the smoke run sets it)"
    assert 'out_dir = "runs/notebooks"' in src, f"{path.name}: out_dir should default to runs/ in the working folder"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_papermill_injects_right_after_the_parameters(path: Path):
    """With the set-up cell first, papermill still puts its injected parameters right
    after the ``parameters`` cell (so they override the defaults, and the set-up runs first)."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = parameterize_notebook(load_notebook_node(str(path)), {"seed": 7, "out_dir": "/tmp/x"})
    tags = [c.get("metadata", {}).get("tags", []) for c in nb.cells]
    i = next(k for k, t in enumerate(tags) if "parameters" in t)
    assert nb.cells[0].source == SETUP_CELL
    assert "injected-parameters" in tags[i + 1] and "seed = 7" in nb.cells[i + 1].source


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_objectives_summary_and_exercises(path: Path):
    nb = nbformat.read(str(path), as_version=4)
    md = [c.source.lower() for c in nb.cells if c.cell_type == "markdown"]
    assert md and "learning objectives" in md[0], f"{path.name}: first markdown cell should list learning objectives"
    # after the last code cell of the lesson itself come the summary and the exercises (questions with
    # worked answers, then the self-checking coding exercises: cells tagged `exercise` / `solution`)
    tags = [set(c.get("metadata", {}).get("tags", [])) for c in nb.cells]
    lesson = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and not tags[i] & {"exercise", "solution"}]
    tail = "\n".join(c.source.lower() for c in nb.cells[lesson[-1] + 1 :] if c.cell_type == "markdown")
    assert "summary" in tail and "exercise" in tail, f"{path.name}: should end with a summary and exercises"
    hidden = [c for c in nb.cells if c.get("metadata", {}).get("jupyter", {}).get("source_hidden")]
    assert hidden, f"{path.name}: exercises need worked answers in a collapsed (source_hidden) cell"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_papermill_sees_every_parameter(path: Path):
    """papermill's parser skips a line with a second '=' (e.g. in a comment): such a knob
    would be missing from `papermill --help-notebook` and warned about when passed."""
    from papermill.translators import PythonTranslator

    nb = nbformat.read(str(path), as_version=4)
    cell = _parameters_cell(nb)
    names = {p.name for p in PythonTranslator.inspect(cell)}
    assigned = {
        line.split("=")[0].strip()
        for line in cell.source.splitlines()
        if "=" in line and not line.strip().startswith("#")
    }
    assert assigned <= names, f"{path.name}: papermill cannot parse {sorted(assigned - names)} (no '=' in comments)"


class _Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, line):
        self.calls.append(line)


def _run_setup_cell(monkeypatch, importable: bool, colab: bool) -> tuple[list, list]:
    """Run SETUP_CELL in a real IPython shell with ``%pip`` and Colab's widget manager
    recorded instead of run; returns (pip lines, widget-manager calls)."""
    import importlib.util
    import sys
    import types

    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    pip = _Recorder()
    shell.register_magic_function(pip, magic_kind="line", magic_name="pip")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "interp4d_lite" and not importable else real(name, *a),
    )
    manager = _Recorder()
    if colab:
        output = types.SimpleNamespace(enable_custom_widget_manager=lambda: manager("enable"))
        google = types.ModuleType("google")
        colab_mod = types.ModuleType("google.colab")
        colab_mod.output = output
        google.colab = colab_mod
        monkeypatch.setitem(sys.modules, "google", google)
        monkeypatch.setitem(sys.modules, "google.colab", colab_mod)
    result = shell.run_cell(SETUP_CELL)
    result.raise_error()
    return pip.calls, manager.calls


def test_setup_cell_is_a_no_op_where_the_package_is_importable(monkeypatch):
    monkeypatch.delenv("INTERP4D_LITE_SOURCE", raising=False)
    assert _run_setup_cell(monkeypatch, importable=True, colab=False) == ([], [])


def test_setup_cell_installs_from_the_source_and_enables_colab_widgets(monkeypatch):
    monkeypatch.delenv("INTERP4D_LITE_SOURCE", raising=False)
    pip, manager = _run_setup_cell(monkeypatch, importable=False, colab=True)
    assert pip == ["install --quiet interp4d-lite"] and manager == ["enable"]
    monkeypatch.setenv("INTERP4D_LITE_SOURCE", "/courses/wheels/interp4d_lite-0.1.0-py3-none-any.whl")
    pip, manager = _run_setup_cell(monkeypatch, importable=False, colab=False)
    assert pip == ["install --quiet /courses/wheels/interp4d_lite-0.1.0-py3-none-any.whl"] and manager == []
