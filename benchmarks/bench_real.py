"""Real scans: is the student ever below the linear blend, and what does adapting it to the
scan buy?

Two test sets, neither seen in training:

* ``real_cine``: the real pig cine MRI shipped with the package (long-axis stack, 128x128x14,
  20 phases), ED -> ES with every phase between as targets;
* ``lung_b``: lung phantoms of the second anatomy (``anatomy="b"``: another body, lungs,
  diaphragm, grid and spacing than the pretrained lung student was trained on), 0 % -> 50 %;
* ``lung_real``: 4D breathing series built from the real chest CT kept aside for scoring
  (``interp4d_lite.data.chest_ct``, role ``heldout``: another chest than the training series',
  other breathing draws, 24-32 mm at the lung base), 48^3 voxels, 0 % -> 50 %, true fields. Its
  rows: ``linear_blend``, ``registered_linear_motion``, ``linear_motion_oracle``, ``true_fields``
  and the pretrained lung student without adaptation; and the ``interpolate`` command's path
  (``interpolate_files`` with no checkpoint, the student it picks for a CT) against the blend it
  would write, on the HU window.

Methods: ``linear_blend``; ``registered_linear_motion`` (the inputs registered to each other
by instance optimisation, no network); ``linear_motion_oracle`` (phantoms: the true endpoint
fields scaled by t); ``student`` (the pretrained student, no adaptation); ``student_adapted``
(``interp4d_lite.adapt.adapt_student`` on the scan's own frames outside the targets, within
``--minutes``); ``teacher`` (the pretraining run's privileged teacher, when its checkpoint is
there: it sees the real middle frames, an upper reference). PSNR over the target frames (never
given to the adaptation) and at mid-cycle, ``epe_moving`` where truth exists, the adaptation's
seconds and its self-check; one MET/MISSED line per target.

    .venv/bin/python benchmarks/bench_real.py                 # both sets, --minutes 5
    .venv/bin/python benchmarks/bench_real.py --sets real_cine --minutes 2
    .venv/bin/python benchmarks/bench_real.py --sets lung_real       # the real-anatomy lung rows only
    .venv/bin/python benchmarks/bench_real.py --sets lung_real --lung-student runs/pretrain/student_lung.pt
    .venv/bin/python benchmarks/bench_real.py --quick         # a smoke run (few steps)

Writes ``runs/bench_real/`` (git-ignored): metrics, summary, the adaptation reports, table.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: passive OpenMP waits on shared cores

import torch  # noqa: E402

from interp4d_lite.adapt import adapt_student, allowed_frames  # noqa: E402
from interp4d_lite.data import discover_patients, load_patient, load_real_cine  # noqa: E402
from interp4d_lite.data.chest_ct import CHEST_CTS, write_chest_dataset  # noqa: E402
from interp4d_lite.data.phantoms import write_phantom_dataset  # noqa: E402
from interp4d_lite.models import RegisteredLinearMotion  # noqa: E402
from interp4d_lite.train import evaluate_methods, load_model, save_table, summarize  # noqa: E402
from interp4d_lite.train.config import AdaptConfig  # noqa: E402
from interp4d_lite.weights import load_student  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LUNG_B = dict(phantom="lung", anatomy="b", shape=(40, 32, 36), spacing=(3.0, 3.5, 2.5), amplitude=2.0)
ORDER = ["linear_blend", "registered_linear_motion", "linear_motion_oracle", "true_fields", "student",
         "student_adapted", "teacher"]  # fmt: skip
#: the real-anatomy lung set: series of the held-out chest CT(s), never trained on
LUNG_REAL = dict(n_series=4, seed=7000, shape=(48, 48, 48), breathing={"si_mm": (24.0, 32.0)})


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sets", nargs="+", default=["real_cine", "lung_b", "lung_real"], choices=["real_cine", "lung_b", "lung_real"]
    )
    p.add_argument("--minutes", type=float, default=5.0, help="adaptation time budget per scan")
    p.add_argument("--steps", type=int, default=None, help="adaptation steps at most (default AdaptConfig's)")
    p.add_argument("--lung-patients", type=int, default=2)
    p.add_argument(
        "--lung-student",
        default="lung",
        help="lung_real: the student to score (a checkpoint path; default the pretrained one)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--teacher-dir", default=str(ROOT / "runs" / "pretrain"), help="pretrain.py's work folder")
    p.add_argument("--out", default=str(ROOT / "runs" / "bench_real"))
    p.add_argument("--quick", action="store_true", help="smoke run: 3 adaptation steps, 1 lung patient")
    return p.parse_args(argv)


def sets(a) -> dict:
    out = {}
    if "real_cine" in a.sets:
        out["real_cine"] = ("cardiac", [load_real_cine()])
    if "lung_b" in a.sets:
        root = Path(a.out) / "data_lung_b"
        n = 1 if a.quick else a.lung_patients
        write_phantom_dataset(root, n_patients=n, seed=4000 + a.seed, **LUNG_B)
        out["lung_b"] = ("lung", [load_patient(d, volume_shape=LUNG_B["shape"]) for d in discover_patients(root)])
    return out


def adapted(student, patient, a) -> tuple[object, dict]:
    frames = {k: patient.frames[k] for k in allowed_frames(len(patient.frames), patient.i0, patient.i1)}
    cfg = AdaptConfig(minutes=a.minutes, seed=a.seed, device=a.device, progress=False)
    if a.steps is not None or a.quick:
        cfg = cfg.replace(steps=3 if a.quick else a.steps)
    return adapt_student(frames, len(patient.frames), (patient.i0, patient.i1), student, cfg, name=patient.patient_id)


def main(argv=None) -> int:
    a = parse(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, reports = [], {}
    for name, (data_kind, patients) in sets(a).items():
        student = load_student(data_kind, device="cpu")
        teacher_ckpt = Path(a.teacher_dir) / data_kind / "teacher.pt"
        for p in patients:
            t0 = time.perf_counter()
            model, report = adapted(student, p, a)
            report["seconds_wall"] = round(time.perf_counter() - t0, 1)
            reports[f"{name}/{p.patient_id}"] = {
                k: (v.__dict__ if hasattr(v, "__dict__") else v) for k, v in report.items()
            }
            methods = {
                "linear_blend": "linear_blend",
                "registered_linear_motion": RegisteredLinearMotion(),
                "linear_motion_oracle": "linear_motion_oracle",
                "student": student,
                "student_adapted": model,
            }
            if teacher_ckpt.exists():
                methods["teacher"] = load_model(teacher_ckpt, device="cpu", model_kind="teacher")[0]
            rows.append(evaluate_methods(methods, [p], device=a.device, dataset=name, progress=False))
    cli = []
    if "lung_real" in a.sets:
        df_real, cli = lung_real_rows(a)
        rows.append(df_real)
    import pandas as pd

    df = pd.concat(rows, ignore_index=True)
    summary = summarize(df)
    save_table(summary, out / "summary")
    (out / "adaptation.json").write_text(json.dumps(reports, indent=1, default=str))
    lines = report_lines(summary, reports) + lung_real_lines(summary, cli)
    (out / "table.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _get(summary, dataset, method, scope, metric):
    r = summary[(summary["dataset"] == dataset) & (summary["method"] == method) & (summary["scope"] == scope)]
    return float(r[metric].iloc[0]) if len(r) and metric in r else float("nan")


def report_lines(summary, reports) -> list[str]:
    lines = [f"{'set':<10} {'method':<26} {'PSNR all':>9} {'PSNR mid':>9} {'epe_moving':>11}"]
    for ds in summary["dataset"].unique():
        for m in ORDER:
            if not ((summary["dataset"] == ds) & (summary["method"] == m)).any():
                continue
            vals = [_get(summary, ds, m, s, "psnr") for s in ("all", "mid")] + [
                _get(summary, ds, m, "all", "epe_moving")
            ]
            lines.append(f"{ds:<10} {m:<26} {vals[0]:>9.2f} {vals[1]:>9.2f} {vals[2]:>11.3f}")
    lines.append("(PSNR dB over the target frames, never seen by the adaptation; epe_moving voxels, phantoms only)")
    for key, r in reports.items():
        after = r.get("after") or {}
        lines.append(
            f"adaptation {key}: {r['steps']} steps, {r['seconds']:.0f} s, {r['train_triplets']} triplets; self-check "
            f"{after.get('model_db', float('nan')):.2f} vs blend {after.get('blend_db', float('nan')):.2f} dB"
        )

    def target(ok: bool, text: str) -> None:
        lines.append(("MET    " if ok else "MISSED ") + text)

    for ds in summary["dataset"].unique():
        if ds == "lung_real":  # no adaptation there: lung_real_lines has its targets
            continue
        g = lambda m, s="all", k="psnr": _get(summary, ds, m, s, k)  # noqa: E731
        blend, rlm, stu, ada = g("linear_blend"), g("registered_linear_motion"), g("student"), g("student_adapted")
        target(stu >= blend - 0.2, f"{ds}: student without adaptation {stu:.2f} >= blend {blend:.2f} - 0.2 dB")
        bm, am = g("linear_blend", "mid"), g("student_adapted", "mid")
        target(am >= bm + 1.0, f"{ds}: adapted student mid-cycle {am:.2f} >= blend {bm:.2f} + 1.0 dB")
        target(ada >= blend + 0.5, f"{ds}: adapted student {ada:.2f} >= blend {blend:.2f} + 0.5 dB")
        target(ada >= rlm + 0.3, f"{ds}: adapted student {ada:.2f} >= registered linear motion {rlm:.2f} + 0.3 dB")
        oracle = g("linear_motion_oracle", k="epe_moving")
        if oracle == oracle:
            epe = g("student_adapted", k="epe_moving")
            target(epe <= oracle, f"{ds}: adapted student epe_moving {epe:.3f} <= oracle {oracle:.3f}")
    return lines


# --------------------------------------------------------------------------- lung_real
def lung_real_patients(a) -> list:
    """The held-out real-anatomy series (written under ``--out``; the same files every run)."""
    root = Path(a.out) / "data_lung_real"
    scans = [name for name, v in CHEST_CTS.items() if v["role"] == "heldout"]
    n = 1 if a.quick else LUNG_REAL["n_series"]
    opts = dict(shape=LUNG_REAL["shape"], breathing=LUNG_REAL["breathing"])
    write_chest_dataset(root, scans, n_series=n, seed=LUNG_REAL["seed"] + a.seed, **opts)
    return [load_patient(d, volume_shape="native") for d in discover_patients(root)]


def lung_real_cli(patients, a) -> list[dict]:
    """``interpolate_files`` with no checkpoint (the student the command picks for a CT) on each
    series' 0 % and 50 % phases, scored on the HU window against the true phases, beside the
    linear blend of the same HU volumes (what ``--fallback blend`` would write)."""
    import nibabel as nib
    import numpy as np

    from interp4d_lite.data import read_nifti_4d
    from interp4d_lite.data.phantoms import hu_to_unit
    from interp4d_lite.interpolate import interpolate_files

    out = []
    for p in patients:
        hu, _, _ = read_nifti_4d(p.source)
        times = [float(p.times[k]) for k in p.target_indices]
        dest = Path(a.out) / "lung_real_cli" / f"{p.patient_id}_interp.nii.gz"
        dest.parent.mkdir(parents=True, exist_ok=True)
        path, check, written = interpolate_files(
            None, dest, input_4d=p.source, frames=(p.i0, p.i1), times=times, device=a.device
        )
        pred = np.moveaxis(np.asarray(nib.load(str(path)).dataobj, np.float32), -1, 0)
        truth = hu_to_unit(hu[p.target_indices])
        blend = hu_to_unit(np.stack([(1 - t) * hu[p.i0] + t * hu[p.i1] for t in times]))
        psnr = lambda x: float(np.mean([10 * np.log10(1 / np.mean((x[k] - truth[k]) ** 2)) for k in range(len(x))]))  # noqa: E731
        out.append(dict(patient=p.patient_id, written=written, student=psnr(hu_to_unit(pred)), blend=psnr(blend),
                        self_check=None if check is None else round(float(check.gain_db), 2)))  # fmt: skip
    return out


def lung_real_rows(a):
    """The lung_real rows (no adaptation: the pretrained lung student as shipped) and the CLI rows."""
    patients = lung_real_patients(a)
    methods = {
        "linear_blend": "linear_blend",
        "registered_linear_motion": RegisteredLinearMotion(),
        "linear_motion_oracle": "linear_motion_oracle",
        "true_fields": "true_fields",
        "student": load_student(a.lung_student, device="cpu", data_kind="lung"),
    }
    df = evaluate_methods(methods, patients, device=a.device, dataset="lung_real", progress=False)
    return df, lung_real_cli(patients, a)


def lung_real_lines(summary, cli) -> list[str]:
    if not (summary["dataset"] == "lung_real").any():
        return []
    g = lambda m, s="all", k="psnr": _get(summary, "lung_real", m, s, k)  # noqa: E731
    lines = []
    for r in cli:
        lines.append(
            f"lung_real interpolate {r['patient']} (no --checkpoint, wrote {r['written']}): {r['student']:.2f} dB vs "
            f"blend {r['blend']:.2f} dB on the HU window; self-check {r['self_check']} dB"
        )

    def target(ok: bool, text: str) -> None:
        lines.append(("MET    " if ok else "MISSED ") + text)

    stu, blend = g("student"), g("linear_blend")
    target(stu >= blend + 1.0, f"lung_real: pretrained lung student {stu:.2f} >= blend {blend:.2f} + 1.0 dB")
    epe, oracle = g("student", k="epe_moving"), g("linear_motion_oracle", k="epe_moving")
    target(epe <= oracle, f"lung_real: pretrained lung student epe_moving {epe:.3f} <= oracle {oracle:.3f}")
    if cli:
        s_cli = sum(r["student"] for r in cli) / len(cli)
        b_cli = sum(r["blend"] for r in cli) / len(cli)
        target(s_cli >= b_cli, f"lung_real: interpolate with no --checkpoint {s_cli:.2f} >= blend {b_cli:.2f} dB")
    return lines


if __name__ == "__main__":
    sys.exit(main())
