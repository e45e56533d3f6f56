#!/usr/bin/env bash
# The whole GPU benchmark on one CUDA device: correctness of the CUDA paths (training compiled
# as one graph, evaluate, predict, SIGKILL and resume), throughput of attention56 / attention92
# / attention92_wide at batch 512 and 1024 against the compute floor (eager and compiled), then
# time to accuracy of attention56 and attention92 on CIFAR-10 (fast recipe tuned for the GPU).
#   bash benchmarks/gpu.sh DATA_DIR [OUT_DIR]
# DRY_RUN=1 runs every phase with tiny sizes on the CPU (attention_test, a few images, no
# compilation): the script's own check, minutes on two cores; DATA_DIR may then hold a small
# CIFAR-10 made for the purpose.
set -euo pipefail
data=${1:?usage: gpu.sh DATA_DIR [OUT_DIR]}
out=${2:-runs/bench-gpu}
here=$(dirname "$0")
python=${PYTHON:-python3}  # the interpreter that has torch (and resattn, or PYTHONPATH=src)
if [[ ${DRY_RUN:-0} == 1 ]]; then
    device=(--device cpu)
    correctness=(--model attention_test --no-compile)
    throughput=(--models attention_test --batch-sizes 4 --seconds 0.05 --compiled)
    accuracy=(--models attention_test --budgets 20 --epochs 1
              --extra --train-subset 1024 --test-subset 200 --eval-batch-size 100)
else
    device=()
    correctness=()
    throughput=()
    accuracy=(--models attention56 attention92 --budgets 170 170)
fi
"$python" "$here/gpu.py" correctness --out "$out/correctness" "${device[@]}" "${correctness[@]}"
"$python" "$here/gpu.py" throughput --out "$out/throughput" "${device[@]}" "${throughput[@]}"
"$python" "$here/gpu.py" accuracy --data-dir "$data" --out "$out/accuracy" "${device[@]}" \
    --throughput-json "$out/throughput/throughput.json" "${accuracy[@]}"
