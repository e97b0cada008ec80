"""The package as a course installs it: build the wheel, install it with ``[notebooks]``
into a fresh virtual environment outside the repository, copy the notebooks into an empty
folder with ``interp4d-lite notebooks DEST`` and run ``00_quickstart`` there with
papermill on the smoke parameters. It must finish, leave its artefacts under that folder and
write nothing into the repository.

PyTorch is installed from the local CPU wheel when pip can find one without an index (as
scripts/setup_env.sh does), and the rest with uv when it is installed (the dev extras have
it), so the whole test takes about a minute, not a multi-GB download."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interp4d_lite.tutorial import ARTIFACTS, NOTEBOOK_PARAMS, SMOKE_PARAMS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
TORCH_VERSION = os.environ.get("TORCH_VERSION", "2.13.0")
TORCH_CPU_INDEX = os.environ.get("TORCH_CPU_INDEX", "https://download.pytorch.org/whl/cpu")
SKIP_SCAN = {".git", ".venv", ".pytest_cache", "__pycache__"}


def _run(cmd, timeout=600, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    )
    return r


def _git(*args) -> str:
    return _run(["git", "-C", REPO, *args]).stdout


def _written_since(t0: float) -> list[str]:
    """Files under the repository modified after ``t0`` (tools' caches left out)."""
    out = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in SKIP_SCAN]
        out += [os.path.join(root, f) for f in files if os.lstat(os.path.join(root, f)).st_mtime > t0]
    return out


def _source_copy(dest: Path) -> Path:
    """The working tree as git sees it (tracked and untracked-but-not-ignored files, symlinks
    kept), so the build neither reads nor writes anything else in the repository."""
    names = _git("ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    for name in filter(None, names):
        src, dst = REPO / name, dest / name
        if not os.path.lexists(src):
            continue  # deleted in the working tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    return dest


def test_wheel_in_a_fresh_venv_runs_the_quickstart_outside_the_repository(tmp_path):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout of the repository")
    t0 = time.time() - 1
    status_before = _git("status", "--porcelain")
    started = time.perf_counter()

    # 1. the wheel, built from a copy of the source tree
    src = _source_copy(tmp_path / "src")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist", src]
    )
    (wheel,) = (tmp_path / "dist").glob("interp4d_lite-*.whl")
    names = _run([sys.executable, "-m", "zipfile", "-l", wheel]).stdout
    assert "interp4d_lite/notebooks/00_quickstart.ipynb" in names and "data_download/" not in names
    for shipped in (
        "weights/student_cardiac.pt",
        "weights/student_lung.pt",
        "data/real/pig_cine_lax/Info.cfg",
        "data/real/scd101/scd101_4d.nii.gz",
        "data/real/scd301/Info.cfg",
    ):
        assert f"interp4d_lite/{shipped}" in names, f"the wheel lacks {shipped}"
    assert wheel.stat().st_size <= 15 * 1024**2, f"the wheel is {wheel.stat().st_size / 1024**2:.1f} MB (> 15 MB)"

    # 2. a fresh virtual environment (no system site-packages) with the CPU torch and the wheel;
    #    uv (in the dev extras) installs in seconds, pip in minutes
    venv = tmp_path / "venv"
    py = venv / "bin" / "python"
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv:
        _run([uv, "venv", "-q", venv, "--python", getattr(sys, "_base_executable", sys.executable)])
        install = [uv, "pip", "install", "-q", "--python", py]
    else:
        _run([sys.executable, "-m", "venv", venv])
        install = [py, "-m", "pip", "install", "-q"]
    got = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--no-index",
            "-d",
            str(tmp_path / "torch"),
            f"torch=={TORCH_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    local = sorted((tmp_path / "torch").glob("torch-*.whl")) if got.returncode == 0 else []
    if local:
        _run([*install, local[0]])
    else:
        _run(
            [
                *install,
                f"torch=={TORCH_VERSION}",
                "--index-url",
                TORCH_CPU_INDEX,
                "--extra-index-url",
                "https://pypi.org/simple",
            ],
            timeout=1200,
        )
    _run([*install, f"{wheel}[notebooks]"])
    cfg = (venv / "pyvenv.cfg").read_text().replace(" ", "").lower()
    assert "include-system-site-packages=false" in cfg, "the fresh venv must not see the system's site-packages"
    installed = time.perf_counter() - started

    # 3. what a learner does: copy the notebooks into an empty folder and run one there
    course = tmp_path / "course"
    course.mkdir()
    env = {**os.environ, "JUPYTER_PREFER_ENV_PATH": "1", "PYTHONNOUSERSITE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("PYTHONPATH", None)
    _run([venv / "bin" / "interp4d-lite", "notebooks", course], cwd=course, env=env)
    assert (course / "00_quickstart.ipynb").exists() and (course / "06_real_data.ipynb").exists()
    where = _run([py, "-c", "import interp4d_lite.tutorial as t; print(t.NOTEBOOK_DIR)"], cwd=course, env=env)
    assert where.stdout.strip().startswith(str(venv)), "the tutorial runner must find the wheel's notebooks"
    params = "\n".join(f"{k}: {SMOKE_PARAMS[k]}" for k in NOTEBOOK_PARAMS["00_quickstart"])
    _run(
        [
            venv / "bin" / "papermill",
            "00_quickstart.ipynb",
            "00_quickstart.out.ipynb",
            "-y",
            params,
            "-k",
            "python3",
            "--cwd",
            course,
            "--no-progress-bar",
        ],
        cwd=course,
        env=env,
        timeout=900,
    )
    ran = time.perf_counter() - started - installed
    # a first interpolation with no checkpoint and no training: the pretrained student, with its self-check
    cine = _run(
        [py, "-c", "from interp4d_lite.data import real_cine_path; print(real_cine_path())"], cwd=course, env=env
    )
    assert cine.stdout.strip().startswith(str(venv)), "the real cine must come from the installed wheel"
    scan = next(Path(cine.stdout.strip()).glob("*_4d.nii.gz"))
    done = _run(
        [venv / "bin" / "interp4d-lite", "interpolate", "--input", scan, "--frames", "0", "4", "--n", "3",
         "--out", course / "B.nii.gz"],
        cwd=course, env=env, timeout=600,
    )  # fmt: skip
    assert "self-check on" in done.stdout and (course / "B.nii.gz").stat().st_size > 0

    # 4. it finished, its artefacts are under the course folder, and the repository is untouched
    out_dir = course / "runs" / "notebooks"
    missing = [pattern for pattern in ARTIFACTS["00_quickstart"] if not list(out_dir.glob(pattern))]
    assert not missing, f"00_quickstart did not write {missing} under {out_dir}"
    assert (course / "00_quickstart.out.ipynb").stat().st_size > (course / "00_quickstart.ipynb").stat().st_size
    assert _git("status", "--porcelain") == status_before
    assert _written_since(t0) == []
    size_kb = wheel.stat().st_size / 1024
    print(f"wheel {wheel.name} {size_kb:.0f} KiB; venv + install {installed:.0f} s; quickstart {ran:.0f} s")
