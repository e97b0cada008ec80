"""bench_real's leave-one-scan-out report: one MET/MISSED line per target, from given numbers."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_real", ROOT / "benchmarks" / "bench_real.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
