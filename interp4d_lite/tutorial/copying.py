"""``interp4d-lite notebooks DEST``: copy the tutorial notebooks out, never clobbering a
copy the user has edited."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from ..io_utils import atomic_write_bytes, atomic_write_json, check_output_path
from .registry import NOTEBOOK_DIR

__all__ = ["COPY_MANIFEST", "copy_notebooks", "run_copy"]

#: The manifest in ``DEST`` of what was copied there (name -> SHA-256).
COPY_MANIFEST = ".interp4d-lite-notebooks.json"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def copy_notebooks(dest: str | os.PathLike, force: bool = False) -> dict[str, list[str]]:
    """Copy the tutorial notebooks into ``dest`` (created if needed) to run them there.

    A copy the user has edited is never overwritten unless ``force``: ``dest`` keeps a
    manifest (:data:`COPY_MANIFEST`) of what was copied, so an unedited copy of an older
    version is updated while an edited one is kept. Returns the notebook names by outcome:
    ``{"copied": [...], "updated": [...], "unchanged": [...], "kept": [...]}``."""
    dest = check_output_path(dest, suffixes=None, what="")
    dest.mkdir(parents=True, exist_ok=True)
    manifest_path = dest / COPY_MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    except (OSError, ValueError):
        manifest = {}
    out: dict[str, list[str]] = {"copied": [], "updated": [], "unchanged": [], "kept": []}
    for src in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        data, target = src.read_bytes(), dest / src.name
        if not target.exists():
            outcome = "copied"
        else:
            have = target.read_bytes()
            if have == data:
                out["unchanged"].append(src.name)
                manifest[src.name] = _sha(data)
                continue
            if force or manifest.get(src.name) == _sha(have):  # forced, or our unedited copy of another version
                outcome = "updated"
            else:
                out["kept"].append(src.name)
                continue
        atomic_write_bytes(target, data)
        manifest[src.name] = _sha(data)
        out[outcome].append(src.name)
    atomic_write_json(manifest_path, manifest, indent=1, sort_keys=True)
    return out


def run_copy(args) -> int:
    """The ``notebooks`` command on parsed flags (``dest``, ``force``)."""
    res = copy_notebooks(args.dest, force=args.force)
    dest = Path(args.dest)
    for outcome in ("copied", "updated", "unchanged"):
        if res[outcome]:
            print(f"{outcome}: {', '.join(res[outcome])}")
    if res["kept"]:
        print(f"kept (edited; --force overwrites them): {', '.join(res['kept'])}", file=sys.stderr)
    print(
        f"notebooks in {dest.resolve()}: open them with `jupyter lab {dest}`; "
        "each writes its results under runs/ in its own folder"
    )
    return 0
