"""The code style is checked, not argued about: `ruff check` (configured in pyproject.toml)
finds nothing in the repository, it reads every Python file of the package (an exclude
pattern must not hide one), and every public class has a docstring."""

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


def test_ruff_checks_every_file_of_the_package():
    """An unanchored exclude (``"data"``) would also drop ``interp4d_lite/data/``: ruff must
    list every ``.py`` file of the package among the files it checks."""
    r = subprocess.run(
        [*_ruff(), "check", "--no-cache", "--show-files", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    checked = {Path(line.strip()).resolve() for line in r.stdout.splitlines() if line.strip()}
    package = {p.resolve() for p in (REPO / "interp4d_lite").rglob("*.py") if "__pycache__" not in p.parts}
    assert len(package) > 40, f"found only {len(package)} package files: is this the repository?"
    missing = sorted(str(p.relative_to(REPO.resolve())) for p in package - checked)
    assert not missing, "package files ruff does not check (anchor the excludes in pyproject.toml):\n" + "\n".join(
        missing
    )


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
