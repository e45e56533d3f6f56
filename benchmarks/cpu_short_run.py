"""Speed of a short CPU training run: a benchmark, never a test (tests do not read the clock).

    python benchmarks/cpu_short_run.py DATA_DIR [--max-seconds S]

Trains attention56 on a 5,000-image stratified subset of CIFAR-10 for 4 epochs at batch 64 with
the default precision (`--amp auto`: bf16 only where the CPU has AVX512-BF16 or AMX), then prints
the train time, images/s, the precision and the CPU. Target: under 120 s on the 2-core AMD EPYC
with AVX512-BF16; no target on other CPU kinds unless --max-seconds is given.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir")
    ap.add_argument("--max-seconds", type=float, default=None)
    args = ap.parse_args()
    import torch

    from resattn.provenance import device_name
    from resattn.runtime import cpu_has_native_bf16

    native = cpu_has_native_bf16()
    limit = args.max_seconds if args.max_seconds is not None else (120.0 if native else None)
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "resattn", "train", "--model", "attention56",
                        "--data-dir", args.data_dir, "--train-subset", "5000", "--val-size",
                        "1000", "--test-subset", "1000", "--epochs", "4", "--batch-size", "64",
                        "--schedule", "onecycle", "--lr", "0.2", "--warmup", "0.5",
                        "--label-smoothing", "0.1", "--device", "cpu", "--out", out,
                        "--no-progress"], check=True)
        (run,) = list(Path(out).iterdir())
        s = json.loads((run / "summary.json").read_text())
    images = s["steps"] * 64
    print(json.dumps({"cpu": device_name(torch.device("cpu")), "native_bf16": native, "threads":
                      torch.get_num_threads(), "torch": torch.__version__, "amp": s["amp"],
                      "train_time_s": round(s["train_time_s"], 1),
                      "images_per_s": round(images / s["train_time_s"], 1),
                      "val_acc": s["val_acc"]}, indent=2))
    if limit is None:
        print("no time target for this CPU kind; pass --max-seconds to set one")
        return 0
    ok = s["train_time_s"] < limit
    verdict = "PASS" if ok else "FAIL"
    print(f"{verdict}: train time {s['train_time_s']:.0f} s (target < {limit:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
