"""The package's import graph: no two modules import each other (at module level or
inside a function), so each module can be read, tested and changed on its own."""

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
