"""Real cines as training data: triplets of any two phases over short and long spans, wrapping
around the beat, t the middle frame's fractional position; mixed with phantoms at a set share;
the teacher and the distilled student train on them with no true fields."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

from conftest import CARDIAC_SHAPE  # noqa: E402
from test_train import TINY  # noqa: E402

from interp4d_lite.data import (  # noqa: E402
    CineTriplets,
    MixedTriplets,
    Patient4D,
    TripletDataset,
    Window,
    cine_windows,
    discover_patients,
    load_patient,
    load_real_cines,
)
from interp4d_lite.errors import DataError  # noqa: E402


def _cine(n=10, shape=(6, 5, 4), es=4, pid="cine"):
    """A cine whose frame k is filled with the value k (so an item's frames name themselves)."""
    frames = np.stack([np.full(shape, k, np.float32) for k in range(n)])
    times = np.full(n, np.nan, np.float32)
    times[: es + 1] = np.arange(es + 1) / es
    return Patient4D(pid, "cardiac", frames, np.eye(4), (1.0, 1.0, 1.0), 0, es, times, None)


def test_cine_windows_wrap_around_the_cycle():
    ws = cine_windows(10, [2, 3])
    assert len(ws) == 20 and ws[0] == Window(0, 2, 10) and ws[-1] == Window(9, 3, 10)
    assert Window(8, 3, 10).frames == [8, 9, 0, 1] and Window(8, 3, 10).triplets()[1] == (8, 0, 1, 2 / 3)
    assert len(cine_windows(10, [3], cyclic=False)) == 7  # 0->3 .. 6->9, none past the last frame
    with pytest.raises(ValueError, match="a gap must be 2..9"):
        cine_windows(10, [10])


def test_every_span_and_wrap_with_t_the_middle_frames_position():
    ds = CineTriplets([_cine()])
    # gaps 2..5 (T // 2) from each of the 10 start frames: (g - 1) middle frames each
    assert len(ds) == 10 * (1 + 2 + 3 + 4)
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        a, k, b = (int(item[key][0, 0, 0, 0]) for key in ("I0", "It", "I1"))
        gap, off = (b - a) % 10, (k - a) % 10
        assert 2 <= gap <= 5 and 0 < off < gap and item["frame"] == k
        assert float(item["t"]) == pytest.approx(off / gap)
        assert "u_t0" not in item and item["I0"].shape == (1, 6, 5, 4)
        seen.add((a, k, b))
    assert (8, 9, 1) in seen and (9, 1, 2) in seen  # windows across the last phase back to the first
    assert (0, 2, 4) in seen  # ED -> ES at its middle
    assert len(seen) == len(ds)  # no triplet twice
    assert len(CineTriplets([_cine()], cyclic=False)) == sum((10 - g) * (g - 1) for g in range(2, 6))


def test_per_patient_keeps_ed_to_es_first_then_every_span():
    ds = CineTriplets([_cine(n=20, es=8), _cine(n=20, es=6, pid="b")], per_patient=12, seed=3)
    assert len(ds) == 24
    first = [(a, k, b, t) for n, a, k, b, t in ds.triplets if n == 0]
    assert first[:7] == [(0, k, 8, k / 8) for k in range(1, 8)]  # the ED -> ES window, in order
    assert {(b - a) % 20 for a, _, b, _ in first[7:]} == {2, 3, 4, 5, 6}  # one of each span in turn
    again = CineTriplets([_cine(n=20, es=8), _cine(n=20, es=6, pid="b")], per_patient=12, seed=3)
    assert again.triplets == ds.triplets  # deterministic by seed
    assert CineTriplets([_cine(n=20, es=8)], gaps=[2], per_patient=0).triplets[0][1:4] == (0, 1, 8)
    with pytest.raises(DataError, match="different volume shapes"):
        CineTriplets([_cine(), _cine(shape=(6, 5, 3))])


def test_mixed_triplets_draw_the_parts_at_their_shares_and_keep_common_keys(cardiac_root):
    phantoms = TripletDataset([load_patient(p, volume_shape=CARDIAC_SHAPE) for p in discover_patients(cardiac_root)])
    real = CineTriplets(load_real_cines(["scd101", "scd301"], volume_shape=CARDIAC_SHAPE), per_patient=5)
    assert len(real) == 10 and "u_t0" in phantoms[0]
    mix = MixedTriplets([real, phantoms], [0.25, 0.75])
    parts = [mix.part_of(k) for k in range(len(mix))]
    assert parts.count(0) / len(mix) == pytest.approx(0.25, abs=0.01)
    assert {mix[k]["patient"] for k in range(len(mix)) if parts[k] == 1} == {"patient001", "patient002", "patient003"}
    assert len({mix[k]["patient"] + str(mix[k]["frame"]) for k in range(len(mix)) if parts[k] == 0}) == 10
    assert set(mix[len(mix) - 1]) == {"I0", "I1", "It", "t", "patient", "frame", "spacing"}  # true fields dropped
    only_real = MixedTriplets([real, phantoms], [1, 0])
    assert len(only_real) == 10 and {only_real.part_of(k) for k in range(10)} == {0}
    with pytest.raises(ValueError, match="shares"):
        MixedTriplets([real, phantoms], [0, 0])


@pytest.mark.slow
def test_teacher_and_distilled_student_train_on_real_cines_mixed_with_phantoms(cardiac_root, tmp_path):
    """fit() on a mixture: the teacher's registration targets and the student's teacher targets
    are cached once per item of each part (not per repeat), from the real middle frames."""
    from interp4d_lite.models import TeacherConfig
    from interp4d_lite.train import DistillConfig, TeacherTrainConfig, fit

    phantoms = TripletDataset([load_patient(p, volume_shape=CARDIAC_SHAPE) for p in discover_patients(cardiac_root)])
    real = CineTriplets(load_real_cines(["pig_cine_lax", "scd201"], volume_shape=CARDIAC_SHAPE), per_patient=3)
    mix = MixedTriplets([real, phantoms], [0.5, 0.5])
    tiny_t = TeacherConfig(encoder_channels=(4, 8, 8, 8), decoder_channels=(8, 4, 4), fused_channels=4).to_dict()
    common = dict(steps=2, batch_size=2, progress=False, log_every=1)
    teacher, hist = fit("teacher", config=TeacherTrainConfig(target_steps=2, model=tiny_t, **common), dataset=mix)
    assert "target" in hist[-1] and np.isfinite(hist[-1]["loss"])
    cfg = DistillConfig(model=TINY.to_dict(), distill_refined=False, **common)
    student, hist = fit("student", config=cfg, dataset=mix, teacher=teacher, out_dir=tmp_path)
    assert hist[-1]["distill"] > 0 and (tmp_path / "student.pt").is_file()
    from interp4d_lite.train import with_targets

    cached = with_targets("student", mix, cfg, teacher=teacher)
    assert isinstance(cached, MixedTriplets) and cached.has_targets
    assert [len(p.targets) for p in cached.parts] == [len(real), len(phantoms)]  # once per item
    assert "target_u_t0" in cached[0] and cached[0]["target_u_t0"].shape == (3, *CARDIAC_SHAPE)
