"""``interp4d-lite notebooks DEST`` and ``interp4d-lite tutorial``: registered by
:mod:`interp4d_lite.cli` (parsing imports no papermill or torch)."""

from __future__ import annotations

from .copying import run_copy
from .registry import NOTEBOOKS
from .runner import DESCRIPTION, add_tutorial_args, run_tutorial

__all__ = ["add_commands"]


def add_commands(subparsers) -> None:
    """``interp4d-lite notebooks DEST`` and ``interp4d-lite tutorial``."""
    p = subparsers.add_parser(
        "notebooks",
        help="copy the tutorial notebooks into a folder, to open and run them there",
        description=f"Copy the {len(NOTEBOOKS)} tutorial notebooks ({NOTEBOOKS[0]} ... {NOTEBOOKS[-1]}) into DEST. "
        "A notebook you have edited there is never overwritten without --force; an unedited copy of an older "
        "version is updated.",
    )
    p.add_argument("dest", metavar="DEST", help="folder to copy the notebooks into (created if missing)")
    p.add_argument("--force", action="store_true", help="overwrite notebooks edited in DEST too")
    p.set_defaults(func=run_copy)
    p = subparsers.add_parser(
        "tutorial",
        help="execute every tutorial notebook into a run folder (papermill; the [notebooks] extra)",
        description=DESCRIPTION,
    )
    add_tutorial_args(p)
    p.set_defaults(func=run_tutorial)
