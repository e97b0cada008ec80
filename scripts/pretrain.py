"""Train the pretrained students shipped in ``interp4d_lite/weights/``, reproducibly by seed.

For each data kind (``cardiac``: the anatomical cardiac phantom; ``lung``: 4D breathing series
of the real chest CTs in ``chest_ct/`` whose role is ``train``, plus lung phantoms with
``--lung-data both``, see ``interp4d_lite.data.chest_ct``), generates training and held-out
patients, trains the privileged teacher (with its
registration targets), distils the student from it (the recipe table's ``teacher`` and
``student`` rows, the package's defaults otherwise), evaluates the student against the
linear blend, the linear-motion oracle and zero motion on the held-out patients (for cardiac
also on the real cine shipped with the package; for lung also on series of the held-out chest
CT, never trained on), and writes:

* ``interp4d_lite/weights/student_<data_kind>.pt``: the student in the package's checkpoint format
  with float16 weights (no optimiser state), loaded by ``interp4d_lite.pretrained(data_kind)``;
* ``interp4d_lite/weights/pretrain_<data_kind>.json``: the exact config, steps, seconds, hardware
  and the measured metrics (what ``interp4d_lite/weights/MODEL_CARD.md`` quotes).

    .venv/bin/python scripts/pretrain.py                          # both data kinds, defaults
    .venv/bin/python scripts/pretrain.py --data-kinds cardiac --student-steps 2000
    .venv/bin/python scripts/pretrain.py --quick                  # a smoke run into runs/pretrain_quick

Intermediate checkpoints and data go to ``runs/pretrain/`` (git-ignored); a run interrupted
there resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: passive OpenMP waits on shared cores

import torch  # noqa: E402

from interp4d_lite.data import discover_patients, load_patient  # noqa: E402
from interp4d_lite.data.chest_ct import CHEST_CTS, write_chest_dataset  # noqa: E402
from interp4d_lite.data.phantoms import write_phantom_dataset  # noqa: E402
from interp4d_lite.train import evaluate_methods, fit, get_recipe, summarize  # noqa: E402
from interp4d_lite.train.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "interp4d_lite" / "weights"
CARD = Path("interp4d_lite/weights/MODEL_CARD.md").name  # the model card, beside the weights
DEFAULTS = {
    # shape in voxels, patients, teacher steps, student steps, crop
    "cardiac": dict(
        shape=(128, 128, 10), amplitude=1.0, train=12, test=3, teacher_steps=400, student_steps=1200, crop=(64, 64, 10)
    ),
    "lung": dict(
        shape=(40, 40, 40),
        amplitude=1.5,
        train=10,
        test=3,
        teacher_steps=300,
        student_steps=900,
        crop=(32, 32, 32),
        real_series=24,
        real_test=4,
        real_shape=(48, 48, 48),
    ),  # fmt: skip
}
#: breathing of the held-out real-anatomy series (as benchmarks/bench_real.py's lung_real set)
REAL_TEST_BREATHING = {"si_mm": (24.0, 32.0)}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-kinds", nargs="+", default=["cardiac", "lung"], choices=sorted(DEFAULTS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--teacher-steps", type=int, default=None)
    p.add_argument("--student-steps", type=int, default=None)
    p.add_argument("--train-patients", type=int, default=None)
    p.add_argument(
        "--lung-data",
        choices=["real", "phantom", "both"],
        default="both",
        help="lung training data: breathing series of the real chest CTs (chest_ct/, role train), phantoms, or both",
    )
    p.add_argument("--real-series", type=int, default=None, help="breathing series per training chest CT (lung)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--work", default=str(ROOT / "runs" / "pretrain"), help="data and intermediate checkpoints")
    p.add_argument("--out", default=str(WEIGHTS), help="where the fp16 students and metrics go")
    p.add_argument("--quick", action="store_true", help="a smoke run: few steps and patients, into runs/")
    p.add_argument("--progress", action="store_true")
    p.add_argument(
        "--card-only",
        action="store_true",
        help="only (re)write the model card (interp4d_lite/weights/MODEL_CARD.md) from the pretrain_*.json in --out",
    )
    return p.parse_args(argv)


def _row(name: str, m: dict) -> str:
    psnr = f"{m['psnr']:.2f}" if "psnr" in m else "-"
    epe = f"{m['epe_moving']:.3f}" if "epe_moving" in m else "-"
    return f"| {name} | {psnr} | {epe} |"


def write_model_card(out: Path) -> Path:
    """The model card in ``out`` (interp4d_lite/weights/MODEL_CARD.md for the shipped students), written
    from the ``pretrain_*.json`` there: every number comes from those runs."""
    from interp4d_lite.io_utils import atomic_write_text

    lines = [
        "# Pretrained students: model card",
        "",
        "Written by `scripts/pretrain.py --card-only` from the `pretrain_<data kind>.json` files beside it;",
        "every number below is what those runs measured.",
        "",
        "**What they are.** The package's student (`StudentConfig()` defaults: a shared encoder, FiLM time",
        "modulation, multi-scale deformation fusion), distilled from the privileged teacher (its",
        "instance-optimised fields, cached once per sample) on the data listed under each student: the",
        "anatomical cardiac phantom (short-axis cine at ACDC-like geometry); for the lung, breathing series",
        "of real chest CTs (`chest_ct/`, their sources and licences in each README) and/or the lung",
        "phantom (anatomy `a`). Weights are stored in float16; `interp4d_lite.pretrained(name)` loads them",
        "into a float32 model.",
        "",
    ]
    for path in sorted(out.glob("pretrain_*.json")):
        info = json.loads(path.read_text())
        kind = info.get("data_kind") or info.get("kind")
        hw = info["hardware"]
        where = hw.get("cuda") or f"CPU ({hw['cpu_threads']} threads, {hw['machine']})"
        lines += [
            f"## `{kind}` (`student_{kind}.pt`)",
            "",
            f"* **Data**: {info['train_patients']} training and {info['test_patients']} held-out phantom patients "
            f"({kind}), {tuple(info['phantom_shape'])} voxels, motion amplitude {info.get('phantom_amplitude', 1.0)}, "
            f"seed {info['seed']}.",
            *_real_data_lines(info.get("real_data")),
            f"* **Training**: teacher {info['teacher_steps']} steps, then the student {info['student_steps']} steps "
            f"(batch {info['student_config']['batch_size']}, crops {info['student_config']['crop_shape']}, "
            f"lr {info['student_config']['lr']}), distillation weight {info['student_config']['distill_weight']}; "
            + (
                f"registration targets compared under a Gaussian blur of {info['registration_blur']} voxels."
                if "registration_blur" in info
                else f"registration targets: {info.get('registration', 'models.registration')}."
            ),
            f"* **Time and hardware**: {info['seconds_total'] / 60:.1f} min in all ({info['seconds_teacher'] / 60:.1f} min "
            f"for the teacher and its targets) on {where}, torch {hw['torch']}.",
            f"* **Command**: `{info['command']}`",
            "",
            "Held-out phantom patients (PSNR in dB over every target frame; `epe_moving` in voxels where tissue moves):",
            "",
            "| method | PSNR | epe_moving |",
            "|---|---|---|",
        ]
        for name, m in info["metrics"]["phantom_test"]["all"].items():
            lines.append(_row(name, m))
        mid = info["metrics"]["phantom_test"]["mid"]
        lines += ["", "At mid-cycle: " + ", ".join(f"{k} {v['psnr']:.2f} dB" for k, v in mid.items()) + "."]
        lines += _real_test_lines(info["metrics"].get("real_test"))
        real = info["metrics"].get("real_cine")
        if real:
            lines += [
                "",
                "The real pig cine shipped with the package (ED -> ES, every phase between; never trained on):",
                "",
                "| method | PSNR | epe_moving |",
                "|---|---|---|",
                *[_row(name, m) for name, m in real["all"].items()],
            ]
            gain = real["all"]["student"]["psnr"] - real["all"]["linear_blend"]["psnr"]
            lines += ["", f"On the real cine the student is {gain:+.2f} dB from the linear blend without adaptation."]
        lines.append("")
    lines += [
        "## Limits",
        "",
        "* The cardiac student saw phantoms alone; the lung student saw real chest anatomy moved by a breathing",
        "  model, not measured 4D-CT motion. On a real scan check the student",
        "  against the linear blend before trusting it (`interp4d-lite evaluate --input SCAN --frames I J",
        "  --student cardiac`; `interpolate` prints a self-check), and adapt it to the scan",
        "  (`interp4d-lite adapt`), whose numbers `benchmarks/bench_real.py` prints.",
        "* The cardiac phantom is a short-axis stack; long-axis views, other contrasts than bright-blood SSFP,",
        "  and CT are outside its training data (the lung student is the one for 4D-CT).",
        "* Small training budgets on a CPU; a GPU run of `scripts/pretrain.py` with more steps is the way to",
        "  better students.",
        "",
    ]
    return atomic_write_text(out / CARD, "\n".join(lines))


def _real_data_lines(real: dict | None) -> list[str]:
    if not real:
        return []
    return [
        f"* **Real anatomy**: {real['series_per_scan']} breathing series of each training chest CT "
        f"({', '.join(real['train_scans'])}; `chest_ct/`), {tuple(real['shape'])} voxels "
        f"(`interp4d_lite.data.chest_ct.write_chest_dataset`, breathing model in "
        f"`interp4d_lite.data.phantoms.breathing`); training data `--lung-data {real['lung_data']}`. "
        f"Held out: {real['test_series_per_scan']} series of {', '.join(real['test_scans'])}, never trained on.",
    ]


def _real_test_lines(real_test: dict | None) -> list[str]:
    if not real_test:
        return []
    lines = [
        "",
        "Series of the held-out real chest CT (another chest than the training series', never trained on):",
        "",
        "| method | PSNR | epe_moving |",
        "|---|---|---|",
        *[_row(name, m) for name, m in real_test["all"].items()],
    ]
    gain = real_test["all"]["student"]["psnr"] - real_test["all"]["linear_blend"]["psnr"]
    return lines + ["", f"On them the student is {gain:+.2f} dB from the linear blend."]


def export_fp16(src: Path, dst: Path, extra: dict) -> Path:
    """The student of checkpoint ``src`` with float16 weights and no optimiser state, atomically."""
    from interp4d_lite.models import build_model

    ck = load_checkpoint(src, model_kind="student")
    model = build_model("student", ck["model_config"])
    model.load_state_dict(ck["model_state"])
    model.half()
    return save_checkpoint(
        dst,
        model_kind="student",
        model=model,
        model_config=ck["model_config"],
        step=ck["step"],
        train_config=ck["train_config"],
        history=ck["history"],
        extra={**(ck.get("extra") or {}), **extra},
    )


def _scores(summary, scope: str = "all") -> dict:
    rows = summary[summary["scope"] == scope] if "scope" in summary else summary
    out = {}
    for _, r in rows.iterrows():
        out[r["method"]] = {k: round(float(r[k]), 4) for k in ("psnr", "epe_moving") if k in r and r[k] == r[k]}
    return out


def lung_real_data(work: Path, d: dict, a) -> dict:
    """Breathing series of the real chest CTs: ``d["real_series"]`` per training scan (role
    ``train``) and ``d["real_test"]`` of each held-out scan (role ``heldout``, never trained on),
    written under ``work`` (reproducible by ``--seed``) and loaded on their own grid."""
    n = a.real_series if a.real_series is not None else d["real_series"]
    shape = tuple(d["real_shape"])
    scans = {role: [k for k, v in CHEST_CTS.items() if v["role"] == role] for role in ("train", "heldout")}
    write_chest_dataset(work / "real_train", scans["train"], n_series=n, seed=3000 + a.seed, shape=shape)
    write_chest_dataset(work / "real_test", scans["heldout"], n_series=d["real_test"], seed=4000 + a.seed,
                        shape=shape, breathing=REAL_TEST_BREATHING)  # fmt: skip
    load = lambda root: [load_patient(p, volume_shape="native") for p in discover_patients(root)]  # noqa: E731
    info = {"train_scans": scans["train"], "series_per_scan": n, "test_scans": scans["heldout"],
            "test_series_per_scan": d["real_test"], "shape": list(shape), "lung_data": a.lung_data}  # fmt: skip
    return {"train": load(work / "real_train"), "test": load(work / "real_test"), "info": info}


def run_data_kind(data_kind: str, a) -> dict:
    d = dict(DEFAULTS[data_kind])
    if a.quick:
        d.update(shape=(32, 32, 10) if data_kind == "cardiac" else (24, 24, 24), train=3, test=1, teacher_steps=6,
                 student_steps=6, crop=None, real_series=2, real_test=1, real_shape=(24, 24, 24))  # fmt: skip
    for key in ("teacher_steps", "student_steps"):
        if getattr(a, key) is not None:
            d[key] = getattr(a, key)
    if a.train_patients is not None:
        d["train"] = a.train_patients
    work = Path(a.work) / data_kind
    shape = tuple(d["shape"])
    t0 = time.perf_counter()
    gen = dict(phantom=data_kind, shape=shape, amplitude=d["amplitude"])
    write_phantom_dataset(work / "train", n_patients=d["train"], seed=1000 + a.seed, **gen)
    write_phantom_dataset(work / "test", n_patients=d["test"], seed=2000 + a.seed, **gen)
    load = lambda root: [load_patient(p, volume_shape=shape) for p in discover_patients(root)]  # noqa: E731
    train, test = load(work / "train"), load(work / "test")
    real = lung_real_data(work, d, a) if data_kind == "lung" and a.lung_data != "phantom" else None
    if real is not None:
        train = (train if a.lung_data == "both" else []) + real["train"]
    common = dict(seed=a.seed, device=a.device, progress=a.progress, crop_shape=d["crop"], checkpoint_every=100)
    teacher_cfg = get_recipe("teacher").config_cls(steps=d["teacher_steps"], **common)
    teacher, _ = fit("teacher", train, teacher_cfg, out_dir=work)
    t_teacher = time.perf_counter() - t0
    student_cfg = get_recipe("student").config_cls(steps=d["student_steps"], **common)
    student, hist = fit("student", train, student_cfg, teacher=teacher, out_dir=work)
    seconds = time.perf_counter() - t0
    methods = {"linear_blend": "linear_blend", "linear_motion_oracle": "linear_motion_oracle", "student": student}
    summary = summarize(evaluate_methods(methods, test, device=a.device, progress=a.progress))
    metrics = {"phantom_test": {scope: _scores(summary, scope) for scope in ("all", "mid")}}
    if real is not None:
        summary = summarize(evaluate_methods(methods, real["test"], device=a.device, progress=a.progress))
        metrics["real_test"] = {scope: _scores(summary, scope) for scope in ("all", "mid")}
    if data_kind == "cardiac":
        try:
            from interp4d_lite.data import load_real_cine
        except ImportError:
            load_real_cine = None
        if load_real_cine is not None:
            real = load_real_cine()
            summary = summarize(evaluate_methods({"linear_blend": "linear_blend", "student": student}, [real]))
            metrics["real_cine"] = {scope: _scores(summary, scope) for scope in ("all", "mid")}
    info = {
        "data_kind": data_kind,
        "seed": a.seed,
        "phantom_shape": list(shape),
        "phantom_amplitude": d["amplitude"],
        "train_patients": d["train"] if real is None or a.lung_data == "both" else 0,
        "test_patients": d["test"],
        "real_data": None if real is None else real["info"],
        "teacher_steps": d["teacher_steps"],
        "student_steps": d["student_steps"],
        "teacher_config": teacher_cfg.to_dict(),
        "student_config": student_cfg.to_dict(),
        "seconds_teacher": round(t_teacher, 1),
        "seconds_total": round(seconds, 1),
        "hardware": {
            "device": str(next(student.parameters()).device),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "cpu_threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "torch": torch.__version__,
        },
        "final_loss": hist[-1] if hist else None,
        "registration": "noise-corrected instance optimisation, no blur (models.registration.register_images)",
        "metrics": metrics,
        "command": "python scripts/pretrain.py " + " ".join(sys.argv[1:]),
    }
    out = Path(a.out) if not a.quick else Path(a.work)
    out.mkdir(parents=True, exist_ok=True)
    export_fp16(work / "student.pt", out / f"student_{data_kind}.pt", {"pretrained": data_kind})
    from interp4d_lite.io_utils import atomic_write_json

    atomic_write_json(out / f"pretrain_{data_kind}.json", info, indent=1)
    return info


def main(argv=None) -> int:
    a = parse(argv)
    if a.card_only:
        print(write_model_card(Path(a.out)))
        return 0
    if a.quick:
        a.work = str(ROOT / "runs" / "pretrain_quick")
    torch.set_num_threads(a.threads)
    for data_kind in a.data_kinds:
        info = run_data_kind(data_kind, a)
        print(json.dumps({k: info[k] for k in ("data_kind", "seconds_total", "metrics")}, indent=1))
    if not a.quick:
        write_model_card(Path(a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
