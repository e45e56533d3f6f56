"""Publish a trained run's weights into the package: src/resattn/weights/TAG.safetensors (fp32)
and its registry entry, with the test accuracy measured here on the full CIFAR test set (fp32,
with and without flip TTA) and how the run was made.

    python benchmarks/publish_weights.py CHECKPOINT TAG --data-dir DIR \
        --command "resattn train ..." --hardware "NVIDIA H200 ..."
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import tempfile
from pathlib import Path

import torch

import resattn
from resattn.api.sharing import save_pretrained
from resattn.engine.checkpoint import load_checkpoint
from resattn.provenance import device_name

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "resattn" / "weights"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("tag", help="MODEL.DATASET, e.g. attention56.cifar10")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--command", required=True, help="the training command, verbatim")
    ap.add_argument("--hardware", required=True, help="where it trained (GPU/CPU model)")
    ap.add_argument("--train-date", required=True)
    ap.add_argument("--trained-with", required=True, help="resattn and torch versions")
    args = ap.parse_args()

    ckpt = load_checkpoint(args.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_pretrained(args.checkpoint, Path(tmp) / "w")
        meta = json.loads((folder / "config.json").read_text())
        metrics = {}
        for tta in (False, True):
            r = resattn.evaluate(folder, data_dir=args.data_dir, tta=tta, amp="off",
                                 device="cpu", progress=False)
            suffix = "_tta" if tta else ""
            metrics.update({f"top1{suffix}": r["top1"], f"top5{suffix}": r["top5"]})
            metrics["test_images"] = r["images"]
        file = f"{args.tag}.safetensors"
        shutil.copyfile(folder / "model.safetensors", WEIGHTS / file)
    entry = {
        "model": meta["model"], "file": file, "sha256": meta["sha256"], "dtype": "float32",
        "dataset": meta["config"]["dataset"], **{k: meta[k] for k in (
            "classes", "num_classes", "input_size", "crop_pct", "normalization", "mean",
            "mean_shape", "std", "std_shape")},
        "metrics": {**metrics, "evaluated": (
            f"resattn.evaluate, fp32, {device_name(torch.device('cpu'))}, resattn "
            f"{resattn.__version__}, torch {torch.__version__}, {datetime.date.today()}")},
        "training": {"command": args.command, "hardware": args.hardware,
                     "date": args.train_date, "software": args.trained_with,
                     "epochs": round((meta.get("training") or {}).get("epochs") or (
                         ckpt["step"] * meta["config"]["batch_size"]
                         / (50_000 - meta["config"]["val_size"])), 2),  # the run's, else CIFAR
                     "steps": ckpt["step"], "train_time_s": round(ckpt["train_time_s"], 1),
                     "weights": ckpt.get("weights_source", ckpt.get("eval_weights", "raw"))},
        "config": meta["config"],
    }
    registry_path = WEIGHTS / "registry.json"
    registry = json.loads(registry_path.read_text()) if registry_path.exists() else {}
    registry[args.tag] = entry
    registry_path.write_text(json.dumps(registry, indent=1) + "\n")
    print(json.dumps({"tag": args.tag, **metrics, "sha256": entry["sha256"]}, indent=1))


if __name__ == "__main__":
    main()
