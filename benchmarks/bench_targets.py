"""How good are the privileged registration targets? Distillation only helps when what the
student is pulled toward moves the tissue better than the student does on its own.

Phantoms (``bench_proof.py``'s held-out set-up: same shapes, amplitudes and seeds): the inputs
of every second intermediate frame are registered to the true frame
(``models.registration.register_to_frame``, what the teacher's targets and refinement,
registered linear motion and adaptation run) under several settings; printed per setting:
``epe_moving`` (voxels, where the true motion exceeds 1 voxel), the mean drift in static tissue
(the length of the mean error vector where the true motion is below ``--static`` voxels), the
drift on a static noisy phantom (one noise-free frame, two independent noise draws: noise
alone, no motion to leak), and seconds per registration (both inputs, one thread), beside the
linear-motion oracle and zero motion. Settings: the package's (noise-corrected, no blur), the
same without the noise correction, the earlier blurred one (Gaussian sigma 1, no correction)
and, when antspyx is installed (``pip install interp4d_lite[bench]``), ANTs SyN (CC metric) as
an external yardstick.

Real cines (``--real DIR ...`` in ACDC layout, default the shipped pig cine): the privileged
PSNR, both inputs (ED, ES) registered to each real frame between them and blended with weights
``1 - t, t``, against the linear blend; PSNR on the scanner's values with peak = the series'
max - min (frames over 200 voxels wide are first brought 2x down in plane by area averaging).

One MET/MISSED line per target: ``epe_moving`` <= 0.6 x the oracle's and static drift <= 0.05
voxels on each phantom set (package setting, the most steps given).

    .venv/bin/python benchmarks/bench_targets.py
    .venv/bin/python benchmarks/bench_targets.py --datasets cardiac --steps 20 --real path/to/cine ...
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: passive OpenMP waits on shared cores
os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")  # ANTs: one thread, as the rest

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_proof import AMPLITUDES, SHAPES  # noqa: E402

from interp4d_lite.data import discover_patients, load_patient  # noqa: E402
from interp4d_lite.data.phantoms import write_phantom_dataset  # noqa: E402
from interp4d_lite.data.phantoms.common import DEFAULT_NOISE  # noqa: E402
from interp4d_lite.metrics import epe_moving  # noqa: E402
from interp4d_lite.models.registration import REGISTRATION_SETTINGS, register_to_frame  # noqa: E402
from interp4d_lite.models.warp import warp  # noqa: E402

EPE_RATIO, DRIFT_MAX = 0.6, 0.05  # the targets: epe_moving <= 0.6 x oracle, static drift <= 0.05 voxels


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--datasets",
        nargs="*",
        default=["cardiac", "lung"],
        choices=["cardiac", "lung"],
        help="phantom sets (none: real cines only)",
    )
    p.add_argument("--steps", nargs="+", type=int, default=[20, 60], help="Adam steps (20: the targets' default)")
    p.add_argument("--patients", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="bench_proof's seed: its held-out patients")
    p.add_argument("--static", type=float, default=0.1, help="true motion (voxels) below which tissue is static")
    p.add_argument(
        "--real",
        nargs="*",
        default=None,
        help="real cine folders (ACDC layout); default the shipped one, none given: no real cine",
    )
    p.add_argument(
        "--methods", nargs="+", default=list(METHODS), choices=list(METHODS),
        help="package: the package's registration; plain: without its noise correction; blur: the earlier blurred "
        "one; ants: ANTs SyN when antspyx is installed",
    )  # fmt: skip
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


METHODS = ("package", "plain", "blur", "ants")


def settings(kind: str, steps: int, methods) -> dict:
    """row name -> keyword arguments of ``register_to_frame`` of the ``methods`` asked for."""
    kw = dict(steps=steps, **REGISTRATION_SETTINGS[kind])
    rows = {
        "package": (f"package, {steps} steps", kw),
        "plain": (f"no noise correction, {steps} steps", dict(kw, noise=0)),
        "blur": (f"blur 1, no correction, {steps} steps", dict(kw, noise=0, blur=1.0)),
    }
    return dict(rows[m] for m in methods if m in rows)


def ants_available() -> bool:
    try:
        import ants  # noqa: F401
    except ImportError:
        return False
    return True


def ants_to_frame(I0, I1, It):
    """``(u_t0, u_t1)`` (1, 3, X, Y, Z) voxels by ANTs SyN (CC metric) of I0 and I1 to It: the
    mapping of each fixed voxel is read off by warping coordinate images with ANTs' transforms."""
    import ants

    fixed = ants.from_numpy(It[0, 0].numpy().astype(np.float64))
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in It.shape[2:]], indexing="ij"))
    out = []
    for image in (I0, I1):
        moving = ants.from_numpy(image[0, 0].numpy().astype(np.float64))
        reg = ants.registration(fixed, moving, type_of_transform="SyN", syn_metric="CC", syn_sampling=4, random_seed=0)
        mapped = np.stack(
            [
                ants.apply_transforms(
                    fixed, ants.from_numpy(g), reg["fwdtransforms"], interpolator="linear", defaultvalue=-1e6
                ).numpy()
                for g in grid
            ]
        )
        u = mapped - grid
        size = np.asarray(It.shape[2:]).reshape(3, 1, 1, 1)
        outside = ((mapped < -1) | (mapped > size)).any(0)  # mapped off the grid: the nearest inside voxel's value
        if outside.any():
            from scipy.ndimage import distance_transform_edt

            idx = distance_transform_edt(outside, return_distances=False, return_indices=True)
            u = u[(slice(None), *idx)]
        out.append(torch.from_numpy(u.astype(np.float32))[None])
    return tuple(out)


