"""The package as a user meets it: a quick command line that imports no torch to print
help, ``python -m interp4d_lite``, the ``notebooks`` command that copies the notebooks out
without clobbering edits, and the licence and citation files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from interp4d_lite.tutorial import COPY_MANIFEST, NOTEBOOK_DIR, NOTEBOOKS, copy_notebooks

REPO = Path(__file__).resolve().parent.parent

HELP_PROBE = r"""
import contextlib, io, json, sys
from interp4d_lite.cli import build_parser, main

parser = build_parser()
sub = parser._subparsers._group_actions[0]
argvs = [["--help"]] + [[name, "--help"] for name in sub.choices]
argvs += [["download", source, "--help"] for source in ("acdc", "lung4d")]
seen = {}
for argv in argvs:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main(argv)
        except SystemExit as exc:
            seen[" ".join(argv)] = [exc.code, len(out.getvalue())]
print(json.dumps({"help": seen, "torch": "torch" in sys.modules,
                  "heavy": sorted(m for m in ("monai", "nibabel", "scipy", "pandas", "matplotlib", "requests")
                                  if m in sys.modules)}))
"""


def test_help_of_every_command_imports_no_torch():
    r = subprocess.run([sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    commands = {k.split()[0] for k in res["help"] if k != "--help"}
    assert {
        "phantom",
        "train-teacher",
        "train-baseline",
        "distill",
        "evaluate",
        "interpolate",
        "download",
        "notebooks",
        "tutorial",
    } <= commands
    assert all(code == 0 and length > 200 for code, length in res["help"].values()), res["help"]
    assert res["torch"] is False, "printing --help imported torch"
    assert res["heavy"] == [], f"printing --help imported {res['heavy']}"


def test_python_dash_m_interp4d_lite():
    from interp4d_lite import __version__

    r = subprocess.run(
        [sys.executable, "-m", "interp4d_lite", "--version"], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert r.returncode == 0 and r.stdout.strip() == f"interp4d-lite {__version__}"


def test_notebooks_command_copies_and_never_clobbers_an_edited_copy(tmp_path, capsys):
    from interp4d_lite.cli import main

    dest = tmp_path / "course"
    assert main(["notebooks", str(dest)]) == 0
    names = sorted(p.name for p in dest.glob("*.ipynb"))
    assert names == sorted(f"{n}.ipynb" for n in NOTEBOOKS)
    assert all((dest / n).read_bytes() == (NOTEBOOK_DIR / n).read_bytes() for n in names)
    assert "copied: 00_quickstart.ipynb" in capsys.readouterr().out

    edited = dest / "03_distillation.ipynb"
    edited.write_text(edited.read_text().replace("Learning objectives", "My notes"))
    mine = edited.read_bytes()
    assert main(["notebooks", str(dest)]) == 0
    out = capsys.readouterr()
    assert edited.read_bytes() == mine
    assert "kept (edited; --force overwrites them): 03_distillation.ipynb" in out.err
    assert "unchanged: 00_quickstart.ipynb" in out.out

    # an unedited copy of another version (what an older release copied) is brought up to date
    old = dest / "00_quickstart.ipynb"
    old.write_bytes(b'{"cells": []}')
    manifest = json.loads((dest / COPY_MANIFEST).read_text())
    import hashlib

    manifest[old.name] = hashlib.sha256(b'{"cells": []}').hexdigest()
    (dest / COPY_MANIFEST).write_text(json.dumps(manifest))
    res = copy_notebooks(dest)
    assert res["updated"] == ["00_quickstart.ipynb"] and res["kept"] == ["03_distillation.ipynb"]
    assert old.read_bytes() == (NOTEBOOK_DIR / old.name).read_bytes()

    assert main(["notebooks", str(dest), "--force"]) == 0
    assert edited.read_bytes() == (NOTEBOOK_DIR / edited.name).read_bytes()
    (tmp_path / "file").write_text("x")
    assert main(["notebooks", str(tmp_path / "file")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def test_notebooks_have_one_source_of_truth():
    """The package's notebooks are the repository's notebooks/ (a symlink), not a copy."""
    pkg = REPO / "interp4d_lite" / "notebooks"
    assert pkg.is_symlink() and pkg.resolve() == (REPO / "notebooks").resolve()
    assert NOTEBOOK_DIR == (REPO / "notebooks").resolve()


def test_licence_and_citation():
    yaml = pytest.importorskip("yaml")
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and cff["license"] == "MIT"
    dois = {r.get("doi") for r in cff["references"]}
    assert {"10.1007/978-3-032-04984-1_53", "10.1109/TMI.2018.2837502", "10.7937/K9/TCIA.2016.ELN8YGLE"} <= dois
    assert any("UVI-Net" in r.get("notes", "") and r["year"] == 2024 for r in cff["references"])
    assert "## [Unreleased]" in (REPO / "CHANGELOG.md").read_text()
