"""Real scans: is the student ever below the linear blend, what does adapting it to the scan buy,
and does a student trained on real cines (with the privileged teacher) beat the blend on a real
cine it has never seen?

Three test sets, none seen in training:

* ``real_cine``: the real pig cine MRI shipped with the package (long-axis stack, 128x128x14,
  20 phases), ED -> ES with every phase between as targets, for the pretrained cardiac student;
* ``lung_b``: lung phantoms of the second anatomy (``anatomy="b"``: another body, lungs,
  diaphragm, grid and spacing than the pretrained lung student was trained on), 0 % -> 50 %;
* ``lung_real``: 4D breathing series built from the real chest CT kept aside for scoring
  (``interp4d_lite.data.chest_ct``, role ``heldout``: another chest than the training series',
  other breathing draws, 24-32 mm at the lung base), 48^3 voxels, 0 % -> 50 %, true fields. Its
  rows: ``linear_blend``, ``registered_linear_motion``, ``linear_motion_oracle``, ``true_fields``
  and the pretrained lung student without adaptation; and the ``interpolate`` command's path
  (``interpolate_files`` with no checkpoint, the student it picks for a CT) against the blend it
  would write, on the HU window.
* ``loso``: leave-one-scan-out over the four real cines shipped with the package (the pig cine
  and the human short-axis cines scd101, scd201, scd301). For each scan k, the privileged teacher
  (it sees the real middle frames), the student distilled from it and the student without
  distillation (same steps, same data) are trained on the other three cines (triplets of any two
  phases, every span, around the beat) mixed with cardiac phantoms (``--real-share``), and scored
  on scan k's real phases between ED and ES; data set ``loso:<k>``.

Methods: ``linear_blend``; ``registered_linear_motion`` (the inputs registered to each other
by instance optimisation, no network; ``_ants``: by ANTs SyN with the CC metric, when antspyx is
installed, else skipped with a note); ``linear_motion_oracle`` (phantoms: the true endpoint
fields scaled by t); ``privileged_ceiling`` (loso: both inputs registered to each real
in-between frame, then blended: what the privileged teacher's targets can reach);
``scaled_motion_ceiling`` (loso: the inputs' registration scaled by the one factor per frame that
fits the real frame best, privileged: the most a model moving along the endpoint motion with its
own course in t can reach) and ``registered_learned_course`` (loso: that registration along one
course in t fitted on the other held-out scans' frames; a note line prints the courses); ``student``
(the pretrained student, or loso's distilled fold student, no adaptation); ``student_nokd``
(loso: trained without distillation); ``student_adapted`` (``interp4d_lite.adapt.adapt_student``
on the scan's own frames outside the targets, within ``--minutes``); ``teacher`` (the pretraining
run's privileged teacher, when its checkpoint is there: it sees the real middle frames, an upper
reference). PSNR (dB, peak 1, every frame min-max normalised as the loaders do) over the target
frames (never given to the adaptation) and at mid-cycle (the frame nearest t = 0.5),
``epe_moving`` where truth exists, the adaptation's seconds and its self-check; one MET/MISSED
line per target.

    .venv/bin/python benchmarks/bench_real.py                 # every set, --minutes 5
    .venv/bin/python benchmarks/bench_real.py --sets real_cine --minutes 2
    .venv/bin/python benchmarks/bench_real.py --sets lung_real       # the real-anatomy lung rows only
    .venv/bin/python benchmarks/bench_real.py --sets lung_real --lung-student runs/pretrain/student_lung.pt
    .venv/bin/python benchmarks/bench_real.py --sets loso --teacher-steps 400 --student-steps 1200
    .venv/bin/python benchmarks/bench_real.py --sets loso --scans scd101   # one fold
    .venv/bin/python benchmarks/bench_real.py --quick         # a smoke run (few steps)

Writes ``runs/bench_real/`` (git-ignored): metrics, summary, the adaptation reports, table.txt;
``loso/without_<k>/`` holds each fold's checkpoints: a finished one is loaded, not retrained
(a fold folder made from other training data is refused).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: passive OpenMP waits on shared cores

import numpy as np  # noqa: E402
import torch  # noqa: E402

from interp4d_lite.adapt import adapt_student, allowed_frames  # noqa: E402
from interp4d_lite.data import REAL_CINE_IDS, discover_patients, load_patient, load_real_cine, load_real_cines  # noqa: E402
from interp4d_lite.data.chest_ct import CHEST_CTS, write_chest_dataset  # noqa: E402
from interp4d_lite.data.phantoms import write_phantom_dataset  # noqa: E402
from interp4d_lite.errors import CheckpointError  # noqa: E402
from interp4d_lite.models import LinearMotionBaseline, RegisteredLinearMotion  # noqa: E402
from interp4d_lite.train import (  # noqa: E402
    evaluate_methods,
    fit,
    load_finished,
    load_model,
    real_and_phantom_triplets,
    save_table,
    summarize,
)
from interp4d_lite.train.cli import add_config_args, given_config_values  # noqa: E402
from interp4d_lite.train.config import REAL_CINE_LR, AdaptConfig, DistillConfig, TeacherTrainConfig  # noqa: E402
from interp4d_lite.weights import load_student  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LUNG_B = dict(phantom="lung", anatomy="b", shape=(40, 32, 36), spacing=(3.0, 3.5, 2.5), amplitude=2.0)
ORDER = [
    "linear_blend",
    "registered_linear_motion",
    "registered_linear_motion_ants",
    "linear_motion_oracle",
    "true_fields",
    "registered_learned_course",
    "privileged_ceiling",
    "scaled_motion_ceiling",
    "student_nokd",
    "student",
    "student_adapted",
    "teacher",
]
LOSO = "loso:"  # the leave-one-scan-out data sets are named loso:<scan>
#: the real-anatomy lung set: series of the held-out chest CT(s), never trained on
LUNG_REAL = dict(n_series=4, seed=7000, shape=(48, 48, 48), breathing={"si_mm": (24.0, 32.0)})

#: the knobs of the folds' students (both: with and without distillation) this script takes as flags
#: (default: the config's)
STUDENT_FLAGS = ("distill_weight", "teacher_better", "distill_eps", "flip_axes")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sets",
        nargs="+",
        default=["real_cine", "lung_b", "lung_real", "loso"],
        choices=["real_cine", "lung_b", "lung_real", "loso"],
    )
    p.add_argument("--minutes", type=float, default=5.0, help="adaptation time budget per scan")
    loso = p.add_argument_group("leave-one-scan-out over the real cines (--sets loso)")
    loso.add_argument("--scans", nargs="+", default=list(REAL_CINE_IDS), choices=REAL_CINE_IDS, help="scans held out")
    loso.add_argument("--teacher-steps", type=int, default=400, help="teacher steps of each fold")
    loso.add_argument("--student-steps", type=int, default=1200, help="steps of each fold's students (both)")
    loso.add_argument(
        "--student-lr",
        type=float,
        default=REAL_CINE_LR,
        help="Adam learning rate of each fold's students (default: train.config.REAL_CINE_LR, as scripts/pretrain.py)",
    )
    loso.add_argument("--phantoms", type=int, default=12, help="cardiac phantom patients mixed into training")
    loso.add_argument("--real-share", type=float, default=0.5, help="share of the samples from the real cines")
    loso.add_argument("--real-per-cine", type=int, default=96, help="training triplets of each cine at most")
    loso.add_argument("--ceiling-steps", type=int, default=60, help="steps of the privileged ceiling's registration")
    add_config_args(
        p, DistillConfig, "leave-one-scan-out: the training of each fold's students",
        only=STUDENT_FLAGS, unset=True,
    )  # fmt: skip
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
    p.add_argument("--no-ants", action="store_true", help="skip ANTs SyN even when antspyx is installed (it is slow)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 3 adaptation steps, 1 lung patient; loso: 3 training steps, 1 phantom, 32x32x10 crops",
    )
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
    if a.quick:  # a smoke run: few triplets, short target registrations
        cfg = cfg.replace(max_triplets=4, target_steps=2)
    return adapt_student(frames, len(patient.frames), (patient.i0, patient.i1), student, cfg, name=patient.patient_id)


def main(argv=None) -> int:
    a = parse(argv)
    torch.set_num_threads(a.threads)
    os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", str(a.threads))  # ANTs, when installed
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
    notes = []
    if "loso" in a.sets:
        loso_rows, loso_reports, notes = leave_one_scan_out(a, out)
        rows += loso_rows
        reports.update(loso_reports)
    import pandas as pd

    df = pd.concat(rows, ignore_index=True)
    summary = summarize(df)
    save_table(summary, out / "summary")
    (out / "adaptation.json").write_text(json.dumps(reports, indent=1, default=str))
    lines = report_lines(summary, reports) + notes + lung_real_lines(summary, cli) + loso_lines(summary, a.minutes)
    (out / "table.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _get(summary, dataset, method, scope, metric):
    r = summary[(summary["dataset"] == dataset) & (summary["method"] == method) & (summary["scope"] == scope)]
    return float(r[metric].iloc[0]) if len(r) and metric in r else float("nan")


def report_lines(summary, reports) -> list[str]:
    lines = [f"{'set':<18} {'method':<30} {'PSNR all':>9} {'PSNR mid':>9} {'epe_moving':>11}"]
    for ds in summary["dataset"].unique():
        for m in ORDER:
            if not ((summary["dataset"] == ds) & (summary["method"] == m)).any():
                continue
            vals = [_get(summary, ds, m, s, "psnr") for s in ("all", "mid")] + [
                _get(summary, ds, m, "all", "epe_moving")
            ]
            lines.append(f"{ds:<18} {m:<30} {vals[0]:>9.2f} {vals[1]:>9.2f} {vals[2]:>11.3f}")
    lines.append("(PSNR dB over the target frames, never seen by the adaptation; epe_moving voxels, phantoms only)")
    for key, r in reports.items():
        after = r.get("after") or {}
        lines.append(
            f"adaptation {key}: {r['steps']} steps, {r['seconds']:.0f} s, {r['train_triplets']} triplets; self-check "
            f"{after.get('model_db', float('nan')):.2f} vs blend {after.get('blend_db', float('nan')):.2f} dB"
        )

    def target(ok: bool, text: str) -> None:
        lines.append(("MET    " if ok else "MISSED ") + text)

    for ds in [d for d in summary["dataset"].unique() if not str(d).startswith(LOSO)]:  # loso: loso_lines
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
    import numpy as np

    from interp4d_lite.data import read_nifti_4d
    from interp4d_lite.data.phantoms import hu_to_unit
    from interp4d_lite.interpolate import interpolate_files
    from interp4d_lite.metrics import psnr

    out = []
    for p in patients:
        hu, _, _ = read_nifti_4d(p.source)
        times = [float(p.times[k]) for k in p.target_indices]
        dest = Path(a.out) / "lung_real_cli" / f"{p.patient_id}_interp.nii.gz"
        dest.parent.mkdir(parents=True, exist_ok=True)
        path, check, written = interpolate_files(
            None, dest, input_4d=p.source, frames=(p.i0, p.i1), times=times, device=a.device
        )
        pred = read_nifti_4d(path)[0]
        truth = hu_to_unit(hu[p.target_indices])
        blend = hu_to_unit(np.stack([(1 - t) * hu[p.i0] + t * hu[p.i1] for t in times]))
        out.append(dict(patient=p.patient_id, written=written, student=psnr(hu_to_unit(pred), truth), blend=psnr(blend, truth),
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


# ---------------------------------------------------------------------- leave one scan out
class AntsSyN(torch.nn.Module):
    """The two inputs registered to each other by ANTs SyN (deformable only, CC metric):
    ``u_01`` (``warp(I1, u_01) ~ I0``) and ``u_10``, in voxels (the images go to ANTs on a unit
    grid, so its displacements in mm are voxels); wrapped in
    :class:`~interp4d_lite.models.LinearMotionBaseline` it is linear motion. Needs antspyx.
    ``iterations``: SyN's iterations per level, coarse to fine (ANTsPy's default (40, 20, 0))."""

    def __init__(self, iterations=(40, 20, 0)):
        super().__init__()
        self.iterations = tuple(iterations)

    def forward(self, I0: torch.Tensor, I1: torch.Tensor) -> dict:
        import ants

        img = lambda x: ants.from_numpy(x[0, 0].detach().float().cpu().numpy())  # noqa: E731
        a0, a1 = img(I0), img(I1)
        out = {}
        for name, fixed, moving in (("u_01", a0, a1), ("u_10", a1, a0)):
            reg = ants.registration(
                fixed=fixed, moving=moving, type_of_transform="SyNOnly", syn_metric="CC", reg_iterations=self.iterations
            )
            field = ants.image_read(reg["fwdtransforms"][0]).numpy()  # (X, Y, Z, 3)
            out[name] = torch.from_numpy(np.ascontiguousarray(np.moveaxis(field, -1, 0)))[None].to(I0)
        return out


def ants_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ants") is not None


def ceiling_rows(patient, dataset: str, steps: int, device="cpu") -> list[dict]:
    """The privileged ceiling on every target frame: both inputs registered to the real frame
    (``register_to_frame``), then blended with weight ``1 - t`` on the first; PSNR (peak 1,
    the prediction clipped to [0, 1], as ``evaluate_methods`` scores)."""
    from interp4d_lite.metrics import psnr
    from interp4d_lite.models import warp
    from interp4d_lite.models.teacher import register_to_frame

    frames = torch.as_tensor(np.asarray(patient.frames, dtype=np.float32))
    ks = patient.target_indices
    n = len(ks)
    I0 = frames[patient.i0][None, None].expand(n, -1, -1, -1, -1).to(device)
    I1 = frames[patient.i1][None, None].expand(n, -1, -1, -1, -1).to(device)
    It = frames[ks][:, None].to(device)
    u0, u1 = register_to_frame(I0, I1, It, steps=steps)
    m = torch.tensor([1 - float(patient.times[k]) for k in ks], device=device).view(-1, 1, 1, 1, 1)
    image = (m * warp(I0, u0) + (1 - m) * warp(I1, u1)).clamp(0, 1)
    scores = psnr(image, It, reduction="none").tolist()
    return [
        {"dataset": dataset, "method": "privileged_ceiling", "patient": patient.patient_id, "frame": int(k),
         "t": round(float(patient.times[k]), 4), "psnr": float(v)}
        for k, v in zip(ks, scores)
    ]  # fmt: skip


#: the factors s tried by :func:`course_scores` (0 = stay at I0, 1 = the whole ED -> ES motion)
COURSE_SCALES = np.round(np.linspace(0.0, 1.2, 25), 3)


def course_scores(patient, steps: int, scales=COURSE_SCALES) -> dict:
    """How far along the inputs' own registration is each real in-between frame? The two inputs
    registered to each other once (as ``registered_linear_motion``), then each target frame at t
    predicted with the fields scaled by s instead of t (``u_t0 = s u_10``, ``u_t1 = (1 - s) u_01``,
    blended ``1 - t, t``) for every s of ``scales``. Returns ``{"t": (K,), "frames": (K,), "psnr":
    (K, S)}``: PSNR (peak 1, clipped to [0, 1]) per target frame and factor."""
    from interp4d_lite.metrics import psnr
    from interp4d_lite.models import InstanceRegistration, warp

    frames = torch.as_tensor(np.asarray(patient.frames, dtype=np.float32))
    I0, I1 = frames[patient.i0][None, None], frames[patient.i1][None, None]
    with torch.no_grad():
        f = InstanceRegistration(steps=steps)(I0, I1)
        s = torch.as_tensor(np.asarray(scales, dtype=np.float32)).view(-1, 1, 1, 1, 1)
        w0, w1 = (
            warp(I0.expand(len(scales), -1, -1, -1, -1), s * f["u_10"]),
            warp(I1.expand(len(scales), -1, -1, -1, -1), (1 - s) * f["u_01"]),
        )
        ts = np.array([float(patient.times[k]) for k in patient.target_indices])
        table = np.stack(
            [
                psnr(((1 - t) * w0 + t * w1).clamp(0, 1), frames[k][None, None].expand_as(w0), reduction="none")
                for k, t in zip(patient.target_indices, ts)
            ]
        )
    return {"t": ts, "frames": np.asarray(patient.target_indices), "psnr": table}


def other_half(patient):
    """The rest of a cine's beat as a series of its own, from ES round to ED (the frames after ES,
    then the frames up to ED, as a cycle wraps): what adaptation trains on when it interpolates
    ED -> ES. ``frames``, ``i0 = 0`` (ES), ``i1`` (ED), ``times`` evenly spaced, ``target_indices``
    the frames between, as :func:`course_scores` reads them."""
    from types import SimpleNamespace

    from interp4d_lite.data.windows import Window

    n_all = len(patient.frames)
    w = Window(patient.i1, n_all - patient.i1 + patient.i0, n_all)  # ES -> ED, wrapping round the cycle
    return SimpleNamespace(
        frames=np.ascontiguousarray(np.asarray(patient.frames)[w.indices]), i0=0, i1=w.gap,
        times=np.arange(w.gap + 1) / w.gap, target_indices=list(range(1, w.gap)), patient_id=patient.patient_id,
    )  # fmt: skip


def course_pairs(scores: dict, scales=COURSE_SCALES) -> str:
    """``"t:s t:s ..."``: the best factor s of each target frame at t (:func:`course_scores`)."""
    return " ".join(f"{t:.2f}:{scales[i]:.2f}" for t, i in zip(scores["t"], scores["psnr"].argmax(1)))


def course_at(scores: dict, s, scales=COURSE_SCALES) -> np.ndarray:
    """PSNR of each target frame with the fields scaled by ``s`` (one factor per frame), linearly
    interpolated between the factors :func:`course_scores` tried."""
    return np.array(
        [np.interp(si, scales, row) for si, row in zip(np.broadcast_to(s, scores["t"].shape), scores["psnr"])]
    )


def course(t, b: float, c: float) -> np.ndarray:
    """A course of motion in t with the ends fixed: ``s(t) = t + t (1 - t) (b + c t)`` (b = c = 0:
    linear motion; b > 0: the motion comes early, as a heart's ejection does)."""
    t = np.asarray(t, dtype=float)
    return t + t * (1 - t) * (b + c * t)


def fit_course(scores: list[dict]) -> tuple[float, float]:
    """The course (b, c) with the highest mean PSNR over every target frame of ``scores`` (a
    grid search over b in [-2, 2] and c in [-4, 4], steps of 0.1)."""
    best, arg = -np.inf, (0.0, 0.0)
    for b in np.round(np.arange(-2.0, 2.0001, 0.1), 2):
        for c in np.round(np.arange(-4.0, 4.0001, 0.1), 2):
            v = np.mean(np.concatenate([course_at(sc, course(sc["t"], b, c)) for sc in scores]))
            if v > best:
                best, arg = v, (float(b), float(c))
    return arg


def course_rows(courses: dict) -> tuple[list[dict], list[str]]:
    """Rows of two methods from :func:`course_scores` of each held-out scan (``{dataset:
    (patient_id, scores)}``): ``scaled_motion_ceiling``, the best factor per frame (privileged: it
    is chosen on the real frame; the most that moving along the inputs' registration by one factor
    per frame can reach), and, with two scans or more, ``registered_learned_course``, the course
    fitted on the *other* scans' frames (:func:`fit_course`) applied to this one: a model of one
    course in t, learnt without the scan. Plus one note line per scan with both courses."""
    rows, notes = [], []
    for ds, (pid, sc) in courses.items():
        best = sc["psnr"].argmax(1)
        others = [o for d, (_, o) in courses.items() if d != ds]
        b, c = fit_course(others) if others else (float("nan"), float("nan"))
        learned = course_at(sc, course(sc["t"], b, c)) if others else None
        for j, (k, t) in enumerate(zip(sc["frames"], sc["t"])):
            base = {"dataset": ds, "patient": pid, "frame": int(k), "t": round(float(t), 4)}
            rows.append({**base, "method": "scaled_motion_ceiling", "psnr": float(sc["psnr"][j, best[j]])})
            if learned is not None:
                rows.append({**base, "method": "registered_learned_course", "psnr": float(learned[j])})
        learnt = f"; learnt from the others: b {b:+.1f} c {c:+.1f}" if others else ""
        notes.append(f"course {ds}: best factor per t {course_pairs(sc)}{learnt}")
    return rows, notes


def _fold_data(fold: Path, data: dict) -> None:
    """``fold/data.json`` records what the fold trains on; a folder made from other data is refused."""
    from interp4d_lite.io_utils import atomic_write_json

    record = fold / "data.json"
    if record.is_file() and json.loads(record.read_text()) != json.loads(json.dumps(data)):
        raise SystemExit(
            f"{fold} holds checkpoints trained on other data or settings ({record}); give another --out or remove it"
        )
    fold.mkdir(parents=True, exist_ok=True)
    atomic_write_json(record, data, indent=1)


def train_fold(dataset, fold: Path, a) -> dict:
    """The fold's teacher, distilled student and student without distillation (same steps, same
    data, same seed); finished checkpoints in ``fold`` are loaded, partial ones resumed."""
    common = dict(seed=a.seed, device=a.device, progress=False, checkpoint_every=100, crop_shape=_crop(a))
    teacher_cfg = TeacherTrainConfig(steps=3 if a.quick else a.teacher_steps, **common)
    student_cfg = DistillConfig(
        steps=3 if a.quick else a.student_steps,
        lr=a.student_lr,
        **common,
        **given_config_values(a, STUDENT_FLAGS),
    )
    models = {}
    models["teacher"] = (
        load_finished(fold / "teacher.pt", teacher_cfg, "teacher")
        or fit("teacher", config=teacher_cfg, dataset=dataset, out_dir=fold)[0]
    )
    models["student"] = (
        load_finished(fold / "student.pt", student_cfg, "student")
        or fit("student", config=student_cfg, dataset=dataset, teacher=models["teacher"], out_dir=fold)[0]
    )
    models["student_nokd"] = (
        load_finished(fold / "student_nokd.pt", student_cfg, "student_nokd")
        or fit("student_nokd", config=student_cfg, dataset=dataset, out_dir=fold)[0]
    )
    return models


def _shape(a) -> tuple:
    return (32, 32, 10) if a.quick else (128, 128, 10)


def _crop(a):
    return None if a.quick else (64, 64, 10)


def leave_one_scan_out(a, out: Path) -> tuple[list, dict, list[str]]:
    """Per held-out scan: train the fold on the other cines and the phantoms, score every method on
    the scan's real phases between ED and ES. Returns ``(metric frames, adaptation reports, notes)``."""
    import pandas as pd

    shape = _shape(a)
    n_phantoms = 1 if a.quick else a.phantoms
    per_cine = 3 if a.quick else a.real_per_cine
    root = out / "loso"
    write_phantom_dataset(root / "phantoms", phantom="cardiac", n_patients=n_phantoms, shape=shape, seed=1000 + a.seed)
    phantoms = [load_patient(d, volume_shape=shape) for d in discover_patients(root / "phantoms")]
    notes = []
    use_ants = ants_available() and not a.no_ants
    if not use_ants:
        why = "--no-ants" if a.no_ants else "antspyx is not installed"
        notes.append(f"note: {why}: registered_linear_motion_ants (ANTs SyN) skipped")
    reg_steps = 5 if a.quick else 60
    rows, reports, courses, half_notes = [], {}, {}, []
    for scan in a.scans:
        t0 = time.perf_counter()
        others = [i for i in REAL_CINE_IDS if i != scan]
        fold = root / f"without_{scan}"
        data = {"train_cines": others, "shape": list(shape), "phantoms": n_phantoms, "real_share": a.real_share,
                "per_cine": per_cine, "seed": a.seed, "student_lr": a.student_lr}  # fmt: skip
        _fold_data(fold, data)
        dataset = real_and_phantom_triplets(
            load_real_cines(others, volume_shape=shape), phantoms, a.real_share, per_cine=per_cine, seed=a.seed
        )
        models = train_fold(dataset, fold, a)
        seconds_train = time.perf_counter() - t0
        p = load_real_cine(cine_id=scan)
        name = LOSO + scan
        adapted_model, report = adapted(models["student"], p, a)
        report["seconds_wall"] = round(time.perf_counter() - t0 - seconds_train, 1)
        reports[f"{name}/{scan}"] = {k: (v.__dict__ if hasattr(v, "__dict__") else v) for k, v in report.items()}
        methods = {"linear_blend": "linear_blend", "registered_linear_motion": RegisteredLinearMotion(steps=reg_steps)}
        if use_ants:
            methods["registered_linear_motion_ants"] = LinearMotionBaseline(
                AntsSyN((2, 0, 0) if a.quick else (40, 20, 0))
            )
        methods.update(student_nokd=models["student_nokd"], student=models["student"], student_adapted=adapted_model)
        rows.append(evaluate_methods(methods, [p], device=a.device, dataset=name, progress=False))
        rows.append(pd.DataFrame(ceiling_rows(p, name, 5 if a.quick else a.ceiling_steps)))
        courses[name] = (p.patient_id, course_scores(p, reg_steps))
        half_notes.append(
            f"course {name}, ES -> ED (the half of the beat adaptation trains on): best factor per t "
            + course_pairs(course_scores(other_half(p), reg_steps))
        )
        print(f"{name}: {len(dataset)} training samples, trained/loaded in {seconds_train:.0f} s", flush=True)
    c_rows, c_notes = course_rows(courses)
    rows.append(pd.DataFrame(c_rows))
    return rows, reports, notes + c_notes + half_notes


def loso_lines(summary, minutes: float) -> list[str]:
    """One MET/MISSED line per leave-one-scan-out target, from the summary's ``loso:<scan>`` rows:
    on each scan the distilled student without adaptation >= blend + 0.5 dB and >= registered
    linear motion, the adapted student at mid-cycle >= blend + 1.0 dB with ``minutes`` <= 5; over
    the scans the distilled student > the one without distillation on average."""
    scans = [d for d in summary["dataset"].unique() if str(d).startswith(LOSO)]
    lines = []

    def target(ok: bool, text: str) -> None:
        lines.append(("MET    " if ok else "MISSED ") + text)

    for ds in scans:
        g = lambda m, s="all": _get(summary, ds, m, s, "psnr")  # noqa: E731
        k = ds[len(LOSO) :]
        blend, rlm, dist = g("linear_blend"), g("registered_linear_motion"), g("student")
        target(dist >= blend + 0.5, f"{k}: distilled student, no adaptation, {dist:.2f} >= blend {blend:.2f} + 0.5 dB")
        target(dist >= rlm, f"{k}: distilled student, no adaptation, {dist:.2f} >= registered linear motion {rlm:.2f}")
        am, bm = g("student_adapted", "mid"), g("linear_blend", "mid")
        target(
            am >= bm + 1.0 and minutes <= 5,
            f"{k}: adapted student mid-cycle {am:.2f} >= blend {bm:.2f} + 1.0 dB (--minutes {minutes:g} <= 5)",
        )
    if scans:
        dist = float(np.mean([_get(summary, ds, "student", "all", "psnr") for ds in scans]))
        nokd = float(np.mean([_get(summary, ds, "student_nokd", "all", "psnr") for ds in scans]))
        target(
            dist > nokd,
            f"distilled {dist:.2f} > no distillation {nokd:.2f} dB on average over {len(scans)} held-out scans "
            f"({dist - nokd:+.2f} dB)",
        )
    return lines


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CheckpointError as e:  # a checkpoint made with other settings: one line, nothing overwritten
        sys.exit(f"error: {e}")
