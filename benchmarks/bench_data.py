"""Data benchmarks (a script, not a timed test): prints measured times against targets.

1. generate a cardiac phantom of the default size (128x128x10, 25 frames) and its true fields
   (target <= 5 s);
2. load one ACDC-layout patient of that size (with its truth fields) and iterate all its
   triplets (target <= 1 s).

    python benchmarks/bench_data.py [--repeats 3] [--strict]

Each number is the best of ``--repeats`` runs; on a shared machine the times are inflated
by whatever else runs (the load average is printed with them).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from interp4d_lite.data import TripletDataset, load_patient, make_cardiac_phantom, write_acdc_layout
from interp4d_lite.data.phantoms import DEFAULT_FRAMES, DEFAULT_SHAPES

TARGETS = {"generate": 5.0, "load+iterate": 1.0}


def best_of(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--strict", action="store_true", help="exit 1 when a time is over its target")
    args = ap.parse_args(argv)
    shape, n_frames = DEFAULT_SHAPES["cardiac"], DEFAULT_FRAMES["cardiac"]
    print(f"cpu cores: {os.cpu_count()}, load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")

    gen_s, ph = best_of(lambda: make_cardiac_phantom(shape=shape, n_frames=n_frames, seed=0), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        write_acdc_layout(tmp, ph)

        def load_and_iterate():
            patient = load_patient(os.path.join(tmp, ph.patient_id), volume_shape=shape)
            ds = TripletDataset([patient])
            return [ds[k] for k in range(len(ds))]

        load_s, items = best_of(load_and_iterate, args.repeats)

    rows = [
        (
            "generate",
            f"cardiac phantom {'x'.join(map(str, shape))}, {n_frames} frames, fields for {ph.i1 - ph.i0 + 1} frames",
            gen_s,
        ),
        ("load+iterate", f"load one ACDC-layout patient (+truth) and iterate its {len(items)} triplets", load_s),
    ]
    ok = True
    for key, what, sec in rows:
        target = TARGETS[key]
        status = "OK" if sec <= target else "OVER TARGET"
        ok &= sec <= target
        print(f"{key:13s} {sec:6.2f} s  (target <= {target:.0f} s)  {status}  -- {what}")
    return 1 if (args.strict and not ok) else 0


if __name__ == "__main__":
    raise SystemExit(main())
