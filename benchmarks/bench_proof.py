"""The proof: does the distilled student learn the *motion*, not only the pictures?

For each seed, generates cardiac and lung phantoms (separate training and held-out test
patients), trains the privileged teacher, the linear-motion baseline (registration on
(I0, I1) pairs only), the student with distillation and the student without it (the
ablation), the two ablations of the paper's blocks (``student_no_film``: t as one more
decoder input channel instead of FiLM; ``student_no_fusion``: the finest decoder level's
fields and mask instead of the multi-scale fusion; both distilled like the student, same
seeds), the option ``student_field_fusion`` (a fusion of the scales' fields, weights from
normalised features and t), and evaluates every method on the held-out patients:

* ``linear_blend`` (no motion), ``linear_motion`` (trained registration, scaled by t),
  ``linear_motion_oracle`` (the TRUE endpoint fields scaled by t: the best any
  linear-motion method can do), ``student_nokd``, ``student``, ``student_no_film``,
  ``student_no_fusion``, ``student_field_fusion`` (an option: the scales' fields fused per
  voxel), ``teacher`` (privileged,
  with instance optimisation), ``teacher_net`` (its network alone) and ``true_fields``;
* metrics: PSNR (every intermediate frame, and at mid-cycle), ``epe_moving`` (field error
  where tissue moves, voxels), folding %.

**Anatomy shift**: the lung models are also tested on a second lung family
(``anatomy="b"``: another body and lung shape, diaphragm, tumour size and texture, a
different field of view, grid, voxel spacing and motion amplitude), reported as data set
``lung_shift``.

**A real scan**: the cardiac models are also scored on the real pig cine MRI shipped with the
package (ED -> ES, every phase between; data set ``real_cine``, PSNR only, there are no true
fields), and a line says for each student whether it is below the linear blend there.

Prints a table (mean +- sd over seeds), what each block of the paper buys (the student minus
its ablation, per data set: PSNR over all frames in dB, ``epe_moving`` in voxels; mean +- sd of
the per-seed differences) and one line per target saying met or missed.

    .venv/bin/python benchmarks/bench_proof.py                # 3 seeds (7 networks per data set and seed)
    .venv/bin/python benchmarks/bench_proof.py --seeds 1      # one seed
    .venv/bin/python benchmarks/bench_proof.py --quick        # a smoke run (1 seed, 3 + 1 patients, 20-30 steps)
    .venv/bin/python benchmarks/bench_proof.py --quick --student-steps 5   # sizes given explicitly win

Writes ``runs/proof/`` (git-ignored): per seed and data set the data, checkpoints and
histories; ``metrics.{json,csv}`` (every row), ``summary.{json,csv}``, ``timings.json``
and ``table.txt`` (the printed report).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path

# OpenMP threads that spin while waiting collapse when other processes share the cores
# (steps up to 10x slower); passive waiting keeps 2 threads useful. Must be set
# before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from interp4d_lite.data import TripletDataset, discover_patients, load_patient, load_real_cine  # noqa: E402
from interp4d_lite.data.phantoms import write_phantom_dataset  # noqa: E402
from interp4d_lite.errors import CheckpointError  # noqa: E402
from interp4d_lite.models.registration import teacher_settings  # noqa: E402
from interp4d_lite.train import (  # noqa: E402
    DistillConfig,
    evaluate_methods,
    fit,
    fusion_weights,
    get_recipe,
    load_finished,
    save_table,
    summarize,
    with_targets,
)
from interp4d_lite.train.cli import add_config_args, given_config_values  # noqa: E402

SHAPES = {"cardiac": (64, 64, 10), "lung": (32, 32, 32), "linear": (48, 48, 24)}
# The phantoms' anatomy scales with the field of view, so on a small grid the motion in voxels
# shrinks with it. Cardiac: 10 thick slices as a short-axis stack, realistic motion (amplitude 1:
# ES displacement of 2-4 voxels in plane at 64x64); lung: a larger amplitude keeps a few voxels.
AMPLITUDES = {"cardiac": 1.0, "lung": 1.5, "linear": 1.0}
# the second lung family, for the anatomy-shift test: other anatomy, grid, spacing, amplitude
SHIFT = dict(phantom="lung", anatomy="b", shape=(40, 32, 36), spacing=(3.0, 3.5, 2.5), amplitude=2.0)
ORDER = [
    "linear_blend",
    "linear_motion",
    "linear_motion_oracle",
    "student_nokd",
    "student",
    "student_no_film",
    "student_no_fusion",
    "student_field_fusion",
    "teacher_net",
    "teacher",
    "true_fields",
]
# the recipes trained per data set and seed (evaluated under their recipe's method name)
TRAINED = (
    "teacher",
    "baseline",
    "student",
    "student_nokd",
    "student_no_film",
    "student_no_fusion",
    "student_field_fusion",
)
# the students with a fusion over the scales, whose weights bench_proof reports
FUSED = ("student", "student_field_fusion")
# (block, the student with it, the student without it): the paper's two blocks, then the
# field-space fusion option against no fusion and against the paper's fusion
BLOCKS = (
    ("FiLM", "student", "student_no_film"),
    ("fusion", "student", "student_no_fusion"),
    ("field-space fusion", "student_field_fusion", "student_no_fusion"),
    ("field-space fusion over the paper's fusion", "student_field_fusion", "student"),
)
# run sizes: the benchmark's, and --quick's (a smoke run); a flag given explicitly wins over either
FULL = dict(seeds=3, train_patients=8, test_patients=3, teacher_steps=300, baseline_steps=100, student_steps=300)
QUICK = dict(seeds=1, train_patients=3, test_patients=1, teacher_steps=30, baseline_steps=20, student_steps=30)
COLUMNS = [
    ("psnr", "all", "PSNR all (dB)"),
    ("psnr", "mid", "PSNR mid (dB)"),
    ("epe_moving", "all", "EPE moving (vox)"),
    ("folding", "all", "fold %"),
]

#: the distillation knobs this script takes as flags (default: the config's)
DISTILL_FLAGS = ("distill_weight", "teacher_better", "distill_eps")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/proof", help="run folder")
    p.add_argument("--datasets", nargs="+", default=["cardiac", "lung"], choices=["cardiac", "lung", "linear"])
    sizes = {
        "seeds": "number of seeds (0, 1, ...): data, initialisation, order",
        "train_patients": "training patients per data set and seed",
        "test_patients": "held-out test patients per data set and seed",
        "teacher_steps": "teacher training steps",
        "baseline_steps": "baseline training steps",
        "student_steps": "training steps of every student",
    }
    for name, text in sizes.items():
        help_ = f"{text} (default {FULL[name]}; with --quick {QUICK[name]})"
        p.add_argument("--" + name.replace("_", "-"), type=int, default=None, help=help_)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=2)
    add_config_args(p, DistillConfig, "the distilled students' distillation", only=DISTILL_FLAGS, unset=True)
    p.add_argument("--no-shift", action="store_true", help="skip the anatomy-shift test set")
    p.add_argument("--no-real", action="store_true", help="skip the real cine (cardiac models on a real scan)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the checkpoints already in --out (a finished one is loaded, not retrained)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (OpenMP waits passively, see top)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run (1 seed, few steps, 3 train / 1 test patient)")
    p.add_argument("--progress", action="store_true", help="show tqdm progress bars")
    a = p.parse_args(argv)
    for name, value in (QUICK if a.quick else FULL).items():  # a size given on the command line wins
        if getattr(a, name) is None:
            setattr(a, name, value)
    return a


def load_dir(root, data_kind, shape):
    return [load_patient(d, data_kind=data_kind, volume_shape=shape) for d in discover_patients(root)]


def network_only(teacher):
    """The teacher's network without its instance optimisation."""
    net = copy.deepcopy(teacher)
    net.config.refine_steps = 0
    return net


