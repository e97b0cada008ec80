"""bench_real's leave-one-scan-out report: one MET/MISSED line per target, from given numbers."""

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("benchmarks/bench_real.py")


def _summary(values: dict) -> pd.DataFrame:
    """``{(scan, method): (PSNR all, PSNR mid)}`` -> a summary frame like ``summarize``'s."""
    rows = []
    for (scan, method), (psnr_all, psnr_mid) in values.items():
        for scope, v in (("all", psnr_all), ("mid", psnr_mid)):
            rows.append({"dataset": f"loso:{scan}", "method": method, "scope": scope, "n": 1, "psnr": v})
    rows.append({"dataset": "real_cine", "method": "student", "scope": "all", "n": 1, "psnr": 30.0})  # not loso
    return pd.DataFrame(rows)


def test_each_held_out_scan_gets_its_target_lines(bench):
    s = _summary(
        {
            ("scd101", "linear_blend"): (40.0, 38.0),
            ("scd101", "registered_linear_motion"): (40.3, 38.5),
            ("scd101", "student_nokd"): (40.2, 38.4),
            ("scd101", "student"): (40.6, 39.0),
            ("scd101", "student_adapted"): (40.9, 39.2),
            ("pig_cine_lax", "linear_blend"): (38.0, 36.0),
            ("pig_cine_lax", "registered_linear_motion"): (38.6, 36.9),
            ("pig_cine_lax", "student_nokd"): (38.5, 36.5),
            ("pig_cine_lax", "student"): (38.4, 36.4),
            ("pig_cine_lax", "student_adapted"): (39.0, 37.0),
        }
    )
    lines = bench.loso_lines(s, minutes=5)
    assert "MET    scd101: distilled student, no adaptation, 40.60 >= blend 40.00 + 0.5 dB" in lines
    assert "MET    scd101: distilled student, no adaptation, 40.60 >= registered linear motion 40.30" in lines
    assert "MET    scd101: adapted student mid-cycle 39.20 >= blend 38.00 + 1.0 dB (--minutes 5 <= 5)" in lines
    assert "MISSED pig_cine_lax: distilled student, no adaptation, 38.40 >= blend 38.00 + 0.5 dB" in lines
    assert "MISSED pig_cine_lax: distilled student, no adaptation, 38.40 >= registered linear motion 38.60" in lines
    assert "MET    pig_cine_lax: adapted student mid-cycle 37.00 >= blend 36.00 + 1.0 dB (--minutes 5 <= 5)" in lines
    # (40.6 + 38.4) / 2 = 39.50 against (40.2 + 38.5) / 2 = 39.35
    assert "MET    distilled 39.50 > no distillation 39.35 dB on average over 2 held-out scans (+0.15 dB)" in lines
    assert len(lines) == 7  # three per scan and the average; nothing for the other sets


def test_an_adaptation_over_five_minutes_misses_and_a_missing_method_is_not_met(bench):
    s = _summary(
        {
            ("scd201", "linear_blend"): (40.0, 38.0),
            ("scd201", "student"): (41.0, 39.0),
            ("scd201", "student_nokd"): (41.0, 39.0),
            ("scd201", "student_adapted"): (42.0, 40.0),
        }
    )
    lines = bench.loso_lines(s, minutes=6)
    assert "MISSED scd201: adapted student mid-cycle 40.00 >= blend 38.00 + 1.0 dB (--minutes 6 <= 5)" in lines
    assert "MISSED scd201: distilled student, no adaptation, 41.00 >= registered linear motion nan" in lines
    assert "MISSED distilled 41.00 > no distillation 41.00 dB on average over 1 held-out scans (+0.00 dB)" in lines
    assert bench.loso_lines(_summary({}), minutes=5) == []


def test_course_keeps_its_ends_and_linear_motion_is_its_zero(bench):
    t = np.linspace(0, 1, 11)
    np.testing.assert_allclose(bench.course(t, 0.0, 0.0), t)
    early = bench.course(t, 0.8, 0.0)
    assert early[0] == 0 and early[-1] == 1 and (early[1:-1] > t[1:-1]).all()  # b > 0: the motion comes early


def _scores_peaking_at(scales, s_true) -> dict:
    """Scores like ``course_scores``'s whose best factor per frame is ``s_true`` (40 dB there)."""
    s_true = np.asarray(s_true, dtype=float)
    table = 40.0 - 10.0 * (np.asarray(scales)[None, :] - s_true[:, None]) ** 2
    return {"t": np.array([0.25, 0.5, 0.75]), "frames": np.array([3, 5, 7]), "psnr": table}


def test_a_course_learnt_from_other_scans_is_scored_on_the_held_out_one(bench):
    t = np.array([0.25, 0.5, 0.75])
    early = bench.course(t, 0.6, 0.0)
    courses = {f"loso:{k}": (k, _scores_peaking_at(bench.COURSE_SCALES, early)) for k in ("a", "b")}
    courses["loso:c"] = ("c", _scores_peaking_at(bench.COURSE_SCALES, t))  # this one moves linearly
    b, c = bench.fit_course([courses["loso:a"][1], courses["loso:b"][1]])
    np.testing.assert_allclose(bench.course(t, b, c), early, atol=0.02)
    rows, notes = bench.course_rows(courses)
    df = pd.DataFrame(rows)
    mean = df.groupby(["dataset", "method"])["psnr"].mean()
    assert mean[("loso:a", "scaled_motion_ceiling")] == pytest.approx(40.0, abs=0.01)  # the best factor tried
    linear_a = bench.course_at(courses["loso:a"][1], t).mean()  # s = t on the early scan
    # a's course learnt from b (early) and c (linear): between linear motion and a's own best
    assert linear_a < mean[("loso:a", "registered_learned_course")] < 40.0
    # c's learnt from a and b, both early, where c is linear: no better than linear motion on a
    assert mean[("loso:c", "registered_learned_course")] == pytest.approx(linear_a, abs=0.01)
    assert len(notes) == 3 and notes[0].startswith("course loso:a: best factor per t 0.25:")
    rows, notes = bench.course_rows({"loso:a": courses["loso:a"]})  # one scan: nothing to learn from
    assert set(pd.DataFrame(rows)["method"]) == {"scaled_motion_ceiling"} and "learnt" not in notes[0]


