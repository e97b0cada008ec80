#!/usr/bin/env bash
# One session on a GPU machine, in one go (what the model card's GPU students and the README's GPU
# column come from):
#   1. the training step's speed there: benchmarks/bench_models.py --compare --device cuda;
#   2. the cardiac student of scripts/pretrain.py trained on all four real cines plus phantoms, and
#      at once (concurrent processes on the one GPU) the same training with each real cine left
#      out, scored on that cine (the leave-one-scan-out score of the distilled student at these
#      settings); the student's steps follow from the measured speed and STUDENT_SECONDS;
#   3. benchmarks/bench_real.py --sets real_cine with the new student.
# Everything lands in $OUT (default runs/gpu): bench_models.txt, pretrain_logs.txt, folds.json,
# bench_real.txt, weights/ (the student, its pretrain_cardiac.json and model card) and
# teacher_cardiac.pt. Copy weights/* into interp4d_lite/weights/ to ship them.
#
#   OUT=runs/gpu bash scripts/gpu_session.sh            # defaults: batch 8, about 10 minutes
#   DEVICE=cpu BATCH=2 TEACHER_STEPS=4 MIN_STEPS=4 MAX_STEPS=4 SETS=scd301 \
#     EXTRA="--real-per-cine 2 --train-patients 1 --target-steps 2" \
#     BENCH="--rounds 1 --steps 1 --cases tutorial --recipes student" bash scripts/gpu_session.sh   # a dry run
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu}
WORK=${WORK:-/tmp/interp4d_gpu}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-8}
TEACHER_STEPS=${TEACHER_STEPS:-400}
STUDENT_SECONDS=${STUDENT_SECONDS:-150}
CONCURRENT_SHARE=${CONCURRENT_SHARE:-0.3} # the share of one process's speed each of five gets
MAX_STEPS=${MAX_STEPS:-20000}
MIN_STEPS=${MIN_STEPS:-200}
BENCH=${BENCH:---rounds 2 --steps 8}
PRETRAIN_TIMEOUT=${PRETRAIN_TIMEOUT:-360}
EXTRA=${EXTRA:-} # more pretrain.py options (the last of a repeated option wins)
SETS=${SETS:-pig_cine_lax scd101 scd201 scd301}
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then # packages the machine lacks, carried as wheels
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
mkdir -p "$OUT/weights" "$WORK"
started=$(date +%s)
stamp() { echo "[gpu_session] $(($(date +%s) - started)) s: $*"; }

# 1. steps per second
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
    stamp "bench_models --compare --device $DEVICE"
    timeout 150 "$PY" benchmarks/bench_models.py --compare --device "$DEVICE" --bf16 $BENCH --threads 4
} 2>&1 | tee "$OUT/bench_models.txt"

# 2. the student's steps: its measured speed at pretrain's shapes, scaled for the batch and the
#    five processes sharing the GPU
steps=$("$PY" - "$OUT/bench_models.txt" "$BATCH" "$STUDENT_SECONDS" "$CONCURRENT_SHARE" "$MAX_STEPS" "$MIN_STEPS" <<'EOF'
import re, sys
text, batch, seconds, share, cap, low = open(sys.argv[1]).read(), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
block = text.split("pretrain_cardiac", 1)[-1].split("student:", 1)[-1]
m = re.search(r"after\s+([\d.]+) steps/s wall", block)
rate = float(m.group(1)) if m else 5.0
per_step = 1.0 if batch <= 2 else 0.5 + 0.5 * 2 / batch  # a larger batch: the GPU's share of a step stays, the data's grows
print(max(low, min(cap, int(rate * per_step * share * seconds / 100) * 100)))
EOF
)
stamp "student steps $steps (batch $BATCH)" | tee -a "$OUT/bench_models.txt"

# 3. the shipped student and the four leave-one-out students, concurrently
common=(--data-kinds cardiac --device "$DEVICE" --threads 2 --real-share 0.75 --real-per-cine 64
    --teacher-steps "$TEACHER_STEPS" --student-steps "$steps" --student-lr 3e-4 --batch-size "$BATCH" --work "$WORK" $EXTRA)
pids=()
timeout "$PRETRAIN_TIMEOUT" "$PY" scripts/pretrain.py "${common[@]}" --out "$OUT/weights" >"$WORK/log_all.txt" 2>&1 &
pids+=($!)
for s in $SETS; do
    timeout "$PRETRAIN_TIMEOUT" "$PY" scripts/pretrain.py "${common[@]}" --leave-out "$s" --out "$WORK/out_$s" >"$WORK/log_$s.txt" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
stamp "pretraining done" | tee -a "$WORK/log_all.txt"
for f in "$WORK"/log_*.txt; do echo "===== $f"; tail -n 60 "$f"; done >"$OUT/pretrain_logs.txt"
"$PY" - "$WORK" "$OUT/folds.json" $SETS <<'EOF'
import json, sys
from pathlib import Path
work, out, sets = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
folds = {s: json.loads(p.read_text()) for s in sets if (p := work / f"out_{s}" / "pretrain_cardiac.json").is_file()}
Path(out).write_text(json.dumps(folds, indent=1))
for s, info in folds.items():
    r = info["metrics"]["real_cines"][s]
    print(s, "held out" if r["held_out"] else "SEEN", {k: v for k, v in r["all"].items()})
EOF
cp "$WORK/cardiac/teacher.pt" "$OUT/teacher_cardiac.pt" 2>/dev/null || true

# 4. bench_real on the real cine with the new student (in place of the package's, put back after)
if [ -f "$OUT/weights/student_cardiac.pt" ]; then
    w=interp4d_lite/weights
    mkdir -p "$WORK/shipped" && cp "$w/student_cardiac.pt" "$w/pretrain_cardiac.json" "$WORK/shipped/"
    cp "$OUT/weights/student_cardiac.pt" "$OUT/weights/pretrain_cardiac.json" "$w/"
    stamp "bench_real --sets real_cine" | tee "$OUT/bench_real.txt"
    timeout 120 "$PY" benchmarks/bench_real.py --sets real_cine --device "$DEVICE" --threads 4 --minutes 2 --no-ants \
        --teacher-dir "$WORK" --out "$WORK/bench_real" 2>&1 | tee -a "$OUT/bench_real.txt"
    cp "$WORK/shipped/student_cardiac.pt" "$WORK/shipped/pretrain_cardiac.json" "$w/"
fi
stamp "done"