def run_seed(a, seed: int, out: Path, stage, fusion_log: list) -> list[dict]:
    rows: list[dict] = []
    for data_kind in a.datasets:
        shape = SHAPES[data_kind]
        run = out / f"seed{seed}" / data_kind
        amp = AMPLITUDES[data_kind]
        common = dict(batch_size=a.batch_size, seed=seed, progress=a.progress, log_every=10, lr=a.lr)
        tag = f"seed {seed} {data_kind}"

        def gen():
            write_phantom_dataset(
                run / "data_train",
                phantom=data_kind,
                n_patients=a.train_patients,
                shape=shape,
                amplitude=amp,
                seed=1000 + seed,
            )
            write_phantom_dataset(
                run / "data_test",
                phantom=data_kind,
                n_patients=a.test_patients,
                shape=shape,
                amplitude=amp,
                seed=2000 + seed,
            )
            return load_dir(run / "data_train", data_kind, shape), load_dir(run / "data_test", data_kind, shape)

        train, test = stage(f"{tag}: phantoms ({a.train_patients} train + {a.test_patients} test, {shape})", gen)
        steps = {"teacher": a.teacher_steps, "baseline": a.baseline_steps}
        trained, targets = {}, None
        for name in TRAINED:  # rows of the recipe table
            recipe = get_recipe(name)
            cfg = recipe.config_cls(steps=steps.get(name, a.student_steps), **common)
            if isinstance(cfg, DistillConfig):  # student_nokd's recipe sets its distillation weight to 0
                cfg = cfg.replace(**given_config_values(a, DISTILL_FLAGS))
            if name == "teacher":  # the registration settings and steps of this kind of data, as pretrain.py's
                cfg = cfg.replace(**teacher_settings(data_kind, 5 if a.quick else None))
            done = load_finished(run / recipe.checkpoint, cfg, recipe) if a.resume else None
            if done is not None:
                trained[name] = stage(f"{tag}: {recipe.description} (finished checkpoint, loaded)", lambda: done)
                continue
            dataset = None
            if recipe.needs_teacher(cfg):  # the distilled students share one set of cached teacher targets
                if targets is None:
                    targets = stage(
                        f"{tag}: teacher targets, cached once for every distilled student",
                        lambda recipe=recipe, cfg=cfg: with_targets(
                            recipe, TripletDataset(train), cfg, teacher=trained["teacher"]
                        ),
                    )
                dataset = targets
            trained[name], _ = stage(
                f"{tag}: {recipe.description} ({cfg.steps} steps)",
                lambda recipe=recipe, cfg=cfg, dataset=dataset: fit(
                    recipe, train, cfg, teacher=trained.get("teacher"), out_dir=run, resume=a.resume, dataset=dataset
                ),
            )
        methods = {"linear_blend": "linear_blend", "linear_motion_oracle": "linear_motion_oracle"}
        for name, model in trained.items():
            recipe = get_recipe(name)
            methods[recipe.method] = recipe.as_method(model) if recipe.as_method else model
        methods["teacher_net"] = network_only(trained["teacher"])
        methods["true_fields"] = "true_fields"
        for name in FUSED:  # where each fusion puts its weight: moving vs static tissue, spread over the grid
            fusion_log.append(
                {"dataset": data_kind, "method": name, "seed": seed, **fusion_weights(trained[name], test[0])}
            )
        sets = [(data_kind, test)]
        if data_kind == "lung" and not a.no_shift:

            def gen_shift():
                d = run / "data_test_shift"
                write_phantom_dataset(d, n_patients=a.test_patients, seed=3000 + seed, **SHIFT)
                return load_dir(d, "lung", SHIFT["shape"])

            sets.append(
                ("lung_shift", stage(f"{tag}: anatomy-shift phantoms (lung family b, {SHIFT['shape']})", gen_shift))
            )
        if data_kind == "cardiac" and not a.no_real:  # the real pig cine shipped with the package, ED -> ES
            sets.append(("real_cine", [load_real_cine()]))
        for name, pts in sets:
            r = stage(
                f"{tag}: evaluation on {name} ({len(pts)} test patients)",
                lambda: evaluate_methods(
                    methods, pts, device="cpu", out_dir=run / f"eval_{name}", dataset=name, progress=a.progress
                ),
            )
            rows += [{**x, "seed": seed} for x in records(r)]
    return rows


