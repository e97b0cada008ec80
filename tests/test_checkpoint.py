"""Checkpoints: atomic writes, weights_only loading, RNG state, clear errors."""

import random

import numpy as np
import pytest
import torch

torch.set_num_threads(1)  # tiny volumes: threads only add contention on a shared CPU

from interp4d_lite.errors import CheckpointError
from interp4d_lite.models import Student, StudentConfig, Teacher, TeacherConfig
from interp4d_lite.train import load_model
from interp4d_lite.train.checkpoint import FORMAT, get_rng_state, load_checkpoint, save_checkpoint, set_rng_state

TINY = StudentConfig(encoder_channels=(4, 8, 8, 8), decoder_channels=(8, 8, 4), fused_channels=4, time_hidden=8)


def _save_student(path, **kw):
    model = Student(TINY)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.rand(1, 1, 8, 8, 8), torch.rand(1, 1, 8, 8, 8), torch.tensor([0.5]))["image"].mean().backward()
    opt.step()
    save_checkpoint(
        path,
        model_kind="student",
        model=model,
        model_config=TINY.to_dict(),
        step=7,
        optimizer=opt,
        train_config={"steps": 7, "crop_shape": (8, 8, 8)},
        split={"train": ["a"], "test": ("b",)},
        history=[{"step": 7, "loss": 0.5}],
        **kw,
    )
    return model


def test_roundtrip_weights_only(tmp_path):
    path = tmp_path / "s.pt"
    model = _save_student(path)
    raw = torch.load(path, weights_only=True)  # plain types and tensors only
    assert raw["format"] == FORMAT and raw["model_kind"] == "student" and raw["step"] == 7
    assert raw["split"] == {"train": ["a"], "test": ["b"]}
    assert isinstance(raw["rng"]["torch"], torch.Tensor) and raw["optimizer"]["state"]
    loaded, info = load_model(path, device="cpu", model_kind="student")
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    assert info["history"] == [{"step": 7, "loss": 0.5}] and info["model_config"]["fused_channels"] == 4
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_rng_state_roundtrip():
    state = get_rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "s.pt"
    _save_student(path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        _save_student(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.pt"]


def test_wrong_kind_names_file(tmp_path):
    path = tmp_path / "teacher.pt"
    cfg = TeacherConfig(encoder_channels=(4, 8, 8, 8), decoder_channels=(8, 8, 4), fused_channels=4)
    save_checkpoint(path, model_kind="teacher", model=Teacher(cfg), model_config=cfg.to_dict())
    with pytest.raises(CheckpointError, match=r"teacher\.pt.*'teacher'.*expected 'student'"):
        load_model(path, model_kind="student")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "missing", "not_ours"])
def test_corrupt_or_missing_names_file(tmp_path, damage):
    path = tmp_path / "s.pt"
    _save_student(path)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a checkpoint" * 50)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "missing":
        path.unlink()
    else:
        torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match=r"s\.pt"):
        load_checkpoint(path)


@pytest.mark.parametrize("content", ["text", "garbage", "truncated", "empty", "pickled_object", "zip"])
def test_not_a_checkpoint_says_so_without_unsafe_advice(tmp_path, content):
    """Any file that is not one of ours: one line naming the file and saying so; nothing
    about ``weights_only=False`` (that would execute arbitrary code from the file)."""
    import io
    import zipfile

    path = tmp_path / "model.bin"
    if content == "text":
        path.write_text("hello, this is a README\n")
    elif content == "garbage":
        path.write_bytes(b"\x00\x01 random bytes" * 40)
    elif content == "truncated":
        _save_student(path)
        path.write_bytes(path.read_bytes()[:300])
    elif content == "empty":
        path.write_bytes(b"")
    elif content == "pickled_object":
        torch.save({"model": io.BytesIO(b"x")}, path)  # a Python object: needs the unsafe unpickler
    else:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("readme.txt", "not torch")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: not an interp4d_lite checkpoint (") and msg.endswith(")")
    assert "weights_only" not in msg and "\n" not in msg
    if content == "empty":
        assert "empty" in msg
    if content == "pickled_object":
        assert "Python objects" in msg


def test_atomic_write_gives_new_files_the_usual_mode_and_keeps_an_existing_mode(tmp_path):
    """Files written through the temp-file-and-replace helper are not left private (0600):
    a new file gets 0666 less the umask, a replaced one keeps its mode."""
    import os
    import stat

    from interp4d_lite.io_utils import atomic_write_text

    mask = os.umask(0o022)
    try:
        new = atomic_write_text(tmp_path / "a.json", "{}")
        assert stat.S_IMODE(new.stat().st_mode) == 0o644
        new.chmod(0o640)
        atomic_write_text(new, "[]")
        assert stat.S_IMODE(new.stat().st_mode) == 0o640 and new.read_text() == "[]"
    finally:
        os.umask(mask)
