"""bench_models --compare: the training step's variants on the device asked for, and what it prints."""

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("benchmarks/bench_models.py")


def _compare(bench, capsys, device):
    argv = ["--compare", "--cases", "tutorial", "--recipes", "student", "--rounds", "1", "--steps", "1"]
    bench.main([*argv, "--device", device, "--threads", "1"])
    return capsys.readouterr().out


def test_compare_runs_every_variant_on_the_device_asked_for(bench, capsys):
    out = _compare(bench, capsys, "cpu")
    assert "device cpu (cpus " in out
    rates = dict(re.findall(r"^\s+(before|after|channels-first)\s+([\d.]+) steps/s wall", out, re.M))
    assert set(rates) == {"before", "after", "channels-first"} and all(float(v) > 0 for v in rates.values())
    assert re.search(r"^(MET|MISSED): after / before steps per second \(CPU time\)", out, re.M)
    # every variant starts from the same weights on the same batches: the first losses agree
    for n in re.findall(r"first \d+ losses within ([\d.e+-]+) of before's", out):
        assert float(n) < 1e-3


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compare_on_a_gpu_judges_by_wall_clock(bench, capsys):
    out = _compare(bench, capsys, "cuda")
    assert "device cuda (" in out and "(wall clock)" in out


def test_gpu_session_script_parses():
    """scripts/gpu_session.sh (the GPU run behind the model card's GPU student) is valid bash."""
    import subprocess

    assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / "gpu_session.sh")]).returncode == 0
