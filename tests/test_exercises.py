"""The self-checking exercises (``interp4d_lite.exercises``) and the notebooks' exercise,
solution and "build it" cells, without papermill (fast).

* each check passes the notebook's own solution (the ``solution`` cell, executed after its
  ``exercise`` cell), and reports the ``exercise`` stub as not attempted;
* each check fails a typical wrong answer with the hint that names the mistake;
* every notebook has at least two exercises, each with a collapsed solution that runs its
  check with ``strict=True``; notebooks 01-04 build their central blocks and check them
  against the package: the functions of those cells are executed here against the package too.
"""

from __future__ import annotations

import ast
import re

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from interp4d_lite import exercises as ex
from interp4d_lite.models import warp
from interp4d_lite.tutorial import EXERCISES, NOTEBOOK_DIR, NOTEBOOKS, REGISTRY


def _nb(name):
    return nbformat.read(str(NOTEBOOK_DIR / f"{name}.ipynb"), as_version=4)


def _tags(cell) -> set:
    return set(cell.get("metadata", {}).get("tags", []))


def _exercise_pairs(name):
    """[(exercise cell, solution cell)] in notebook order: each solution is the next code cell."""
    cells = _nb(name).cells
    pairs = []
    for i, c in enumerate(cells):
        if c.cell_type == "code" and "exercise" in _tags(c):
            nxt = next(d for d in cells[i + 1 :] if d.cell_type == "code")
            pairs.append((c, nxt))
    return pairs


def _check_called(source: str) -> str:
    names = re.findall(r"ex\.(check_\w+)\(", source)
    assert len(set(names)) == 1, f"expected one ex.check_* call, found {names}"
    return names[0]


ALL_PAIRS = [(name, i) for name in NOTEBOOKS for i in range(len(_exercise_pairs(name)))]


# --------------------------------------------------------------------------- notebook structure
def test_the_exercises_come_from_the_one_notebook_table():
    assert ex.EXERCISES is EXERCISES and list(EXERCISES) == NOTEBOOKS == [nb.name for nb in REGISTRY]
    named = [name for names in EXERCISES.values() for name in names]
    assert len(named) == len(set(named)) == 16, named
    assert set(named) <= set(ex.all_checks()), set(named) - set(ex.all_checks())


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_notebook_has_two_exercises_with_collapsed_solutions(name):
    pairs = _exercise_pairs(name)
    assert len(pairs) >= 2, f"{name}: needs at least two cells tagged 'exercise'"
    used = []
    for exercise_cell, solution_cell in pairs:
        check = _check_called(exercise_cell.source)
        used.append(check)
        assert "NotImplementedError" in exercise_cell.source, (
            f"{name}: the exercise stub should raise NotImplementedError"
        )
        assert "solution" in _tags(solution_cell), (
            f"{name}: the cell after the {check} exercise must be tagged 'solution'"
        )
        assert solution_cell.metadata.get("jupyter", {}).get("source_hidden") is True, (
            f"{name}: {check} solution not collapsed"
        )
        assert _check_called(solution_cell.source) == check
        assert "strict=True" in solution_cell.source, (
            f"{name}: the {check} solution should run its check with strict=True"
        )
    assert used == ex.EXERCISES[name], f"{name}: exercises {used} differ from interp4d_lite.exercises.EXERCISES"


@pytest.mark.parametrize("name,index", ALL_PAIRS, ids=[f"{n}-{i}" for n, i in ALL_PAIRS])
def test_notebook_stub_is_not_attempted_and_solution_passes(name, index, capsys):
    exercise_cell, solution_cell = _exercise_pairs(name)[index]
    check = _check_called(exercise_cell.source)
    ns = {"np": np, "torch": torch}
    exec(compile(exercise_cell.source, f"{name}:exercise", "exec"), ns)
    out = capsys.readouterr().out
    assert f"NOT ATTEMPTED YET {check}" in out, out
    exec(compile(solution_cell.source, f"{name}:solution", "exec"), ns)  # strict=True: raises unless it passes
    out = capsys.readouterr().out
    assert f"PASS {check}" in out, out