def drift(u, g, static: float) -> float:
    """Mean over both fields of the length of the mean error vector where the true motion < ``static``."""
    vals = []
    for p, q in zip(u, g):
        p, q = np.asarray(p), np.asarray(q)
        mask = np.linalg.norm(q, axis=0) < static
        if mask.any():
            vals.append(float(np.linalg.norm((p - q)[:, mask].mean(1))))
    return float(np.mean(vals)) if vals else float("nan")


def phantom_sets(kind: str, a):
    """``(frames, static)``: triplets ``(I0, I1, It, true_t0, true_t1, oracle_t0, oracle_t1)`` of
    every second intermediate frame of the held-out phantoms, and static triplets (each patient's
    noise-free first frame with three independent noise draws of the phantom's own kind)."""
    shape, noise = SHAPES[kind], DEFAULT_NOISE[kind]
    T = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float32))[None, None]  # noqa: E731
    out = []
    for level in (noise, 0.0):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_phantom_dataset(
                root, phantom=kind, n_patients=a.patients, shape=shape, amplitude=AMPLITUDES[kind],
                seed=2000 + a.seed, noise=level,
            )  # fmt: skip
            out.append([load_patient(d, data_kind=kind, volume_shape=shape) for d in discover_patients(root)])
    frames = []
    for p in out[0]:
        for k in p.target_indices[::2]:
            t, j = float(p.times[k]), k - p.i0
            oracle = (t * p.u_t0[p.i1 - p.i0], (1 - t) * p.u_t1[0])
            frames.append((T(p.frames[p.i0]), T(p.frames[p.i1]), T(p.frames[k]), p.u_t0[j], p.u_t1[j], *oracle))
    rng = np.random.default_rng(a.seed)
    static = []
    for p in out[1]:
        clean = np.asarray(p.frames[p.i0], dtype=np.float32)

        def noisy():
            if kind == "cardiac":  # Rician, as the cardiac phantom
                n1, n2 = rng.normal(0, noise, clean.shape), rng.normal(0, noise, clean.shape)
                return T(np.clip(np.sqrt((clean + n1) ** 2 + n2**2), 0, 1))
            return T(np.clip(clean + rng.normal(0, noise, clean.shape), 0, 1))

        static.append((noisy(), noisy(), noisy()))
    return frames, static


def real_cine(folder):
    """``(name, frames (T, X, Y, Z) in [0, 1] by the series' min and max, ED, ES)`` of an ACDC folder."""
    from interp4d_lite.data.io import find_4d_image, read_info_cfg, read_nifti_4d
    from interp4d_lite.data.real_cine import downsample_in_plane

    folder = Path(folder)
    frames, affine, _ = read_nifti_4d(find_4d_image(folder))
    if frames.shape[1] > 200 and frames.shape[1] % 2 == 0 and frames.shape[2] % 2 == 0:
        frames = np.moveaxis(downsample_in_plane(np.moveaxis(frames, 0, -1), affine)[0], -1, 0)
    info = read_info_cfg(folder / "Info.cfg")
    lo, hi = float(frames.min()), float(frames.max())
    return folder.name, (frames - lo) / (hi - lo), info["ED"] - 1, info["ES"] - 1


def psnr1(pred: torch.Tensor, gt: torch.Tensor) -> float:
    return -10 * math.log10(float((pred.double() - gt.double()).pow(2).mean()))


