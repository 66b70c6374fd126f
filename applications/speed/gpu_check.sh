#!/usr/bin/env bash
# The GPU checks in one run: CUDA correctness tests, the eager and compiled speed
# benchmark, and the demo on the GPU. Results go under $OUT (default /tmp/otgrad-gpu).
# Run from the repository's root:
#   bash applications/speed/gpu_check.sh
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/otgrad-gpu}
mkdir -p "$OUT/demo"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
} 2>&1 | tee "$OUT/gpu.txt"
timeout 200 python3 -m pytest -q -p no:cacheprovider -o addopts="" -x tests 2>&1 \
  | tail -25 | tee "$OUT/tests.txt"
timeout 150 python3 -m applications.speed.core_speed --device cuda \
  --out "$OUT/core_speed_cuda.json" 2>&1 | tee "$OUT/bench.txt"
timeout 60 python3 -m otgrad.cli demo --device cuda --out "$OUT/demo" 2>&1 | tee -a "$OUT/bench.txt"
timeout 240 python3 -m applications.speed.core_speed --device cuda --sections compiled \
  --out "$OUT/core_speed_cuda_compiled.json" 2>&1 | tee -a "$OUT/bench.txt"
