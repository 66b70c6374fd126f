#!/usr/bin/env bash
# One GPU session of the inverse study's long training runs, within a fixed wall-clock
# deadline: seconds per training iteration of each architecture (alone on the device), then
# training sessions of the named runs side by side (each resumes from runs/NAME/train_state.pt,
# stops at an epoch boundary before the deadline, and tunes and denoises BSD68 if it finishes),
# with the CUDA tests beside them. Float32 throughout (TF32 off). Results go under $OUT; the
# run folders come back as $OUT/runs.tgz. Run from the repository's root:
#   DATA=../shared/data RUNS="crr modular" DEADLINE=560 bash applications/inverse/gpu_session.sh
# A dry run on the CPU: DEVICE=cpu EXTRA=--quick ROOT=/tmp/dry/runs DEADLINE=120 bash applications/inverse/gpu_session.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 NVIDIA_TF32_OVERRIDE=0 OMP_NUM_THREADS=2
OUT=${OUT:-/tmp/otgrad-gpu}
DATA=${DATA:-../shared/data}
DEVICE=${DEVICE:-cuda}
RUNS=${RUNS:-crr modular cascade modular64}  # the first alone if it can finish
DEADLINE=${DEADLINE:-560}  # seconds from the start: every process is stopped by then
ITERATIONS=${ITERATIONS:-18000}
ROOT=${ROOT:-runs}  # the run folders
EXTRA=${EXTRA:-}
mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"
} > "$OUT/device.txt" 2>&1

timeout 120 python3 -m applications.inverse --tasks train-speed --data-dir "$DATA" \
  --device "$DEVICE" --out "$OUT/speed" $EXTRA > "$OUT/speed.txt" 2>&1

arch() {
  case $1 in
    crr) echo "--arch crr" ;;
    crr64) echo "--arch crr --channels 1,8,64" ;;
    cascade) echo "--arch cascade --layers 2" ;;
    modular) echo "--arch modular --modules 8" ;;
    modular64) echo "--arch modular --modules 16 --channels 1,8,64" ;;
    *) echo "unknown run $1" >&2; return 1 ;;
  esac
}
# the first run alone if it can finish and be tuned before the deadline, else all side by side
RUNS=$(python3 - "$OUT/speed/inverse_train_speed.json" "$ROOT" "$RUNS" "$ITERATIONS" \
  $((DEADLINE - SECONDS - 180)) <<'PY'
import json, os, sys
import torch
speed, root, runs, iterations, window = sys.argv[1:]
first = runs.split()[0]
rows = json.load(open(speed))["networks"]
spec = {"crr": ("crr", [1, 8, 32]), "cascade": ("cascade", [1, 8, 32]),
        "modular": ("modular", [1, 8, 32]), "crr64": ("crr", [1, 8, 64]),
        "modular64": ("modular", [1, 8, 64])}[first]
sec = next(r["seconds_per_iteration"] for r in rows if (r["arch"], r["channels"]) == spec)
state = os.path.join(root, first, "train_state.pt")
done = torch.load(state, weights_only=True)["history"]["steps"] if os.path.exists(state) else 0
alone = sec * (int(iterations) - done) <= float(window)
print(f"{first}: {done} steps done, {sec:.3f} s per step alone", file=sys.stderr)
print(first if alone else runs)
PY
) || RUNS=${RUNS%% *}
echo "runs: $RUNS"
(nvidia-smi dmon -s u -d 10 > "$OUT/utilization.txt" 2>&1 &)
for name in $RUNS; do
  mkdir -p "$ROOT/$name"
  left=$((DEADLINE - SECONDS))
  # training stops about 40 s before the deadline (the first epoch always ends)
  timeout "$left" python3 -m applications.inverse --tasks train,denoise --methods convex \
    --data-dir "$DATA" --iterations "$ITERATIONS" --t-steps 10 $(arch "$name") \
    --out "$ROOT/$name" --device "$DEVICE" --time-limit $((left - 40)) --progress \
    --no-figures $EXTRA > "$ROOT/$name/log-$DEVICE.txt" 2>&1 &
done
timeout $((DEADLINE - SECONDS)) python3 -m pytest -q -p no:cacheprovider -o addopts="" \
  tests/test_cuda.py > "$OUT/tests.txt" 2>&1
wait
tar czf "$OUT/runs.tgz" -C "$(dirname "$ROOT")" "$(basename "$ROOT")"
for name in $RUNS; do echo "== $name"; tail -c 600 "$ROOT/$name/log-$DEVICE.txt"; echo; done
tail -3 "$OUT/tests.txt"
cat "$OUT/speed.txt" "$OUT/device.txt"
echo "elapsed $SECONDS s"
