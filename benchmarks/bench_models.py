"""Benchmark the models on the CPU they run on, with torch's default thread count.

    python benchmarks/bench_models.py [--repeats 7] [--skip-memory] [--threads N]

Prints, against its targets (``TARGETS``):
* parameter counts of every model;
* student inference at 128x128x32, batch 1, one t (no_grad, after warm-up; min/median);
* a sweep of 10 timestamps from one ``encode`` (encode + one batched ``decode``);
* one training step at 64x64x32, batch 1: teacher and student forward, image losses
  (Charbonnier + local NCC) for both, field distillation (RIFE weights) and feature
  distillation, smoothness, backward, one Adam step over both networks;
* peak memory of that training step at 128x128x32 (max RSS of a fresh subprocess,
  absolute and above the RSS after building the models).
Timings are wall-clock and inflated when other processes share the CPU: the load
average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from interp4d_lite.losses import (
    charbonnier,
    feature_distillation_loss,
    field_distillation_loss,
    gradient_smoothness,
    local_ncc_loss,
    teacher_better_weights,
)
from interp4d_lite.models import RegistrationNet, Student, Teacher, count_parameters

TARGETS = {"single_t_s": 0.3, "sweep_ratio": 5.0, "extra_t_fraction": 0.45, "train_step_s": 1.0, "peak_gb": 3.0}


CPU_TIMES = {}  # name -> min process CPU time (all threads), a contention-robust cross-check


def timeit(fn, repeats: int, warmup: int = 2, name: str = "") -> tuple[float, float]:
    """(min, median) wall-clock seconds over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    CPU_TIMES[name] = min(cpu)
    return min(times), statistics.median(times)


def volumes(shape, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand((1, 1, *shape), generator=g) for _ in range(n)]


def make_train_step(shape):
    """Build teacher, student and optimizer; return a closure doing one training step."""
    torch.manual_seed(0)
    student, teacher = Student(), Teacher()
    opt = torch.optim.Adam(list(student.parameters()) + list(teacher.parameters()), lr=1e-4)
    I0, I1, It = volumes(shape)
    t = torch.tensor([0.4])

    def step():
        out_t = teacher(I0, I1, It, 0.5)
        out_s = student(I0, I1, t)
        loss_t = charbonnier(out_t["image"], It) + local_ncc_loss(out_t["image"], It)
        loss_t = loss_t + 0.01 * (gradient_smoothness(out_t["u_t0"]) + gradient_smoothness(out_t["u_t1"]))
        w = teacher_better_weights(out_s["image"], out_t["image"], It)
        loss_s = charbonnier(out_s["image"], It) + local_ncc_loss(out_s["image"], It)
        loss_s = loss_s + 0.01 * (gradient_smoothness(out_s["u_t0"]) + gradient_smoothness(out_s["u_t1"]))
        loss_s = loss_s + field_distillation_loss(
            (out_s["u_t0"], out_s["u_t1"]), (out_t["u_t0"], out_t["u_t1"]), weights=w
        )
        loss_s = loss_s + feature_distillation_loss(out_s["features"], out_t["features"])
        opt.zero_grad(set_to_none=True)
        (loss_t + loss_s).backward()
        opt.step()
        return float(loss_s.detach())

    return step


def memory_child(shape):
    """Run in a fresh process: RSS after building, then peak RSS over two training steps."""
    step = make_train_step(shape)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    step()
    step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"base_kib": base, "peak_kib": peak}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's default)")
    ap.add_argument("--_memory-child", dest="memory_child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        return memory_child(tuple(args.memory_child))

    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
        f"load average before {os.getloadavg()[0]:.2f}"
    )
    torch.manual_seed(0)
    student, teacher, reg = Student().eval(), Teacher().eval(), RegistrationNet().eval()
    for name, m in [("Student", student), ("Teacher", teacher), ("RegistrationNet", reg)]:
        print(f"params {name:16s} {count_parameters(m):>9,d}")

    shape = (128, 128, 32)
    I0, I1 = volumes(shape, 2)
    t1, t10 = torch.tensor([0.5]), torch.linspace(0.05, 0.95, 10)
    with torch.no_grad():
        single = timeit(lambda: student(I0, I1, t1), args.repeats, name="single")
        enc = timeit(lambda: student.encode(I0, I1), args.repeats, name="encode")
        feats = student.encode(I0, I1)
        dec1 = timeit(lambda: student.decode(feats, t1), args.repeats, name="decode1")
        sweep = timeit(lambda: student.decode(student.encode(I0, I1), t10), max(3, args.repeats // 2), name="sweep")
        regt = timeit(lambda: reg(I0, I1), 3, warmup=1, name="registration")
    extra = (sweep[0] - single[0]) / 9 / single[0]
    print(
        f"\nstudent inference 128x128x32 B=1, one t : min {single[0]:.3f} s  median {single[1]:.3f} s"
        f"   (target <= {TARGETS['single_t_s']} s)"
    )
    print(f"   of which encode                      : min {enc[0]:.3f} s, decode(1 t) min {dec1[0]:.3f} s")
    print(
        f"sweep of 10 t from one encode           : min {sweep[0]:.3f} s  median {sweep[1]:.3f} s"
        f"   = {sweep[0] / single[0]:.2f} x single (target <= {TARGETS['sweep_ratio']}),"
        f" each extra t {100 * extra:.0f}% of single (target <= {100 * TARGETS['extra_t_fraction']:.0f}%)"
    )
    print(f"registration net (both directions)      : min {regt[0]:.3f} s")

    step = make_train_step((64, 64, 32))
    train = timeit(step, max(3, args.repeats // 2), warmup=2, name="train")
    print(
        f"training step 64x64x32 B=1 (teacher+student, distillation, Adam): min {train[0]:.3f} s"
        f"  median {train[1]:.3f} s   (target <= {TARGETS['train_step_s']} s)"
    )

    if not args.skip_memory:
        res = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--_memory-child", "128", "128", "32"],
            capture_output=True,
            text=True,
            check=True,
        )
        mem = json.loads(res.stdout.strip().splitlines()[-1])
        peak_gb, delta_gb = mem["peak_kib"] / 2**20, (mem["peak_kib"] - mem["base_kib"]) / 2**20
        print(
            f"training step 128x128x32 peak RSS       : {peak_gb:.2f} GiB (+{delta_gb:.2f} GiB over the built models)"
            f"   (target <= {TARGETS['peak_gb']} GB)"
        )
    print("process CPU time (all threads, min): " + ", ".join(f"{k} {v:.3f} s" for k, v in CPU_TIMES.items()))
    print(f"\nload average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