# --------------------------------------------------------------------------- wrong answers -> hints
def _st(n, ed, es):
    i = np.arange(n, dtype=float)
    t = (i - ed) / (es - ed)
    t[(i < ed) | (i > es)] = np.nan
    return t


def _fold(u, identity=True, scale=100.0):
    J = np.stack([np.stack(np.gradient(u[c]), axis=-1) for c in range(3)], axis=-2)
    return scale * float((np.linalg.det(J + (np.eye(3) if identity else 0)) <= 0).mean())


def _grid_warp(flip=True, sign=1.0, align=True, padding="border"):
    def fn(image, u):
        X, Y, Z = image.shape[2:]
        grid = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=u.dtype) for n in (X, Y, Z)], indexing="ij"))
        size = torch.tensor([X, Y, Z], dtype=u.dtype).view(1, 3, 1, 1, 1)
        pos = grid + sign * u
        pos = 2 * pos / (size - 1) - 1
        pos = pos.permute(0, 2, 3, 4, 1)
        if flip:
            pos = pos.flip(-1)
        return F.grid_sample(image, pos, mode="bilinear", padding_mode=padding, align_corners=align)

    return fn


def _sq(u):
    return torch.sqrt(u * u + 1e-6)


WRONG = [
    ("check_to_batch", lambda v: torch.as_tensor(v, dtype=torch.float32)[..., None, None], "go first"),
    ("check_to_batch", lambda v: torch.as_tensor(v)[None, None], "dtype"),
    ("check_to_batch", lambda v: np.asarray(v, np.float32)[None, None], "torch tensor"),
    ("check_to_batch", lambda v: torch.as_tensor(v.T.copy(), dtype=torch.float32)[None, None], "wrong order"),
    (
        "check_linear_blend",
        lambda a, b, t: t.view(-1, 1, 1, 1, 1) * a + (1 - t.view(-1, 1, 1, 1, 1)) * b,
        "t convention is reversed",
    ),
    ("check_linear_blend", lambda a, b, t: (1 - t) * a + t * b, "reshape"),
    ("check_linear_blend", lambda a, b, t: 0.5 * (a + b), "ignores t"),
    ("check_minmax_per_frame", lambda f: (f - f.min()) / (f.max() - f.min()), "each frame separately"),
    (
        "check_minmax_per_frame",
        lambda f: (f - f.min((1, 2, 3), keepdims=True)) / np.ptp(f, (1, 2, 3), keepdims=True),
        "constant frame",
    ),
    ("check_hu_to_unit", lambda h: (h + 1400) / 1600, "Clip"),
    ("check_hu_to_unit", lambda h: (h - h.min()) / (h.max() - h.min()), "fixed window"),
    ("check_warp_mm", lambda i, u, s: warp(i, u), "millimetres"),
    ("check_warp_mm", lambda i, u, s: warp(i, u / torch.tensor(s[::-1]).view(1, 3, 1, 1, 1)), "Axis order"),
    ("check_warp_mm", lambda i, u, s: warp(i, -u / torch.tensor(s).view(1, 3, 1, 1, 1)), "sign"),
    ("check_warp", _grid_warp(flip=False), "Axis order"),
    ("check_warp", _grid_warp(sign=-1.0), "sign"),
    ("check_warp", _grid_warp(align=False), "align_corners"),
    ("check_warp", _grid_warp(padding="zeros"), "border"),
    ("check_translation_fields", lambda d, t: (t * d, -(1 - t) * d), "Direction"),
    ("check_translation_fields", lambda d, t: (-(1 - t) * d, t * d), "t convention is reversed"),
    ("check_translation_fields", lambda d, t: (-t * d,), "return 2 values"),
    ("check_charbonnier", lambda p, q, eps=1e-3: (p - q).abs().mean(), "Keep ε"),
    ("check_charbonnier", lambda p, q, eps=1e-3: torch.sqrt((p - q) ** 2 + eps**2).sum(), "mean"),
    ("check_charbonnier", lambda p, q, eps=1e-3: torch.sqrt((p - q) ** 2 + eps**2), "one number"),
    ("check_gradient_smoothness", lambda u: (u[:, :, 1:] - u[:, :, :-1]).pow(2).mean(), "three spatial axes"),
    ("check_gradient_smoothness", lambda u: (u[:, 1:] - u[:, :-1]).pow(2).mean(), "channel axis"),
    (
        "check_gradient_smoothness",
        lambda u: (
            (
                (u[:, :, 1:] - u[:, :, :-1]).abs().mean()
                + (u[:, :, :, 1:] - u[:, :, :, :-1]).abs().mean()
                + (u[..., 1:] - u[..., :-1]).abs().mean()
            )
            / 3
        ),
        "Square",
    ),
    (
        "check_upsample_field",
        lambda u, s: F.interpolate(u, size=s, mode="trilinear", align_corners=False),
        "voxels of the grid",
    ),
    (
        "check_upsample_field",
        lambda u, s: (
            F.interpolate(u, size=s, mode="trilinear", align_corners=False)
            * torch.tensor([3.0, 2.0, 2.0]).view(1, 3, 1, 1, 1)
        ),
        "Axis order",
    ),
    ("check_field_distillation", lambda s, t, w: _sq(s - t).mean(), "Weight each voxel"),
    ("check_field_distillation", lambda s, t, w: (_sq(s - t) * w).sum() / w.expand_as(s).sum(), "detach"),
    ("check_field_distillation", lambda s, t, w: (_sq(s - t.detach()) * w).sum() / s.numel(), "sum of the weights"),
    (
        "check_fusion_weights",
        lambda f, lg: sum(lg[:, i : i + 1] * x for i, x in enumerate(f)),
        "Missing softmax normalisation",
    ),
    (
        "check_fusion_weights",
        lambda f, lg: sum(torch.softmax(lg, dim=-1)[:, i : i + 1] * x for i, x in enumerate(f)),
        "scale axis",
    ),
    ("check_endpoint_error", lambda a, b: (a - b).abs().mean(), "Euclidean length"),
    ("check_endpoint_error", lambda a, b: (a - b).norm(dim=-1).mean(), "channel axis"),
    ("check_endpoint_error", lambda a, b: (a - b).norm(dim=1), "one number"),
    ("check_folding_percent", lambda u: _fold(u, scale=1.0), "percentage"),
    ("check_folding_percent", lambda u: _fold(u, identity=False), "identity"),
    ("check_window_level", lambda w, lv: (lv - w, lv + w), "full width"),
    ("check_window_level", lambda w, lv: (lv + w / 2, lv - w / 2), "lower bound first"),
    ("check_nearest_frame", lambda times, t: int(np.argmin(np.abs(times - t))), "nanargmin"),
    ("check_nearest_frame", lambda times, t: round(t * (len(times) - 1)), "times array"),
    ("check_nearest_frame", lambda times, t: float(times[int(np.nanargmin(np.abs(times - t)))]), "index"),
    ("check_surrogate_times", lambda n, ed, es: _st(n, ed, es), "counts frames from 1"),
    ("check_surrogate_times", lambda n, ed, es: 1 - _st(n, ed - 1, es - 1), "t convention is reversed"),
    ("check_surrogate_times", lambda n, ed, es: (np.arange(n) - (ed - 1)) / (es - ed), "NaN"),
    (
        "check_lung_phase_times",
        lambda p, i: np.where(np.asarray(p) > i[1], np.nan, np.asarray(p) / 100.0),
        "relative to the two input phases",
    ),
    ("check_lung_phase_times", lambda p, i: (np.asarray(p, float) - i[0]) / (i[1] - i[0]), "NaN"),
]


