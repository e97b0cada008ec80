"""The code style is checked, not argued about: `ruff check` (configured in pyproject.toml)
finds nothing in the repository, and every public class has a docstring."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _ruff() -> list[str]:
    exe = Path(sys.executable).with_name("ruff")
    if exe.exists():
        return [str(exe)]
    if shutil.which("ruff"):
        return [shutil.which("ruff")]
    pytest.skip("ruff is not installed (it is in the dev extras: pip install -e '.[dev]')")


def test_ruff_check_is_clean():
    r = subprocess.run(
        [*_ruff(), "check", "--no-cache", "--output-format", "concise", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, f"ruff check found problems (fix them, or `make lint`):\n{r.stdout}{r.stderr}"


def test_ruff_format_is_clean():
    r = subprocess.run(
        [*_ruff(), "format", "--check", "--no-cache", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, f"ruff format would change files (run `make lint FIX=1`):\n{r.stdout}{r.stderr}"


def test_every_public_class_has_a_docstring():
    missing = []
    for path in sorted((REPO / "interp4d_lite").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and not ast.get_docstring(node):
                missing.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    assert not missing, "public classes without a docstring:\n" + "\n".join(missing)
