#!/usr/bin/env bash
# The fast recipe on a CPU: attention56 with --recipe fast and a 600 s training budget on the
# real CIFAR-10; prints the summary and the CPU it ran on (test accuracy target: >= 75%).
# RESATTN_CPU_BF16=0 in front measures the fp32 path that CPUs without native bf16 take.
#   bash benchmarks/cpu_fast_recipe.sh DATA_DIR [OUT_DIR]
set -euo pipefail
data=${1:?usage: cpu_fast_recipe.sh DATA_DIR [OUT_DIR]}
out=${2:-runs/bench-cpu}
python -m resattn train --model attention56 --recipe fast --time-budget 600 \
    --data-dir "$data" --out "$out" --device cpu --no-progress
run=$(ls -td "$out"/*_attention56_cifar10 | head -n 1)
python - "$run" <<'PY'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
print(json.dumps({**{k: s[k] for k in ("model", "epochs", "steps", "train_time_s", "val_acc",
                                        "test_acc", "amp", "eval_weights", "tta")},
                  "device": s.get("environment", {}).get("device_name")}, indent=2))
status = "PASS" if s["test_acc"] >= 0.75 else "FAIL"
print(f"{status}: test accuracy {s['test_acc']:.2%} (target >= 75%)")
PY
