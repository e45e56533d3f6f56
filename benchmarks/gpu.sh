#!/usr/bin/env bash
# The whole GPU benchmark on one CUDA device: correctness of the CUDA paths, throughput of
# attention56 / attention92 / attention92_wide against the compute floor, then time to accuracy
# of attention56 (fast recipe tuned for the GPU, 170 s budget) and attention92 on CIFAR-10.
#   bash benchmarks/gpu.sh DATA_DIR [OUT_DIR]
set -euo pipefail
data=${1:?usage: gpu.sh DATA_DIR [OUT_DIR]}
out=${2:-runs/bench-gpu}
here=$(dirname "$0")
python "$here/gpu.py" correctness --out "$out/correctness"
python "$here/gpu.py" throughput --out "$out/throughput"
python "$here/gpu.py" accuracy --data-dir "$data" --out "$out/accuracy" \
    --models attention56 attention92 --budgets 170 170 \
    --throughput-json "$out/throughput/throughput.json"