@pytest.mark.parametrize("check,wrong,hint", WRONG, ids=[f"{c}-{h}" for c, _, h in WRONG])
def test_typical_mistake_fails_with_its_hint(check, wrong, hint, capsys):
    with np.errstate(all="ignore"):
        res = getattr(ex, check)(wrong)
    out = capsys.readouterr().out
    assert isinstance(res, ex.CheckResult) and not res and res.attempted
    assert out.startswith(f"NOT YET {check}:"), out
    assert hint.lower() in res.hint.lower(), f"{check}: expected a hint about {hint!r}, got: {res.hint}"
    with pytest.raises(ex.ExerciseError, match="NOT YET"), np.errstate(all="ignore"):
        getattr(ex, check)(wrong, strict=True, quiet=True)


def test_every_check_has_typical_mistakes_tested():
    tested = {c for c, _, _ in WRONG}
    assert set(ex.all_checks()) == tested, set(ex.all_checks()) ^ tested


@pytest.mark.parametrize("check", sorted(ex.all_checks()))
def test_stub_is_not_attempted_and_strict_raises(check, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError

    res = ex.all_checks()[check](stub)
    assert not res and not res.attempted and "NOT ATTEMPTED YET" in capsys.readouterr().out
    assert not ex.all_checks()[check](lambda *a, **k: None, quiet=True).attempted
    with pytest.raises(ex.ExerciseError, match="NOT ATTEMPTED"):
        ex.all_checks()[check](stub, strict=True, quiet=True)


def test_a_crashing_answer_is_reported_not_raised(capsys):
    res = ex.check_endpoint_error(lambda a, b: a @ b)
    assert not res and res.attempted and "your function raised RuntimeError" in res.hint
    assert "NOT YET check_endpoint_error" in capsys.readouterr().out


def test_inputs_are_copies():
    """An answer that modifies its inputs in place still gets the same test inputs afterwards."""

    def in_place(I0, I1, t):
        t = t.view(-1, 1, 1, 1, 1)
        out = (1 - t) * I0 + t * I1
        I0.zero_()
        return out

    assert ex.check_linear_blend(in_place, quiet=True)


# --------------------------------------------------------------------------- the build-it cells
def _build_functions(name) -> dict:
    """Execute the imports and function definitions of a notebook's build-it cells (nothing else)."""
    ns: dict = {"np": np, "torch": torch}
    for cell in _nb(name).cells:
        if cell.cell_type == "code" and "build-it" in _tags(cell):
            tree = ast.parse(cell.source)
            keep = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef))]
            exec(compile(ast.Module(body=keep, type_ignores=[]), f"{name}:build-it", "exec"), ns)
    return ns


