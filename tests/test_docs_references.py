"""Every file of the repository can be followed by a reader who has only the repository:

* no file refers to a path outside it (the sibling ``shared`` folder of a working copy);
* no file refers to an issue or ticket that a reader of the repository cannot see
  ("the" + " issue", or a number after the word, as in a changelog's "issue" + " 6");
* no file describes the machine it was written or measured on ("a shared 2-core machine",
  "observed here"): a configuration is described as one ("on a 2-core CPU");
* every ``*.md`` document a file names exists, relative to that file or to the repository root.

Lists every offending file and line. This file itself is not scanned (it spells the patterns out);
``CHANGELOG.md`` is history by definition, so the issue and machine checks skip it (and only it).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: ``*.md`` names that are not documents of this repository, and why.
NOT_REPO_DOCUMENTS = {
    "summary.md": "written by the tutorial runner into a run folder (interp4d_lite/tutorial/runner.py)",
    "MANDATORY_CITATION.md": "a file inside the downloaded ACDC archive (interp4d_lite/download/acdc.py)",
}

OUTSIDE = "../" + "shared"  # split so this file does not match itself
ISSUE = re.compile(r"\bthe " + "issue\\b|\\bissue " + "asks\\b|\\bissues? " + r"#?\d", re.IGNORECASE)
MACHINE = re.compile(
    "|".join(
        (
            r"\b\d+-core " + "machine\\b",
            r"\bshared " + r"\d+-core\b",
            r"\bthe shared " + "machine\\b",
            r"\bdevelopment " + "machine\\b",
            r"\b(?:observed|measured|seen|verified|checked|tested|timed) (?:from |on )?" + "here\\b",
            r"\b\d+ runs " + "here\\b",
            r"\b(?:when|while) this was " + "written\\b",
            r"\bmachine this was " + "written on\\b",
        )
    ),
    re.IGNORECASE,
)
#: The one file allowed to tell the project's history (issues, the machines it ran on).
HISTORY = {"CHANGELOG.md"}
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


def _matches(pattern: re.Pattern) -> list[str]:
    return [
        f"{p.relative_to(REPO)}:{i}: {line.strip()}"
        for p in tracked_files()
        if str(p.relative_to(REPO)) not in HISTORY
        for i, line in _lines(p)
        if pattern.search(line)
    ]


def test_no_reference_to_an_issue():
    bad = _matches(ISSUE)
    assert not bad, "references to an issue a reader cannot see:\n" + "\n".join(bad)


def test_no_description_of_the_machine_it_ran_on():
    bad = _matches(MACHINE)
    assert not bad, "descriptions of a machine or first-person observations (say what is supported):\n" + "\n".join(bad)


def test_the_issue_and_machine_patterns():
    """What the two checks catch and what they let through (so neither can pass vacuously)."""
    caught = [
        "Download tools (" + "issue" + " 6).",
        "the targets of Issue #3",
        "as the " + "issue" + " asks",
        "10x slower on a shared 2-core machine",
        "a 4-core machine",
        "(observed here: 10x slower steps)",
        "not verified from here",
        "stuck in 4 of about 6 runs here",
        "no internet while this was written",
    ]
    assert [s for s in caught if not (ISSUE.search(s) or MACHINE.search(s))] == []
    allowed = [
        "sized for a 2-core CPU",
        "from here on every notebook uses warp",
        "CPU runs here are a demonstration",
        "voila-dashboards/voila#1428",
        "issues a warning",
        "the tissue moves",
    ]
    assert [s for s in allowed if ISSUE.search(s) or MACHINE.search(s)] == []
    assert "CHANGELOG.md" in {str(p.relative_to(REPO)) for p in tracked_files()}, "the changelog is scanned otherwise"


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
