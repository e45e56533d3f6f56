"""`resattn predict CKPT IMAGE_OR_FOLDER...`: top-k classes for the user's own images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..api.images import IMAGE_EXTENSIONS, ImageReadError, image_files, load_rgb
from ..api.inference import Predictor
from ..errors import UserError
from .common import (
    DEFAULT_MODEL,
    add_amp_arg,
    add_device_arg,
    add_int8_args,
    add_source_arg,
    add_weights_arg,
    one_line,
)


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description="Classify images (PNG, JPEG, BMP, WebP, TIFF; any size and "
                                   "mode) with a trained checkpoint. Folders are searched "
                                   "recursively. Exit code 1 if any file could not be read.")
    add_source_arg(p)
    p.add_argument("paths", nargs="*", metavar="IMAGE_OR_FOLDER",
                   help=f"images or folders of images; with an image alone, the published "
                        f"{DEFAULT_MODEL} classifies it")
    p.add_argument("--topk", type=int, default=5,
                   help="how many classes to show per image (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="images per forward pass (default: %(default)s)")
    add_device_arg(p)
    add_amp_arg(p)
    add_weights_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--data-dir", default=None, help="the run's dataset, for --int8 calibration")
    add_int8_args(p)
    p.set_defaults(command=name)


def model_and_paths(first: str, paths: list[str]) -> tuple[str, list[str]]:
    """MODEL IMAGE...; or an image alone, for the default published weights (said on stderr)."""
    if paths:
        return first, paths
    if Path(first).suffix.lower() in IMAGE_EXTENSIONS:
        print(f"resattn predict: no model given, so the published {DEFAULT_MODEL} (CIFAR-10's "
              f"10 classes) classifies it; name a model first for another: resattn predict "
              "MODEL IMAGE...", file=sys.stderr)
        return DEFAULT_MODEL, [first]
    raise UserError("the first argument is a model or a tag, then images or folders: resattn "
                    f"predict MODEL IMAGE_OR_FOLDER... (e.g. resattn predict {DEFAULT_MODEL} "
                    "photo.jpg)")


def run(args: argparse.Namespace) -> int:
    if args.topk < 1 or args.batch_size < 1:
        raise UserError("--topk and --batch-size must be >= 1")
    args.checkpoint, args.paths = model_and_paths(args.checkpoint, args.paths)
    predictor = Predictor(args.checkpoint, weights=args.weights, device=args.device,
                          amp=args.amp, int8=args.int8,
                          calibration_images=args.calibration_images, data_dir=args.data_dir)
    classes = predictor.classes
    k = min(args.topk, len(classes))
    files = image_files(args.paths)
    if not files:
        raise UserError("no image files found in the given paths")
    results: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    for start in range(0, len(files), args.batch_size):
        images, names = [], []
        for path in files[start:start + args.batch_size]:
            try:
                images.append(load_rgb(path))
                names.append(path)
            except ImageReadError as exc:
                failed.append({"path": str(path), "error": str(exc)})
                print(f"resattn predict: skipping {one_line(path)}: {exc}", file=sys.stderr)
        if not images:
            continue
        probs = predictor(images)
        top = probs.topk(k, dim=1)
        for path, p, i in zip(names, top.values.tolist(), top.indices.tolist()):
            results.append({"path": str(path), "top": [
                {"class": classes[c], "index": c, "prob": prob} for c, prob in zip(i, p)]})
    if args.json:
        print(json.dumps({"checkpoint": str(args.checkpoint), **predictor.precision,
                          "predictions": results, "failed": failed}, indent=2))
    else:
        for r in results:
            best = ", ".join(f"{t['class']} {t['prob']:.1%}" for t in r["top"])
            print(f"{one_line(r['path'])}: {best}")
    return 1 if failed else 0
