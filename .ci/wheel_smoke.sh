#!/usr/bin/env bash
# The wheel is the product: build it, install it (not editable, with the export extra) into a
# clean venv, and from a folder outside the repository run every subcommand on tiny settings.
#   bash .ci/wheel_smoke.sh CIFAR10_DIR [TORCH_PIP_ARGS]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
data="$(cd "${1:?usage: wheel_smoke.sh CIFAR10_DIR}" && pwd)"
torch_spec="${2:-torch==2.13.0}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
pip="$work/venv/bin/python -m pip"
$pip install -q --upgrade pip
$pip install -q $torch_spec
$pip wheel -q --no-deps -w "$work/dist" "$repo"
wheel="$(ls "$work"/dist/resattn-*.whl)"
$pip install -q "$wheel[export]"

cd "$work"  # nothing of the repository is importable from here
export PATH="$work/venv/bin:$PATH"
python - <<'PY'
import resattn, pathlib
assert "site-packages" in resattn.__file__, resattn.__file__
PY
step() { echo "+ resattn $*"; resattn "$@" > "$work/last.log" 2>&1 || { cat "$work/last.log"; exit 1; }; }
step --version
step models
step data --data-dir "$data" --json
step train --data-dir "$data" --train-subset 256 --val-size 128 --test-subset 128 --epochs 1 \
    --batch-size 64 --out runs --no-progress
run="$(ls -d runs/*/)"
python - "$data" <<'PY'
import sys
from resattn.data import load_cifar
from PIL import Image
_, test = load_cifar("cifar10", sys.argv[1], download_ok=False, progress=False)
for i in range(3):
    Image.fromarray(test.images[i].permute(1, 2, 0).numpy()).save(f"img{i}.png")
PY
step evaluate "$run" --test-subset 128 --json
step predict "$run" img0.png img1.png img2.png --topk 3
step visualize "$run" img0.png --out masks
# without the [explain] extra: the masks and random order work, Grad-CAM says how to install it
step explain "$run" --images 8 --steps 4 --methods mask random --data-dir "$data" --out explain
test -f explain/faithfulness_curves.png
if resattn explain "$run" --images 8 --methods gradcam --data-dir "$data" > "$work/last.log" 2>&1 \
        || ! grep -q "pip install 'resattn\[explain\]'" "$work/last.log"; then
    cat "$work/last.log"; exit 1
fi
# an image folder packed into shards, trained from, and evaluated at another size
for c in 0 1; do mkdir -p "photos/train/c$c" "photos/test/c$c"; done
for i in 0 1 2; do for c in 0 1; do cp "img$i.png" "photos/train/c$c/$i.png"; done; done
cp img0.png photos/test/c0/; cp img1.png photos/test/c1/
step data shard photos shards --shard-size 2 --no-progress
step train --dataset shards --data-dir shards --model attention_test --input-size 32 \
    --val-size 2 --batch-size 2 --iterations 1 --normalization channel --workers 0 \
    --out shard-runs --no-progress
step evaluate "$(ls -d shard-runs/*/)" --input-size 40 --json
step plot "$run"
step export "$run" --format onnx --out model.onnx
step export "$run" --format torchscript --out model.pt
sha256sum -c model.onnx.sha256 > /dev/null
step export "$run" --format safetensors --out shared
step predict shared img0.png
step predict attention56.cifar10 img0.png img1.png --topk 1
step models --pretrained
step bench attention56 --seconds 1 --modes inference --inference-batch-size 8 --variants fp32
for suite in $(python -c "from resattn.experiment import suite_names; print(*suite_names())"); do
    step experiment "$suite" --dry-run --out exp
done
test -f "$work/venv/share/resattn/examples/quickstart.ipynb"
echo "wheel smoke test passed: $(basename "$wheel")"
