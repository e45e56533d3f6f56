"""benchmarks/gpu.sh, the GPU session's one call, dry-run on the CPU with tiny sizes
(DRY_RUN=1): every phase runs and writes what the session reads back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # three phases of real commands: about three minutes on two cores
def test_the_gpu_script_dry_runs_on_the_cpu(cifar10_dir, tmp_path):
    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable,
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), str(cifar10_dir),
                           str(tmp_path / "out")], capture_output=True, text=True, env=env,
                          timeout=1800)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    out = tmp_path / "out"
    correctness = json.loads((out / "correctness" / "correctness.json").read_text())
    assert correctness["all_ok"], correctness
    benches = json.loads((out / "throughput" / "throughput.json").read_text())["benches"]
    rows = [r for doc in benches for r in doc["results"]]
    assert rows and all("error" not in r and r["images_per_s"] > 0 for r in rows), rows
    (run,) = json.loads((out / "accuracy" / "accuracy.json").read_text())["runs"]
    assert run["model"] == "attention_test" and run["final"]["test_acc"] is not None
    # the published figures: the whole test set, with and without flip TTA
    assert run["evaluate"]["images"] == 10000 and "evaluate_tta" in run