@pytest.mark.parametrize(
    "name,functions",
    [
        ("01_data_loading", ["my_warp", "my_psnr"]),
        ("02_teacher_training", ["my_blend", "my_linear_motion", "my_teacher_better"]),
        ("03_distillation", ["my_time_embedding", "my_film_parameters", "my_film", "my_weighted_sum", "my_fusion"]),
        ("04_timestamp_sweeps", ["my_linear_motion_oracle", "my_epe_moving"]),
    ],
)
def test_build_it_cells_define_their_blocks(name, functions):
    cells = [c for c in _nb(name).cells if c.cell_type == "code" and "build-it" in _tags(c)]
    assert cells, f"{name}: no build-it cells"
    for c in cells:
        assert "assert" in c.source, f"{name}: build-it cell {c.id} checks nothing against the package"
    ns = _build_functions(name)
    missing = [f for f in functions if f not in ns]
    assert not missing, f"{name}: build-it cells do not define {missing}"
    for f in functions:  # "at most ~15 lines" of code each
        src = [c.source for c in cells if f"def {f}(" in c.source][0]
        node = [n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == f][0]
        assert node.end_lineno - node.lineno + 1 <= 15, f"{name}: {f} is {node.end_lineno - node.lineno + 1} lines"


def test_build_it_01_warp_and_psnr_equal_the_package():
    from interp4d_lite.metrics import psnr

    ns = _build_functions("01_data_loading")
    assert ex.check_warp(ns["my_warp"], quiet=True)
    a, b = np.random.default_rng(0).random((2, 9, 8, 7))
    assert abs(ns["my_psnr"](a, b) - psnr(a, b)) < 1e-4


