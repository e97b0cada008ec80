"""The package's import graph: no two modules import each other (at module level or
inside a function), so each module can be read, tested and changed on its own; and the
imports run down the layers of docs/ARCHITECTURE.md ("Layers"), loading a model needs nothing
of ``train/``, reading data nothing of ``download/``."""

from __future__ import annotations

import ast
from pathlib import Path

import interp4d_lite

PKG_DIR = Path(interp4d_lite.__file__).resolve().parent
PKG = "interp4d_lite"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG_DIR.rglob("*.py"):
        parts = list(path.relative_to(PKG_DIR).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([PKG, *parts])] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """``module -> modules of the package it imports`` (every import statement, also the
    ones inside functions; ``from P import name`` counts ``P.name`` when that is a module)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        package = name if is_pkg else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.split(".")[0] == PKG}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != PKG:
                    continue
                subs = {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods}
                if subs and len(subs) == len(node.names):
                    deps |= subs
                else:
                    deps |= subs | {target}
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def test_no_two_modules_import_each_other():
    g = import_graph()
    pairs = sorted({tuple(sorted((a, b))) for a, deps in g.items() for b in deps if a in g.get(b, set())})
    # a package's __init__ re-exporting its own submodules is not a cycle of logic: the
    # submodule importing its parent package back is what would be one
    assert pairs == [], "modules importing each other: " + ", ".join(f"{a} <-> {b}" for a, b in pairs)


def test_the_graph_sees_imports_inside_functions():
    g = import_graph()
    assert "interp4d_lite.train.loops" in g["interp4d_lite.train.api"]  # ensure_checkpoint imports it lazily
    assert "interp4d_lite.metrics" in g["interp4d_lite.viz.plots"]


#: The layers, bottom to top (docs/ARCHITECTURE.md, "Layers"): a module may import its own
#: layer and those below. The most specific prefix decides a module's layer.
LAYERS = {
    PKG: 0,
    f"{PKG}._lazy": 0,
    f"{PKG}.errors": 0,
    f"{PKG}.io_utils": 0,
    f"{PKG}.jsonconfig": 0,
    f"{PKG}.device": 0,
    f"{PKG}.data": 1,
    f"{PKG}.losses": 1,
    f"{PKG}.metrics": 2,
    f"{PKG}.models": 2,
    f"{PKG}.weights": 3,
    f"{PKG}.selfcheck": 3,
    f"{PKG}.viz": 3,
    f"{PKG}.interpolate": 4,
    f"{PKG}.train": 5,
    f"{PKG}.adapt": 6,
    f"{PKG}.download": 7,
    f"{PKG}.tutorial": 7,
    f"{PKG}.exercises": 7,
    f"{PKG}.cli": 8,
    f"{PKG}.__main__": 9,
}


def layer(module: str) -> int:
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in LAYERS:
            return LAYERS[".".join(parts[:k])]
    raise AssertionError(f"{module} has no layer in LAYERS (add it, and to docs/ARCHITECTURE.md)")


def _reach(g: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for d in g.get(todo.pop(), ()):
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def test_only_the_torchrun_entry_point_imports_back_up_the_layers():
    g = import_graph()
    up = sorted((a, b) for a, deps in g.items() for b in deps if layer(b) > layer(a))
    # `python -m interp4d_lite.train` (torchrun's entry point) runs the package's command line
    assert up == [(f"{PKG}.train.__main__", f"{PKG}.cli")], up


def test_loading_a_model_and_interpolating_need_nothing_of_train():
    g = import_graph()
    for start in [m for m in g if m.startswith(f"{PKG}.weights")] + [f"{PKG}.interpolate", f"{PKG}.selfcheck"]:
        bad = sorted(m for m in _reach(g, start) if m.startswith(f"{PKG}.train"))
        assert not bad, f"{start} imports {bad}"


def test_data_needs_nothing_of_download():
    g = import_graph()
    for start in [m for m in g if m.startswith(f"{PKG}.data")]:
        bad = sorted(m for m in _reach(g, start) if m.startswith(f"{PKG}.download"))
        assert not bad, f"{start} imports {bad}"


def test_one_module_writes_nifti():
    """Every NIfTI the package writes goes through ``data.io.write_nifti`` (atomic)."""
    writers = sorted(
        name
        for name, path in _modules().items()
        if any(call in path.read_text() for call in ("nib.save(", "nibabel.save(", ".to_filename(", ".to_bytes("))
    )
    assert writers == [f"{PKG}.data.io"], writers
