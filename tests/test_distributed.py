"""DDP: two CPU processes under gloo via torchrun train, the loss falls and both ranks
end with bit-identical weights (hashes gathered from every rank after training)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # tiny volumes: threads only add contention on a shared CPU

from interp4d_lite.data.phantoms import write_phantom_dataset
from interp4d_lite.train.distributed import DistEnv, init_distributed, weight_hash

TORCHRUN = Path(sys.executable).with_name("torchrun")


def test_single_process_env_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    env = init_distributed("cpu")
    assert env == DistEnv(device=torch.device("cpu")) and not env.distributed and env.is_main


def test_weight_hash_detects_change():
    m = torch.nn.Linear(3, 2)
    h = weight_hash(m)
    assert h == weight_hash(m)
    with torch.no_grad():
        m.weight[0, 0] += 1e-7
    assert h != weight_hash(m)


@pytest.mark.slow
@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not in the venv")
def test_two_process_gloo_teacher(tmp_path):
    data = tmp_path / "data"
    write_phantom_dataset(data, phantom="cardiac", n_patients=4, shape=(16, 16, 8), n_frames=8, seed=3)
    out = tmp_path / "run"
    cmd = [
        str(TORCHRUN),
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "interp4d_lite.train",
        "train-teacher",
        "--data",
        str(data),
        "--volume-shape",
        "16",
        "16",
        "8",
        "--steps",
        "12",
        "--batch-size",
        "2",
        "--lr",
        "3e-3",
        "--log-every",
        "1",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(out),
        "--model-config",
        json.dumps({"encoder_channels": [4, 8, 8, 8], "decoder_channels": [8, 8, 4], "fused_channels": 4}),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    rep = json.loads((out / "teacher_replicas.json").read_text())
    assert rep["world_size"] == 2 and rep["backend"] == "gloo"
    assert len(set(rep["weight_hashes"])) == 1  # both ranks hold the same weights
    hist = json.loads((out / "teacher_history.json").read_text())
    assert [h["step"] for h in hist] == list(range(1, 13))
    first = sum(h["loss"] for h in hist[:3]) / 3
    last = sum(h["loss"] for h in hist[-3:]) / 3
    assert last < first, (first, last)
    ck = torch.load(out / "teacher.pt", weights_only=True)
    assert ck["step"] == 12 and ck["model_kind"] == "teacher"
    assert sorted(p.name for p in out.iterdir()) == ["teacher.pt", "teacher_history.json", "teacher_replicas.json"]
