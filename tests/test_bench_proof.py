"""bench_proof's report: what each block buys and the real-cine lines, from per-seed numbers."""

import pytest


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("benchmarks/bench_proof.py")


def _stats(values: dict) -> dict:
    """``{(dataset, method): (psnr per seed, epe per seed)}`` -> bench_proof's stats dict."""
    out = {}
    for (ds, m), (psnr, epe) in values.items():
        out[(ds, m, "all", "psnr")] = psnr
        out[(ds, m, "all", "epe_moving")] = epe
    return out


def test_block_gains_are_the_per_seed_differences_with_the_sign_of_a_help(bench):
    nan = float("nan")
    stats = _stats(
        {
            ("cardiac", "student"): ([30.0, 31.0], [0.50, 0.40]),
            ("cardiac", "student_no_film"): ([29.0, 30.5], [0.60, 0.45]),
            ("cardiac", "student_no_fusion"): ([30.2, 31.2], [0.50, 0.40]),
            ("cardiac", "student_field_fusion"): ([30.4, 31.4], [0.45, 0.35]),
            ("real_cine", "student"): ([37.5], [nan]),
            ("real_cine", "student_no_film"): ([37.0], [nan]),
        }
    )
    lines = bench.block_gains(stats, ["cardiac", "real_cine"])
    assert "cardiac: FiLM buys 0.75 +- 0.35 dB / 0.075 +- 0.035 voxels" in lines
    assert "cardiac: fusion buys -0.20 +- 0.00 dB / 0.000 +- 0.000 voxels" in lines  # a loss shows negative
    assert "cardiac: field-space fusion buys 0.20 +- 0.00 dB / 0.050 +- 0.000 voxels" in lines
    assert "real_cine: FiLM buys 0.50 dB / -- voxels" in lines  # no true fields on a real scan
    assert not any(line.startswith("real_cine: fusion") for line in lines)  # not measured: no line


def test_every_student_below_the_blend_on_the_real_cine_is_reported(bench):
    nan = float("nan")
    stats = _stats(
        {
            ("real_cine", "linear_blend"): ([38.2, 38.2], [nan, nan]),
            ("real_cine", "student"): ([37.6, 37.8], [nan, nan]),
            ("real_cine", "student_field_fusion"): ([38.4, 38.6], [nan, nan]),
        }
    )
    lines = bench.targets(stats, ["real_cine"])
    assert "MISSED real_cine: student PSNR 37.70 >= linear blend 38.20 (-0.50 dB)" in lines
    assert "MET    real_cine: student_field_fusion PSNR 38.50 >= linear blend 38.20 (+0.30 dB)" in lines
    assert len(lines) == 2
