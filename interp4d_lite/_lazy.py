"""Lazy package namespaces (PEP 562): ``from interp4d_lite.train import fit`` imports
``interp4d_lite.train.loops`` (and torch) only when ``fit`` is first asked for, so the
command line can build its parser and print ``--help`` without importing torch."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, list[str]]) -> tuple[Callable, Callable, list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` whose public names are
    ``exports = {".submodule": ["name", ...]}``: each name is imported from its submodule
    on first access and then cached in the package's namespace."""
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__, list(where)
