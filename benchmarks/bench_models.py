"""Benchmark the models on the CPU they run on, with torch's default thread count.

    python benchmarks/bench_models.py [--repeats 7] [--skip-memory] [--threads N]
    python benchmarks/bench_models.py --compare [--threads 1] [--rounds 4] [--bf16] [--compile] [--device cuda]

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

``--compare`` times the package's own training step (``train.loops``: batch with augmentation,
``training_step``, backward, clipping, Adam) at the tutorial's shapes (cardiac phantom
48x48x16, batch 2, whole volumes: notebooks 02/03) and at ``scripts/pretrain.py``'s (cardiac
128x128x10 cropped to 64x64x10, lung 40^3 cropped to 32^3, batch 2), for the teacher (its
registration targets cached) and the distilled student (the teacher's targets cached), in
variants run in alternation, a few steps each per round, so that a change of load hits them
alike: ``before`` (the kernels the step used to run: MONAI's ``Warp`` and local NCC, MONAI's
crop/flip once per volume, channels-first), ``after`` (the defaults), ``channels-first`` (the
defaults without ``channels_last``: what that layout buys), ``bf16`` (``precision="bf16"``, CPU
autocast, which turns channels-last off; with ``--bf16``) and ``compile`` (the model under
``torch.compile``, inductor's C++ on CPU; with ``--compile``: minutes of compiling first; it is
no training option, it did not pay on CPU). Each variant
starts from the same weights on the same batches, so the first steps' losses are compared too
(the cached targets are fixed random fields: their values do not change the cost). Steps per
second from the best round, by wall clock and by process CPU time (the latter barely moves when
other processes share the CPU). With ``--device cuda`` the steps run on the GPU, where every
step ends in a synchronising read of its loss: steps per second by wall clock (process CPU time
is then the host's, not the step's), and ``channels-first`` is the same as ``after`` (channels-last
is a CPU layout in the package).
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

TARGETS = {
    "single_t_s": 0.3,
    "sweep_ratio": 5.0,
    "extra_t_fraction": 0.45,
    "train_step_s": 1.0,
    "peak_gb": 3.0,
    "step_speedup": 1.3,  # --compare: after / before steps per second (CPU time), every shape and recipe
}


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


# ---------------------------------------------------------------------- --compare
#: name -> (phantom, volume shape, frames, crop): the tutorial's data and scripts/pretrain.py's
COMPARE_CASES = {
    "tutorial": ("cardiac", (48, 48, 16), 20, None),
    "pretrain_cardiac": ("cardiac", (128, 128, 10), None, (64, 64, 10)),
    "pretrain_lung": ("lung", (40, 40, 40), None, (32, 32, 32)),
}


def _per_volume_augment(sample, rng, crop_shape=None, flip_axes=(0, 1, 2)):
    """The augmentation as it used to run: MONAI's crop and flips once per volume (each volume
    with a copy of the same generator, so the same crop and flips)."""
    import copy

    from interp4d_lite.train.sampling import FIELD_KEYS, IMAGE_KEYS, augment_sample

    out = dict(sample)
    for k in IMAGE_KEYS + FIELD_KEYS:
        if k in sample:
            out[k] = augment_sample({k: sample[k]}, copy.deepcopy(rng), crop_shape, flip_axes)[k]
    return out


def _before_kernels(model):
    """A context in which ``model`` steps as before: MONAI's Warp and local NCC, per-volume
    augmentation."""
    import contextlib
    import functools
    from unittest import mock

    from interp4d_lite import losses
    from interp4d_lite.models.warp import Warper
    from interp4d_lite.train import loops

    @contextlib.contextmanager
    def ctx():
        warpers = [m for m in model.modules() if isinstance(m, Warper)]
        for m in warpers:
            m.reference = True
        try:
            with (
                mock.patch.object(losses, "local_ncc_loss", functools.partial(losses.local_ncc_loss, reference=True)),
                mock.patch.object(loops, "augment_sample", _per_volume_augment),
            ):
                yield
        finally:
            for m in warpers:
                m.reference = False

    return ctx


def make_loop_step(case: str, recipe_name: str, root, variant: str, device: str = "cpu"):
    """``(step, losses)``: one step of ``train.loops`` for ``recipe_name`` at ``case``'s shapes in
    ``variant``; ``step()`` returns the loss."""
    import contextlib

    from interp4d_lite.data import TripletDataset, discover_patients, load_patient
    from interp4d_lite.models import build_model
    from interp4d_lite.train import loops
    from interp4d_lite.train.datasets import CachedTargets
    from interp4d_lite.train.distributed import DistEnv
    from interp4d_lite.train.recipes import get_recipe, training_step
    from interp4d_lite.train.sampling import StepSampler

    _, shape, _, crop = COMPARE_CASES[case]
    patients = [load_patient(p, volume_shape=shape) for p in discover_patients(root)]
    triplets = TripletDataset(patients)
    g = torch.Generator().manual_seed(0)
    dataset = CachedTargets(triplets, 0.5 * torch.randn((len(triplets), 6, *shape), generator=g))
    recipe = get_recipe(recipe_name)
    knobs = {
        "before": dict(channels_last=False),
        "after": {},
        "channels-first": dict(channels_last=False),
        "bf16": dict(precision="bf16"),
        "compile": {},
    }[variant]
    cfg = recipe.config_cls(steps=10_000, crop_shape=crop, progress=False, device=device, **knobs)
    torch.manual_seed(0)
    model = build_model(recipe.model_kind, cfg.model)
    teacher = build_model("teacher", {}) if recipe.needs_teacher(cfg) else None  # cached: never run
    env = DistEnv(device=torch.device(device))
    model.to(env.device)
    model.to(memory_format=loops._memory_format(cfg, env.device))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    amp_ctx, scaler = loops._autocast(cfg, env.device)
    run = loops._Run(model, opt, torch.optim.lr_scheduler.LambdaLR(opt, loops._cosine(cfg)), scaler, amp_ctx)
    net = torch.compile(model) if variant == "compile" else model  # not a training option: it does not pay on CPU
    sampler = StepSampler(len(dataset), cfg.batch_size, seed=cfg.seed)
    kernels = _before_kernels(model) if variant == "before" else contextlib.nullcontext
    model.train()
    state = {"step": 0}

    def step_fn(net, batch):
        return training_step(recipe, net, batch, cfg, teacher)

    def step() -> float:
        with kernels():
            batch = loops._batch(dataset, sampler, state["step"], cfg, env)
            loss, _ = loops._step(run, net, batch, step_fn, cfg)
        state["step"] += 1
        return float(loss.detach())

    return step


def compare(args) -> None:
    """``--compare``: steps per second of the training step, before and after (module docstring)."""
    import tempfile

    from interp4d_lite.data.phantoms import write_phantom_dataset

    variants = ["before", "after", "channels-first"] + ["bf16"] * args.bf16 + ["compile"] * args.compile
    gpu = args.device != "cpu"
    where = torch.cuda.get_device_name(torch.device(args.device)) if gpu else f"cpus {os.cpu_count()}"
    print(
        f"torch {torch.__version__}, device {args.device} ({where}), threads {torch.get_num_threads()}, "
        f"load average before {os.getloadavg()[0]:.2f}; {args.rounds} rounds x {args.steps} steps per variant"
    )
    rows, misses = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            phantom, shape, frames, crop = COMPARE_CASES[case]
            root = os.path.join(tmp, case)
            write_phantom_dataset(root, phantom=phantom, n_patients=2, shape=shape, n_frames=frames, seed=1000)
            for recipe in args.recipes:
                steps, losses, wall, cpu, setup_s = {}, {}, {}, {}, {}
                for v in list(variants):
                    t0 = time.perf_counter()
                    try:
                        steps[v] = make_loop_step(case, recipe, root, v, args.device)
                        losses[v] = [steps[v]() for _ in range(2)]  # warm-up (and compiling)
                    except Exception as e:  # torch.compile without a working C++ compiler
                        if v != "compile":
                            raise
                        print(f"compile: failed, left out ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
                        variants.remove(v)
                        continue
                    setup_s[v], wall[v], cpu[v] = time.perf_counter() - t0, [], []
                for _ in range(args.rounds):
                    for v in variants:
                        c0, t0 = time.process_time(), time.perf_counter()
                        losses[v] += [steps[v]() for _ in range(args.steps)]
                        wall[v].append((time.perf_counter() - t0) / args.steps)
                        cpu[v].append((time.process_time() - c0) / args.steps)
                judged = wall if gpu else cpu  # on a GPU the step's time is the GPU's: the wall clock
                base, base_wall = min(judged["before"]), min(wall["before"])
                crop_s = "x".join(map(str, crop)) if crop else "whole"
                print(f"\n{case} {'x'.join(map(str, shape))} (crop {crop_s}), batch 2, {recipe}:")
                for v in variants:
                    n = min(len(losses[v]), len(losses["before"]), 4)
                    diff = max(abs(a - b) / abs(b) for a, b in zip(losses[v][:n], losses["before"][:n]))
                    extra = f"   (first {setup_s[v]:.0f} s with 2 warm-up steps)" if v == "compile" else ""
                    rates = f"{1 / min(wall[v]):6.2f} steps/s wall"
                    if not gpu:
                        rates += f"  {1 / min(cpu[v]):6.2f} steps/s CPU"
                    print(
                        f"  {v:15s} {rates}  x{base / min(judged[v]):.2f}"
                        + ("" if gpu else f" (wall x{base_wall / min(wall[v]):.2f})")
                        + f"  first {n} losses within {diff:.1e} of before's{extra}"
                    )
                    rows.append((case, recipe, v, 1 / min(judged[v])))
                speedup = base / min(judged["after"])
                if speedup < TARGETS["step_speedup"]:
                    misses.append(f"{case}/{recipe} x{speedup:.2f}")
    after = {(c, r): s for c, r, v, s in rows if v == "after"}
    before = {(c, r): s for c, r, v, s in rows if v == "before"}
    ratios = [after[k] / before[k] for k in after]
    line = (
        f"after / before steps per second ({'wall clock' if gpu else 'CPU time'}): x{min(ratios):.2f} to x{max(ratios):.2f} "
        f"(target >= x{TARGETS['step_speedup']} everywhere)"
    )
    print(f"\n{'MET' if not misses else 'MISSED'}: {line}" + (f"; below: {', '.join(misses)}" if misses else ""))
    print(f"load average after {os.getloadavg()[0]:.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's default)")
    ap.add_argument("--compare", action="store_true", help="the training step before and after, steps per second")
    ap.add_argument("--cases", nargs="+", default=list(COMPARE_CASES), choices=list(COMPARE_CASES))
    ap.add_argument("--recipes", nargs="+", default=["student", "teacher"], choices=["student", "teacher"])
    ap.add_argument("--rounds", type=int, default=4, help="--compare: rounds of alternation")
    ap.add_argument("--steps", type=int, default=2, help="--compare: steps per variant and round")
    ap.add_argument("--bf16", action="store_true", help="--compare: add precision='bf16' (CPU autocast)")
    ap.add_argument("--compile", action="store_true", help="--compare: add torch.compile (minutes of compiling)")
    ap.add_argument("--device", default="cpu", help="--compare: where the steps run (cpu, cuda, cuda:1)")
    ap.add_argument("--_memory-child", dest="memory_child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        return memory_child(tuple(args.memory_child))
    if args.compare:
        return compare(args)

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
