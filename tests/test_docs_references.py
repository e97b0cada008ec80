"""Every file of the repository can be followed by a reader who has only the repository:

* no file refers to a path outside it (the sibling ``shared`` folder of a working copy);
* no file refers to an issue or ticket that a reader of the repository cannot see;
* every ``*.md`` document a file names exists, relative to that file or to the repository root.

Lists every offending file and line. This file itself is not scanned (it spells the patterns out).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: ``*.md`` names that are not documents of this repository, and why.
NOT_REPO_DOCUMENTS = {
    "summary.md": "written by the tutorial runner into a run folder (interp4d_lite/tutorial.py)",
    "MANDATORY_CITATION.md": "a file inside the downloaded ACDC archive (interp4d_lite/download/acdc.py)",
}

OUTSIDE = "../" + "shared"  # split so this file does not match itself
ISSUE = re.compile(r"\bthe " + "issue\\b|\\bissue " + "asks\\b", re.IGNORECASE)
MD_PATH = re.compile(r"(?<![\w/.-])((?:\.{1,2}/)*[\w./-]*\w\.md)\b")
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".txt", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".sh", ".json", ".rst", ""}


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file but the obvious outputs
        skip = {".git", ".venv", "runs", "data", "__pycache__", ".pytest_cache"}
        names = [
            str(p.relative_to(REPO))
            for p in REPO.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(REPO).parts)
        ]
    files = []
    for n in names:
        p = REPO / n
        if p.resolve() == Path(__file__).resolve():
            continue
        if p.is_file() and (p.suffix in TEXT_SUFFIXES or p.name in {"Makefile", ".gitignore"}):
            files.append(p)
    return files


def _lines(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return []
    return list(enumerate(text.splitlines(), 1))


def test_the_scan_sees_the_documents_and_sources():
    names = {str(p.relative_to(REPO)) for p in tracked_files()}
    for expected in (
        "README.md",
        "docs/METHOD.md",
        "docs/ARCHITECTURE.md",
        "docs/TEACHING.md",
        "interp4d_lite/metrics.py",
        "notebooks/06_real_data.ipynb",
    ):
        assert expected in names, f"{expected} is not scanned (missing or not tracked)"


def test_no_reference_outside_the_repository():
    bad = [
        f"{p.relative_to(REPO)}:{i}: {line.strip()}"
        for p in tracked_files()
        for i, line in _lines(p)
        if OUTSIDE in line
    ]
    assert not bad, f"references to {OUTSIDE}:\n" + "\n".join(bad)


def test_no_reference_to_an_issue():
    bad = [
        f"{p.relative_to(REPO)}:{i}: {line.strip()}"
        for p in tracked_files()
        for i, line in _lines(p)
        if ISSUE.search(line)
    ]
    assert not bad, "references to an issue a reader cannot see:\n" + "\n".join(bad)


def test_every_named_document_exists():
    bad = []
    for p in tracked_files():
        for i, line in _lines(p):
            for m in MD_PATH.finditer(line):
                ref = m.group(1)
                if Path(ref).name in NOT_REPO_DOCUMENTS:
                    continue
                if re.search(r"https?://\S*$", line[: m.start()]):  # part of a URL
                    continue
                if (p.parent / ref).resolve().is_file() or (REPO / ref).resolve().is_file():
                    continue
                bad.append(f"{p.relative_to(REPO)}:{i}: {ref}")
    assert not bad, (
        "documents named but not in the repository (path relative to the file or the repo root):\n" + "\n".join(bad)
    )


def test_the_checker_catches_a_missing_document(tmp_path):
    """The pattern finds bare names, relative and root-relative paths (so a missing one would fail)."""
    found = [
        m.group(1) for m in MD_PATH.finditer('see METHOD.md, "docs/METHOD.md", [x](../docs/TEACHING.md) and a.md.')
    ]
    assert found == ["METHOD.md", "docs/METHOD.md", "../docs/TEACHING.md", "a.md"]
    assert not (REPO / "METHOD.md").exists() and (REPO / "docs" / "METHOD.md").exists()
