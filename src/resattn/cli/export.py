"""`resattn export CKPT --format onnx|torchscript --out FILE`: a deployable model with its class
names and normalisation in the file's metadata; the export is checked against PyTorch."""

from __future__ import annotations

import argparse
import json

from ..api.exporting import DEFAULT_OPSET, FORMATS, OPSETS, export
from .common import add_int8_args, add_source_arg, add_weights_arg


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description="ONNX / TorchScript: the fast inference model (BN folded, "
                                   "fp32) with a dynamic batch size. Input: float (N, 3, S, S) "
                                   "RGB, (x / 255 - mean) / std; output: logits (N, classes). The "
                                   "metadata carries classes, mean, std and geometry. "
                                   "safetensors: a folder in the Hugging Face layout "
                                   "(model.safetensors, config.json, a model card README.md) "
                                   "that resattn.load_model and every command read back.")
    add_source_arg(p)
    p.add_argument("--format", choices=FORMATS, required=True,
                   help="onnx or torchscript: one deployable file; safetensors: a weights folder")
    p.add_argument("--out", required=True,
                   help="output file (.onnx / .pt), or a folder for safetensors")
    add_weights_arg(p)
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset, {OPSETS.start} to {OPSETS.stop - 1} "
                        f"(default {DEFAULT_OPSET})")
    p.add_argument("--data-dir", default=None, help="the run's dataset, for --int8 calibration")
    add_int8_args(p)
    p.add_argument("--force", action="store_true",
                   help="write even where files that are not an earlier export are: replace an "
                        "existing file; into a folder holding other files, write only "
                        "model.safetensors, config.json and README.md")
    p.add_argument("--json", action="store_true",
                   help="print one JSON document (path, format, precision; for files also "
                        "bytes, sha256, max_abs_diff)")
    p.set_defaults(command=name)


def run(args: argparse.Namespace) -> int:
    result = export(args.checkpoint, args.out, args.format, weights=args.weights,
                    opset=args.opset, int8=args.int8, data_dir=args.data_dir,
                    calibration_images=args.calibration_images, force=args.force)
    path = result["path"]
    if args.json:
        print(json.dumps(result))
    elif args.format == "safetensors":
        print(f"{path}: model.safetensors, config.json, README.md (load with "
              f"resattn.load_model({path!r}))")
    else:
        print(f"{path} ({args.format}, {result['precision']}, {result['bytes'] / 1e6:.1f} MB, "
              f"sha256 {result['sha256'][:12]}): max |logit diff| "
              f"{result['max_abs_diff']:.1e} vs PyTorch at batch 5")
    return 0