def records(table) -> list[dict]:
    """Rows of an evaluation or summary table as dicts (a DataFrame or a list of dicts)."""
    return table.to_dict("records") if hasattr(table, "to_dict") else list(table)


def per_seed_means(rows: list[dict]) -> dict:
    """``{(dataset, method, scope, metric): [value per seed]}``."""
    out: dict = {}
    for seed in sorted({r["seed"] for r in rows}):
        for s in records(summarize([r for r in rows if r["seed"] == seed])):
            for m in ("psnr", "epe_moving", "folding", "epe", "ssim"):
                out.setdefault((s["dataset"], s["method"], s["scope"], m), []).append(s[m])
    return out


def fmt(vals, digits=2) -> str:
    vals = [v for v in vals if not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return "--"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{np.mean(vals):.{digits}f} +- {np.std(vals, ddof=1):.{digits}f}"


def table(stats: dict, datasets: list[str]) -> str:
    head = f"{'dataset':<11} {'method':<21}" + "".join(f" {c[2]:>17}" for c in COLUMNS)
    lines = [head, "-" * len(head)]
    for ds in datasets:
        for m in ORDER:
            if (ds, m, "all", "psnr") not in stats:
                continue
            cells = [
                fmt(stats.get((ds, m, scope, metric), []), 3 if metric != "psnr" else 2) for metric, scope, _ in COLUMNS
            ]
            lines.append(f"{ds:<11} {m:<21}" + "".join(f" {c:>17}" for c in cells))
        lines.append("")
    return "\n".join(lines)


def block_gains(stats: dict, datasets: list[str]) -> list[str]:
    """One line per data set and block of the paper: what the block buys, from the per-seed
    differences (student minus its ablation in PSNR over all frames; the ablation minus the
    student in ``epe_moving``: positive is better for the block in both)."""
    out = []
    for ds in datasets:
        for block, with_it, without in BLOCKS:
            psnr = _differences(stats, ds, with_it, without, "psnr")
            epe = _differences(stats, ds, without, with_it, "epe_moving")
            if psnr or epe:
                out.append(f"{ds}: {block} buys {fmt(psnr)} dB / {fmt(epe, 3)} voxels")
    return out


def fusion_lines(log: list[dict]) -> list[str]:
    """One line per data set and fused student: its scale weights moving / static / spread."""
    out = []
    for ds, m in dict.fromkeys((r["dataset"], r["method"]) for r in log):
        rs = [r for r in log if (r["dataset"], r["method"]) == (ds, m)]

        def mix(key, rs=rs):
            return "/".join(f"{v:.2f}" for v in np.mean([r[key] for r in rs], axis=0))

        sd = "/".join(f"{v:.3f}" for v in np.mean([r["spatial_sd"] for r in rs], axis=0))
        out.append(f"{ds} {m}: moving {mix('moving')}, static {mix('static')}, sd over the grid {sd}")
    return out


def _differences(stats: dict, ds: str, a: str, b: str, metric: str) -> list[float]:
    """``a - b`` of ``metric`` (all frames) per seed (seeds where both were measured)."""
    va, vb = stats.get((ds, a, "all", metric), []), stats.get((ds, b, "all", metric), [])
    return [x - y for x, y in zip(va, vb) if not (math.isnan(x) or math.isnan(y))]


def targets(stats: dict, datasets: list[str]) -> list[str]:
    """One line per target: met or missed, with the numbers (means over seeds)."""

    def g(ds, m, metric, scope="all"):
        v = [x for x in stats.get((ds, m, scope, metric), []) if not math.isnan(x)]
        return float(np.mean(v)) if v else float("nan")

    out = []

    def line(ok, text):
        out.append(f"{'MET   ' if ok else 'MISSED'} {text}")

    for ds in [d for d in ("cardiac", "lung") if d in datasets]:
        kd, nokd, orc = (
            g(ds, "student", "epe_moving"),
            g(ds, "student_nokd", "epe_moving"),
            g(ds, "linear_motion_oracle", "epe_moving"),
        )
        line(kd <= orc, f"{ds}: distilled student epe_moving {kd:.3f} <= oracle {orc:.3f}")
        line(
            kd <= 0.8 * nokd,
            f"{ds}: distilled student epe_moving {kd:.3f} <= 0.8 x no-distillation {nokd:.3f} "
            f"(= {0.8 * nokd:.3f}; ratio {kd / nokd:.2f})",
        )
        pk, po = g(ds, "student", "psnr", "mid"), g(ds, "linear_motion_oracle", "psnr", "mid")
        line(pk >= po + 1, f"{ds}: distilled student mid-cycle PSNR {pk:.2f} >= oracle {po:.2f} + 1 dB")
        pa, pn = g(ds, "student", "psnr"), g(ds, "student_nokd", "psnr")
        line(pa >= pn - 0.1, f"{ds}: distilled student PSNR {pa:.2f} >= no-distillation {pn:.2f} - 0.1 dB")
        fold = max(g(ds, "student", "folding"), g(ds, "student_nokd", "folding"))
        line(fold <= 0.1, f"{ds}: students' folding {fold:.4f} % <= 0.1 %")
        tn, lm, tr = (
            g(ds, "teacher_net", "epe_moving"),
            g(ds, "linear_motion", "epe_moving"),
            g(ds, "teacher", "epe_moving"),
        )
        line(
            tn < lm,
            f"{ds}: teacher network epe_moving {tn:.3f} < trained linear motion {lm:.3f} "
            f"(teacher with instance optimisation: {tr:.3f})",
        )
    if "real_cine" in datasets:
        pb = g("real_cine", "linear_blend", "psnr")
        for m in [get_recipe(n).method for n in TRAINED if get_recipe(n).model_kind == "student"]:
            pk = g("real_cine", m, "psnr")
            if not math.isnan(pk):
                line(pk >= pb, f"real_cine: {m} PSNR {pk:.2f} >= linear blend {pb:.2f} ({pk - pb:+.2f} dB)")
    if "lung_shift" in datasets:
        ds = "lung_shift"
        pk, pb, pn = g(ds, "student", "psnr"), g(ds, "linear_blend", "psnr"), g(ds, "student_nokd", "psnr")
        line(pk >= pb, f"{ds}: distilled student PSNR {pk:.2f} >= linear blend {pb:.2f}")
        line(pk >= pn - 0.5, f"{ds}: distilled student PSNR {pk:.2f} >= no-distillation {pn:.2f} - 0.5 dB")
        kd, nokd, orc = (
            g(ds, "student", "epe_moving"),
            g(ds, "student_nokd", "epe_moving"),
            g(ds, "linear_motion_oracle", "epe_moving"),
        )
        out.append(
            f"       {ds}: epe_moving distilled {kd:.3f}, no distillation {nokd:.3f}, oracle {orc:.3f}, "
            f"zero motion {g(ds, 'linear_blend', 'epe_moving'):.3f} (information)"
        )
    return out


def main(argv=None) -> int:
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: list[dict] = []
    t_start = time.perf_counter()

    def stage(name, fn):
        t0 = time.perf_counter()
        r = fn()
        dt = time.perf_counter() - t0
        timings.append({"stage": name, "seconds": round(dt, 1)})
        print(f"[{time.perf_counter() - t_start:7.1f}s] {name}: {dt:.1f}s", flush=True)
        return r

    rows: list[dict] = []
    fusion_log: list[dict] = []
    for seed in range(a.seeds):
        rows += run_seed(a, seed, out, stage, fusion_log)
        save_table(rows, out / "metrics")  # after every seed: a stopped run keeps what it measured
    save_table(summarize(rows), out / "summary")
    total = time.perf_counter() - t_start
    timings.append({"stage": "total", "seconds": round(total, 1)})
    (out / "timings.json").write_text(json.dumps(timings, indent=1))
    (out / "fusion_weights.json").write_text(json.dumps(fusion_log, indent=1))
    order = ("cardiac", "real_cine", "lung", "lung_shift", "linear")
    datasets = [d for d in order if d in {r["dataset"] for r in rows}]
    stats = per_seed_means(rows)
    text = "\n".join(
        [
            f"bench_proof: {a.seeds} seed(s), held-out phantom patients; mean +- sd over seeds "
            f"({a.train_patients} train / {a.test_patients} test patients per data set and seed)",
            "",
            table(stats, datasets),
            "EPE moving: field error where the true motion exceeds 1 voxel, mean of u_t0 and u_t1 (voxels).",
            "linear_motion_oracle: the true endpoint fields scaled by t. teacher: privileged (sees I_t), with",
            "instance optimisation; teacher_net: its network alone. lung_shift: lung models tested on lung family b.",
            "real_cine: the cardiac models on the real pig cine (ED -> ES, every phase between; no true fields).",
            "",
            "what each block of the paper buys (PSNR all frames: student minus its ablation; EPE moving: the",
            "ablation minus the student; mean +- sd over seeds): FiLM vs student_no_film (t as an input channel),",
            "fusion vs student_no_fusion (the finest decoder level alone); field-space fusion (an option,",
            "student_field_fusion) vs student_no_fusion and vs student",
            *block_gains(stats, datasets),
            "",
            "fusion weights per scale (coarse -> fine; first test patient, middle target; mean over seeds): where",
            "the tissue moves, where it is static, and their sd over the grid (0: the same mix at every voxel)",
            *fusion_lines(fusion_log),
            "",
            "targets (means over seeds):",
            *targets(stats, datasets),
            "",
            f"total time: {total:.0f} s ({total / 60:.1f} min); stage timings in timings.json",
        ]
    )
    print(text)
    (out / "table.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CheckpointError as e:  # a checkpoint made with other settings: one line, nothing overwritten
        sys.exit(f"error: {e}")
