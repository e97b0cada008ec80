"""Shared fixtures: small phantom datasets written once per test session.

Each ``*_root`` fixture is a read-only data folder written by
:func:`interp4d_lite.data.phantoms.write_phantom_dataset` into a session temp dir;
tests must not write into it (copy it with ``shutil.copytree`` first if needed).
Shapes are small so the whole session pays about a second for them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from interp4d_lite.data.phantoms import write_phantom_dataset

#: the repository's root (scripts/ and benchmarks/ are not packages)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def load_script():
    """``load_script("benchmarks/bench_real.py")``: a script of the repository as a module (its
    ``main`` not run), for tests of what it computes and prints."""

    def load(relpath: str):
        path = ROOT / relpath
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load


#: the shapes of the shared datasets, for tests that pass ``volume_shape``
CARDIAC_SHAPE = (32, 32, 10)
LUNG_SHAPE = (32, 32, 32)
LINEAR_SHAPE = (32, 32, 16)


@pytest.fixture(scope="session")
def cardiac_root(tmp_path_factory):
    """ACDC-layout folder with 3 cardiac phantom patients (``patient001..003``), 32x32x10
    voxels, the default spacing (1.5, 1.5, 8) mm, frames (25) and noise (Rician, 0.02), seed 0,
    truth fields included."""
    root = tmp_path_factory.mktemp("cardiac_phantoms")
    write_phantom_dataset(root, phantom="cardiac", n_patients=3, shape=CARDIAC_SHAPE, seed=0)
    return root


@pytest.fixture(scope="session")
def lung_root(tmp_path_factory):
    """4D-Lung-layout folder with 2 lung phantom patients (``lung001``, ``lung002``),
    32^3 voxels, spacing 2.5 mm, 10 phases in HU, seed 0, truth fields included."""
    root = tmp_path_factory.mktemp("lung_phantoms")
    write_phantom_dataset(root, phantom="lung", n_patients=2, shape=LUNG_SHAPE, seed=0)
    return root


@pytest.fixture(scope="session")
def linear_root(tmp_path_factory):
    """ACDC-layout folder with 2 linear-translation phantoms (``patient001``, ``patient002``),
    32x32x16 voxels, 6 frames (ED = frame 1, ES = frame 6 in Info.cfg), seed 0."""
    root = tmp_path_factory.mktemp("linear_phantoms")
    write_phantom_dataset(root, phantom="linear", n_patients=2, shape=LINEAR_SHAPE, seed=0)
    return root
