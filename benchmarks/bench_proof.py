"""The proof: does the distilled student beat the linear-motion baseline?

Generates cardiac and lung phantoms (separate train and held-out test patients),
trains the privileged teacher, the linear-motion baseline (registration on (I0, I1)
pairs only), the student with distillation and the student without it (the ablation),
evaluates every method (plus linear blend and the true fields) on the held-out
patients and prints the table: PSNR, NCC, SSIM, NMSE, EPE (voxels), folding % per
method and data set, at mid-cycle t and averaged over every intermediate frame.

    .venv/bin/python benchmarks/bench_proof.py                 # default: <= 15 min on a quiet 2-core CPU
    .venv/bin/python benchmarks/bench_proof.py --quick         # a smoke run (~2 min)

Budgets (default; stage timings on this 2-core CPU, quiet, with the previous defaults
teacher 400 / baseline 200 steps: 952 s in total, over the 15-minute budget, hence these):
teacher 300 steps (trained once; at use time it refines its fields by 15 steps of instance
optimisation per sample, see models/teacher.py); linear-motion baseline 160 steps (its
full-resolution U-Net steps cost ~2-3x a student step, and the lung grid 40^3 is padded to
48^3 for it, so this is still 2-3x the wall-clock of the student without distillation);
each student 300 steps (distillation on and off alike; with distillation each step also
runs the refining teacher, which is most of that stage's time).

Writes ``runs/proof/`` (git-ignored): data, checkpoints, histories, metrics.{json,csv},
summary.{json,csv}, timings.json and table.txt.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# OpenMP threads that spin while waiting collapse when other processes share the cores
# (observed here: 10x slower steps); passive waiting keeps 2 threads useful. Must be set
# before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from interp4d_lite.data import discover_patients, load_patient
from interp4d_lite.data.phantoms import write_phantom_dataset
from interp4d_lite.models import LinearMotionBaseline
from interp4d_lite.train import (BaselineTrainConfig, DistillConfig, TeacherTrainConfig, distill_student,
                                 evaluate_methods, format_summary, save_table, summarize, train_baseline,
                                 train_teacher)

SHAPES = {"cardiac": (48, 48, 24), "lung": (40, 40, 40), "linear": (48, 48, 24)}
# The phantoms' anatomy scales with the field of view, so at 48 voxels instead of 128 the
# motion in voxels shrinks ~2.7x; a larger amplitude keeps it at a few voxels (cardiac
# max ~3.5 voxels at amplitude 2, i.e. what amplitude ~0.75 gives on the default grid).
AMPLITUDES = {"cardiac": 2.0, "lung": 1.5, "linear": 1.0}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/proof", help="run folder")
    p.add_argument("--datasets", nargs="+", default=["cardiac", "lung"], choices=["cardiac", "lung", "linear"])
    p.add_argument("--train-patients", type=int, default=6)
    p.add_argument("--test-patients", type=int, default=3)
    p.add_argument("--amplitude", type=float, default=None, help="phantom motion amplitude (default: cardiac 2, lung 1.5)")
    p.add_argument("--teacher-steps", type=int, default=300)
    p.add_argument("--baseline-steps", type=int, default=160)
    p.add_argument("--student-steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--distill-weight", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (OpenMP waits passively, see top)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run (few steps, 3 train / 1 test patient)")
    p.add_argument("--progress", action="store_true", help="show tqdm progress bars")
    return p.parse_args(argv)


def load_dir(root, kind, shape):
    return [load_patient(d, kind=kind, volume_shape=shape) for d in discover_patients(root)]


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.quick:
        a.train_patients, a.test_patients = 3, 1
        a.teacher_steps, a.baseline_steps, a.student_steps = 30, 20, 30
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: list[dict] = []
    all_rows: list[dict] = []
    t_start = time.perf_counter()

    def stage(name, fn):
        t0 = time.perf_counter()
        r = fn()
        dt = time.perf_counter() - t0
        timings.append({"stage": name, "seconds": round(dt, 1)})
        print(f"[{time.perf_counter() - t_start:7.1f}s] {name}: {dt:.1f}s", flush=True)
        return r

    for kind in a.datasets:
        shape = SHAPES.get(kind, (48, 48, 24))
        run = out / kind
        amp = a.amplitude if a.amplitude is not None else AMPLITUDES[kind]
        common = dict(batch_size=a.batch_size, seed=a.seed, progress=a.progress, log_every=10, lr=a.lr)

        def gen():
            write_phantom_dataset(run / "data_train", kind=kind, n_patients=a.train_patients, shape=shape,
                                  amplitude=amp, seed=1000 + a.seed)
            write_phantom_dataset(run / "data_test", kind=kind, n_patients=a.test_patients, shape=shape,
                                  amplitude=amp, seed=2000 + a.seed)
            return load_dir(run / "data_train", kind, shape), load_dir(run / "data_test", kind, shape)

        train, test = stage(f"{kind}: phantoms ({a.train_patients} train + {a.test_patients} test, {shape})", gen)
        teacher, _ = stage(f"{kind}: teacher ({a.teacher_steps} steps)", lambda: train_teacher(
            train, TeacherTrainConfig(steps=a.teacher_steps, **common), out_dir=run, resume=False))
        reg, _ = stage(f"{kind}: linear-motion baseline ({a.baseline_steps} steps)", lambda: train_baseline(
            train, BaselineTrainConfig(steps=a.baseline_steps, **common), out_dir=run, resume=False))
        student, _ = stage(f"{kind}: student, distillation on ({a.student_steps} steps)", lambda: distill_student(
            train, teacher, DistillConfig(steps=a.student_steps, distill_weight=a.distill_weight, **common),
            out_dir=run, resume=False))
        nokd, _ = stage(f"{kind}: student, distillation off ({a.student_steps} steps)", lambda: distill_student(
            train, None, DistillConfig(steps=a.student_steps, distill_weight=0.0, feature_weight=0.0, **common),
            out_dir=run, checkpoint_name="student_nokd.pt", resume=False))
        methods = {"linear_blend": "linear_blend", "linear_motion": LinearMotionBaseline(reg), "student_nokd": nokd,
                   "student": student, "teacher": teacher, "true_fields": "true_fields"}
        rows = stage(f"{kind}: evaluation ({len(test)} test patients)", lambda: evaluate_methods(
            methods, test, device="cpu", out_dir=run / "eval", dataset=kind, progress=a.progress))
        all_rows += rows

    summary = summarize(all_rows)
    save_table(all_rows, out / "metrics")
    save_table(summary, out / "summary")
    total = time.perf_counter() - t_start
    timings.append({"stage": "total", "seconds": round(total, 1)})
    (out / "timings.json").write_text(json.dumps(timings, indent=1))
    order = ["linear_blend", "linear_motion", "student_nokd", "student", "teacher", "true_fields"]
    summary.sort(key=lambda r: (r["dataset"], r["scope"], order.index(r["method"]) if r["method"] in order else 99))
    table = format_summary(summary, scopes=("mid", "all"))
    lines = [table, "", "EPE in voxels (mean of u_t0 and u_t1 against the true fields); fold% = voxels with det J <= 0.",
             "teacher is privileged (sees the true I_t); true_fields = ground-truth fields, blend m = 1 - t.", "",
             "stage timings (s):"] + [f"  {t['stage']}: {t['seconds']}" for t in timings]
    text = "\n".join(lines)
    print(text)
    (out / "table.txt").write_text(text + "\n")
    checks = verdict(summary)
    print("\n".join(checks))
    (out / "table.txt").open("a").write("\n".join(checks) + "\n")
    return 0


def verdict(summary) -> list[str]:
    """The expected orderings, checked per data set on the all-frames average."""
    out = []
    by = {(r["dataset"], r["method"]): r for r in summary if r["scope"] == "all"}
    for ds in sorted({r["dataset"] for r in summary}):
        g = lambda m, k: by.get((ds, m), {}).get(k, float("nan"))
        checks = [
            ("student PSNR > linear-motion PSNR", g("student", "psnr") > g("linear_motion", "psnr")),
            ("linear-motion PSNR > linear-blend PSNR", g("linear_motion", "psnr") > g("linear_blend", "psnr")),
            ("distillation on > off (PSNR)", g("student", "psnr") > g("student_nokd", "psnr")),
            ("teacher PSNR >= student PSNR", g("teacher", "psnr") >= g("student", "psnr")),
            ("student EPE < linear-motion EPE", g("student", "epe") < g("linear_motion", "epe")),
        ]
        out += [f"{ds}: {'PASS' if ok else 'FAIL'}  {name}" for name, ok in checks]
    return out


if __name__ == "__main__":
    sys.exit(main())