def main(argv=None) -> int:
    a = parse(argv)
    torch.set_num_threads(a.threads)
    use_ants = "ants" in a.methods and ants_available()
    if "ants" in a.methods and not use_ants:
        print("ANTs SyN left out: antspyx is not installed (pip install 'interp4d_lite[bench]')")
    verdicts = []
    head = f"{'dataset':<8} {'method':<36} {'epe_moving':>10} {'drift':>7} {'noise drift':>11} {'s/reg':>7}"
    print(head)
    for kind in a.datasets:
        frames, static = phantom_sets(kind, a)

        def score(fn):
            epe, dr, secs = [], [], []
            for I0, I1, It, g0, g1, o0, o1 in frames:
                t0 = time.perf_counter()
                u0, u1 = fn(I0, I1, It, o0, o1)
                secs.append(time.perf_counter() - t0)
                u0, u1 = np.asarray(u0).reshape(g0.shape), np.asarray(u1).reshape(g1.shape)
                epe.append(epe_moving(u0, u1, g0, g1))
                dr.append(drift((u0, u1), (g0, g1), a.static))
            nd = []
            for I0, I1, It in static:
                u0, u1 = fn(I0, I1, It, None, None)
                z = np.zeros(u0.shape[1:], np.float32)
                nd.append(drift((np.asarray(u0)[0], np.asarray(u1)[0]), (z, z), math.inf))
            return float(np.nanmean(epe)), float(np.mean(dr)), float(np.mean(nd)), float(np.mean(secs))

        def row(name, vals):
            e, d, nd, s = vals
            line = f"{kind:<8} {name:<36} {e:>10.3f} {d:>7.3f} {nd:>11.3f} {s:>7.2f}"
            print(line, flush=True)
            return vals

        zero = lambda I0, I1, It, o0, o1: (torch.zeros(3, *It.shape[2:]), torch.zeros(3, *It.shape[2:]))  # noqa: E731
        row("zero motion", score(zero))
        oracle = row(
            "linear_motion_oracle",
            score(lambda I0, I1, It, o0, o1: (o0, o1) if o0 is not None else zero(I0, I1, It, o0, o1)),
        )
        package = None
        for steps in a.steps:
            for name, kw in settings(kind, steps, a.methods).items():
                vals = row(name, score(lambda I0, I1, It, o0, o1, kw=kw: register_to_frame(I0, I1, It, **kw)))
                if name.startswith("package") and steps == max(a.steps):
                    package = vals
        if use_ants:
            row("ANTs SyN (CC)", score(lambda I0, I1, It, o0, o1: ants_to_frame(I0, I1, It)))
        if package is None:
            continue
        e, d = package[0], package[1]
        verdicts.append(
            f"{'MET' if e <= EPE_RATIO * oracle[0] else 'MISSED'}: {kind} targets' epe_moving {e:.3f} <= "
            f"{EPE_RATIO} x oracle {oracle[0]:.3f} = {EPE_RATIO * oracle[0]:.3f}"
        )
        verdicts.append(
            f"{'MET' if d <= DRIFT_MAX else 'MISSED'}: {kind} targets' drift in static tissue {d:.3f} <= {DRIFT_MAX} voxels "
            f"(noise drift on the static phantom {package[2]:.3f})"
        )

    folders = [None] if a.real is None else a.real  # None: the shipped cine
    print(f"\n{'cine':<14} {'method':<36} {'PSNR':>7} {'vs blend':>9} {'s/reg':>7}")
    steps = max(a.steps)
    for folder in folders:
        if folder is None:
            from interp4d_lite.data.real_cine import real_cine_path

            folder = real_cine_path()
        name, f, i0, i1 = real_cine(folder)
        T = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float32))[None, None]  # noqa: E731
        ks = list(range(i0 + 1, i1))
        blend = float(
            np.mean(
                [psnr1((1 - (k - i0) / (i1 - i0)) * T(f[i0]) + (k - i0) / (i1 - i0) * T(f[i1]), T(f[k])) for k in ks]
            )
        )
        print(f"{name:<14} {'linear blend':<36} {blend:>7.2f} {0:>+9.2f} {'':>7}")
        methods = settings("cardiac", steps, a.methods)
        if use_ants:
            methods["ANTs SyN (CC)"] = "ants"
        for mname, kw in methods.items():
            vals, secs = [], []
            for k in ks:
                t = (k - i0) / (i1 - i0)
                I0, I1, It = T(f[i0]), T(f[i1]), T(f[k])
                t0 = time.perf_counter()
                u0, u1 = ants_to_frame(I0, I1, It) if kw == "ants" else register_to_frame(I0, I1, It, **kw)
                secs.append(time.perf_counter() - t0)
                with torch.no_grad():
                    vals.append(psnr1((1 - t) * warp(I0, u0) + t * warp(I1, u1), It))
            p = float(np.mean(vals))
            print(
                f"{name:<14} {'privileged: ' + mname:<36} {p:>7.2f} {p - blend:>+9.2f} {np.mean(secs):>7.2f}",
                flush=True,
            )
    print()
    print("\n".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