def test_course_scores_find_how_far_a_blob_has_moved(bench):
    """A blob moving 4 voxels ED -> ES, 80 % of the way at t = 0.5: the best factor there is about 0.8."""
    from types import SimpleNamespace

    x = np.arange(32, dtype=np.float32)[:, None, None]
    y = np.arange(32, dtype=np.float32)[None, :, None]
    z = np.arange(8, dtype=np.float32)[None, None, :]

    def blob(cx):
        return 0.1 + 0.8 * np.exp(-((x - cx) ** 2 + (y - 16) ** 2) / 18.0 - (z - 4) ** 2 / 8.0)

    frames = np.stack([blob(12.0), blob(15.2), blob(16.0)]).astype(np.float32)
    p = SimpleNamespace(frames=frames, i0=0, i1=2, times=np.array([0.0, 0.5, 1.0]), target_indices=[1])
    sc = bench.course_scores(p, steps=60)
    assert sc["psnr"].shape == (1, len(bench.COURSE_SCALES))
    best = bench.COURSE_SCALES[int(sc["psnr"][0].argmax())]
    assert 0.7 <= best <= 0.9, best


def test_the_other_half_of_the_beat_runs_from_es_round_to_ed(bench):
    from types import SimpleNamespace

    frames = np.arange(10, dtype=np.float32)[:, None, None, None] * np.ones((10, 2, 2, 2), np.float32)
    p = SimpleNamespace(frames=frames, i0=1, i1=4, patient_id="x")  # ED = frame 1, ES = frame 4
    h = bench.other_half(p)
    assert h.frames[:, 0, 0, 0].tolist() == [4, 5, 6, 7, 8, 9, 0, 1]  # ES, ..., the last frame, wrap, ..., ED
    assert (h.i0, h.i1, h.target_indices) == (0, 7, [1, 2, 3, 4, 5, 6])
    np.testing.assert_allclose(h.times, np.arange(8) / 7)
    sc = {"t": np.array([0.25, 0.5]), "psnr": np.array([[1.0, 3.0, 2.0], [3.0, 2.0, 1.0]])}
    assert bench.course_pairs(sc, scales=np.array([0.0, 0.5, 1.0])) == "0.25:0.50 0.50:0.00"


@pytest.mark.slow
def test_a_quick_leave_one_out_run_prints_every_row_and_line(bench, tmp_path):
    """``--sets loso --quick`` end to end on two cines (3 training steps per model): the table has
    every method of each fold, the course lines and the target lines."""
    assert bench.main(["--sets", "loso", "--quick", "--no-ants", "--threads", "2", "--scans", "scd301", "scd201",
                       "--out", str(tmp_path)]) == 0  # fmt: skip
    table = (tmp_path / "table.txt").read_text()
    for scan in ("scd301", "scd201"):
        for method in ("linear_blend", "registered_linear_motion", "registered_learned_course", "privileged_ceiling",
                       "scaled_motion_ceiling", "student_nokd", "student", "student_adapted"):  # fmt: skip
            assert f"loso:{scan}" in table and any(
                line.startswith(f"loso:{scan}") and f" {method} " in line for line in table.splitlines()
            ), (scan, method)
        assert f"course loso:{scan}: best factor per t" in table and "learnt from the others" in table
        assert f"course loso:{scan}, ES -> ED" in table
        assert f"{scan}: distilled student, no adaptation" in table
    assert "on average over 2 held-out scans" in table
    student = tmp_path / "loso" / "without_scd301" / "student.pt"
    assert student.is_file()
    # the folds are reused only with the settings they were made with: another is refused, naming it
    from interp4d_lite.errors import CheckpointError
    from interp4d_lite.models.checkpoint import load_checkpoint

    stored = load_checkpoint(student)["train_config"]
    assert stored["teacher_better"] is False and stored["distill_weight"] == 2.0  # the config's defaults
    with pytest.raises(CheckpointError, match=r"student\.pt: made with distill_weight=2\.0 \(asked: 0\.5\)"):
        bench.main(["--sets", "loso", "--quick", "--no-ants", "--threads", "2", "--scans", "scd301",
                    "--distill-weight", "0.5", "--out", str(tmp_path)])  # fmt: skip
    assert stored["flip_axes"] == []  # and the students' augmentation is a setting too
    with pytest.raises(CheckpointError, match=r"student\.pt: made with flip_axes=\[\] \(asked: \[0, 1\]\)"):
        bench.main(["--sets", "loso", "--quick", "--no-ants", "--threads", "2", "--scans", "scd301",
                    "--flip-axes", "0", "1", "--out", str(tmp_path)])  # fmt: skip
