"""How good are the teacher's registration targets? Distillation only helps when what the
student is pulled toward moves the tissue better than the student does on its own.

On held-out phantoms of ``bench_proof.py``'s set-up (same shapes, amplitudes and seeds), the
inputs of every second intermediate frame are registered to the true frame by instance
optimisation (``models.teacher.register_images``, what the teacher's targets and refinement
run) under several settings; prints ``epe_moving`` (voxels, where the true motion exceeds 1
voxel) of the fields found, beside the linear-motion oracle's and zero motion's. The Gaussian
blur (``blur``, voxels) removes the half-voxel drift that noise causes in static tissue
(docs/METHOD.md, section 11); this shows what it costs where the tissue moves.

    .venv/bin/python benchmarks/bench_targets.py
    .venv/bin/python benchmarks/bench_targets.py --datasets cardiac --blurs 0 1 --steps 20
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: passive OpenMP waits on shared cores

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_proof import AMPLITUDES, SHAPES  # noqa: E402

from interp4d_lite.data import discover_patients, load_patient  # noqa: E402
from interp4d_lite.data.phantoms import write_phantom_dataset  # noqa: E402
from interp4d_lite.metrics import epe_moving  # noqa: E402
from interp4d_lite.models.teacher import REGISTRATION_BLUR, register_images  # noqa: E402


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["cardiac", "lung"], choices=["cardiac", "lung"])
    p.add_argument("--blurs", nargs="+", type=float, default=[0.0, 0.5, REGISTRATION_BLUR])
    p.add_argument("--steps", nargs="+", type=int, default=[20, 60], help="Adam steps (20: the targets' default)")
    p.add_argument("--smooth", type=float, default=0.5, help="smoothness weight (the targets' default)")
    p.add_argument("--patients", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="bench_proof's seed: its held-out patients")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse(argv)
    torch.set_num_threads(a.threads)
    print(f"{'dataset':<8} {'method':<34} {'epe_moving (vox)':>16}")
    for kind in a.datasets:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            shape = SHAPES[kind]
            write_phantom_dataset(
                root, phantom=kind, n_patients=a.patients, shape=shape, amplitude=AMPLITUDES[kind], seed=2000 + a.seed
            )
            patients = [load_patient(d, data_kind=kind, volume_shape=shape) for d in discover_patients(root)]
        frames = [(p, k) for p in patients for k in p.target_indices[::2]]

        def mean_epe(fields_of) -> float:
            vals = []
            for p, k in frames:
                u0, u1 = fields_of(p, k)
                j = k - p.i0
                vals.append(epe_moving(u0, u1, p.u_t0[j], p.u_t1[j]))
            return float(np.nanmean(vals))

        def oracle(p, k):
            t, j = float(p.times[k]), p.i1 - p.i0
            return t * p.u_t0[j], (1 - t) * p.u_t1[0]

        print(f"{kind:<8} {'zero motion':<34} {mean_epe(lambda p, k: (0 * p.u_t0[0], 0 * p.u_t0[0])):>16.3f}")
        print(f"{kind:<8} {'linear_motion_oracle':<34} {mean_epe(oracle):>16.3f}")
        for steps in a.steps:
            for blur in a.blurs:

                def registered(p, k, steps=steps, blur=blur):
                    f = torch.as_tensor(np.asarray(p.frames, dtype=np.float32))
                    I0, I1, It = (f[i][None, None] for i in (p.i0, p.i1, k))
                    u0, u1 = register_images((I0, I1), (It, It), steps=steps, smooth=a.smooth, blur=blur)
                    return u0[0].numpy(), u1[0].numpy()

                name = f"registered, {steps} steps, blur {blur:g}"
                print(f"{kind:<8} {name:<34} {mean_epe(registered):>16.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
