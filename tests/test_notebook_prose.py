"""The notebooks' prose stays true when a run changes: no markdown cell states a measured
number (a value with 3 or more decimals, ``0.443``) that a code cell does not print.

The one exception is a number quoted from a cited source: the same line carries a citation
marker (``et al.``, a DOI, an arXiv id or a numbered reference such as ``[3]``)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from interp4d_lite.tutorial import NOTEBOOK_DIR, NOTEBOOKS

ALL = [NOTEBOOK_DIR / f"{name}.ipynb" for name in NOTEBOOKS]

#: a number with at least three decimals, e.g. 0.443 or 36.481
MEASURED = re.compile(r"\d+\.\d{3,}")
#: what makes a line a quotation from a cited source
CITATION = re.compile(r"\bet al\.|\bdoi\b|\barxiv\b|\[\d+(?:\s*[,–-]\s*\d+)*\]", re.IGNORECASE)


def measured_numbers(markdown: str) -> list[str]:
    """The lines of ``markdown`` that state a number with 3+ decimals and cite no source."""
    return [line.strip() for line in markdown.splitlines() if MEASURED.search(line) and not CITATION.search(line)]


def test_the_rule_flags_run_numbers_and_spares_citations():
    """The checker itself: a run's number is found, in any position of a line; a quoted,
    cited one, a number with fewer decimals and a version or tolerance are not."""
    flagged = measured_numbers(
        "What the run measured: the mean weights were 0.443 / 0.303\na difference of 0.003.\nPSNR 36.481 dB"
    )
    assert flagged == [
        "What the run measured: the mean weights were 0.443 / 0.303",
        "a difference of 0.003.",
        "PSNR 36.481 dB",
    ]
    spared = (
        "Chen et al. report an SSIM of 0.912 on ACDC\n"
        "UVI-Net [2] reaches 0.8745 (their table 2)\n"
        "see doi:10.1109/TMI.2023.1234567\n"
        "a margin of 0.01 intensity units, tolerance 1e-5, 2.5 mm, version 1.6"
    )
    assert measured_numbers(spared) == []
    # the citation must be on the same line: a reference elsewhere in the cell does not excuse a number
    assert measured_numbers("As Chen et al. [3] show,\nour run gave 0.555 voxels") == ["our run gave 0.555 voxels"]


def test_every_tutorial_notebook_is_checked():
    assert len(ALL) == 7 and all(p.exists() for p in ALL), [p.name for p in ALL if not p.exists()]


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_markdown_states_no_measured_number(path: Path):
    """Numbers a run produces belong in a code cell that prints them, not in the prose."""
    nb = nbformat.read(str(path), as_version=4)
    hits = [
        f"cell {cell.get('id', i)}: {line}"
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "markdown"
        for line in measured_numbers(cell.source)
    ]
    assert not hits, (
        f"{path.name}: markdown states numbers with 3+ decimals (print them from a code cell, "
        "or cite the source on the same line):\n" + "\n".join(hits)
    )


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_summary_follows_a_cell_that_prints_what_the_run_found(path: Path):
    """A summary that says what to take from the run sits right after the code cell that
    printed what this run found (its numbers and verdicts), so no summary states a result the
    same run contradicts."""
    nb = nbformat.read(str(path), as_version=4)
    at = next(
        (i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "## summary" in c.source.lower()), None
    )
    assert at is not None, f"{path.name}: no summary"
    before = nb.cells[at - 1]
    assert before.cell_type == "code" and "what this run found" in before.source and "print(" in before.source, (
        f"{path.name}: the cell before the summary should print what this run found"
    )