def test_build_it_02_blend_linear_motion_teacher_better_equal_the_package():
    from interp4d_lite.losses import teacher_better_weights
    from interp4d_lite.models import linear_motion_fields, linear_motion_interpolate

    ns = _build_functions("02_teacher_training")
    g = torch.Generator().manual_seed(0)
    I0, I1 = torch.rand(1, 1, 8, 7, 6, generator=g), torch.rand(1, 1, 8, 7, 6, generator=g)
    u01, u10 = 2 * torch.randn(1, 3, 8, 7, 6, generator=g), 2 * torch.randn(1, 3, 8, 7, 6, generator=g)
    t = torch.tensor([0.2, 0.7])
    for a, b in zip(ns["my_linear_motion"](u01, u10, t), linear_motion_fields(u01, u10, t)):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    ref = linear_motion_interpolate(I0, I1, u01, u10, t)
    torch.testing.assert_close(
        ns["my_blend"](I0, I1, ref["u_t0"], ref["u_t1"], ref["mask"]), ref["image"], atol=1e-6, rtol=0
    )
    s, tch, tgt = (torch.rand(2, 1, 8, 7, 6, generator=g) for _ in range(3))
    w = ns["my_teacher_better"](s, tch, tgt)
    torch.testing.assert_close(w, teacher_better_weights(s, tch, tgt), atol=0, rtol=0)
    assert 0 < float(w.mean()) < 1


def test_build_it_03_film_and_fusion_equal_the_package():
    from interp4d_lite.models import Student, StudentConfig
    from interp4d_lite.models.temporal import film

    ns = _build_functions("03_distillation")
    torch.manual_seed(0)
    student = Student(StudentConfig()).eval()
    for p in student.temporal.heads.parameters():  # larger than the near-identity init: a real test
        torch.nn.init.normal_(p, std=0.5)
    t = torch.linspace(0, 1, 7)
    torch.testing.assert_close(ns["my_time_embedding"](t), student.temporal.embed(t), atol=1e-6, rtol=0)
    with torch.no_grad():
        for (g1, b1), (g2, b2) in zip(ns["my_film_parameters"](t, student.temporal), student.temporal(t)):
            torch.testing.assert_close(g1, g2, atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(b1, b2, atol=1e-6, rtol=1e-5)
        h, gamma, beta = torch.randn(7, 4, 3, 3, 2), torch.randn(7, 4, 1, 1, 1), torch.randn(7, 4, 1, 1, 1)
        torch.testing.assert_close(ns["my_film"](h, gamma, beta), film(h, gamma, beta))
        out = student(torch.rand(1, 1, 16, 16, 8), torch.rand(1, 1, 16, 16, 8), t[:2])
        for a, b in zip(ns["my_fusion"](out["features"], student.fusion), student.fusion(out["features"])):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert ex.check_fusion_weights(ns["my_weighted_sum"], quiet=True)


def test_build_it_04_linear_motion_oracle_equals_the_package():
    from interp4d_lite.models import linear_motion_interpolate

    ns = _build_functions("04_timestamp_sweeps")
    g = torch.Generator().manual_seed(1)
    I0, I1 = torch.rand(1, 1, 8, 7, 6, generator=g), torch.rand(1, 1, 8, 7, 6, generator=g)
    u01, u10 = 2 * torch.randn(1, 3, 8, 7, 6, generator=g), 2 * torch.randn(1, 3, 8, 7, 6, generator=g)
    t = torch.tensor([0.25, 0.5, 0.75])
    torch.testing.assert_close(
        ns["my_linear_motion_oracle"](I0, I1, u01, u10, t),
        linear_motion_interpolate(I0, I1, u01, u10, t)["image"],
        atol=1e-6,
        rtol=0,
    )


def test_build_it_04_epe_moving_equals_the_package():
    from interp4d_lite.metrics import epe_moving

    ns = _build_functions("04_timestamp_sweeps")
    g = torch.Generator().manual_seed(2)
    true0, true1 = 1.5 * torch.randn(2, 3, 8, 7, 6, generator=g), 1.5 * torch.randn(2, 3, 8, 7, 6, generator=g)
    p0, p1 = torch.randn(2, 3, 8, 7, 6, generator=g), torch.randn(2, 3, 8, 7, 6, generator=g)
    for thr in (1.0, 3.0):
        assert abs(ns["my_epe_moving"](p0, p1, true0, true1, thr) - epe_moving(p0, p1, true0, true1, thr)) < 1e-5
