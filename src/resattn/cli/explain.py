"""`resattn explain MODEL --images N --methods mask gradcam occlusion --out DIR`: how faithful
each saliency method is to the model (deletion and insertion areas with intervals, against a
random order); the work is `resattn.api.faithfulness`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..api.faithfulness import DEFAULT_METHODS, faithfulness
from ..errors import UserError
from ..saliency import BASELINES, METHODS
from .common import (
    add_device_arg,
    add_progress_arg,
    add_source_arg,
    add_weights_arg,
    one_line,
    shows_progress,
)


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help, description=(
        "Deletion and insertion (RISE, Petsiuk et al. 2018) of each saliency method on a seeded "
        "draw of the model's dataset: pixels are removed from the image (or put back onto the "
        "baseline) most salient first, and the probability of the predicted class is followed. "
        "A faithful map makes it fall fast (low deletion AUC) and rise fast (high insertion "
        "AUC). Every method is compared with a random order on the same images. Writes "
        "faithfulness.json, faithfulness.md, faithfulness_curves.png and saliency_maps.png."))
    add_source_arg(p)
    p.add_argument("--split", choices=("test", "val"), default="test",
                   help="the dataset's test split, or the run's held-out validation images "
                        "(default: %(default)s)")
    p.add_argument("--images", type=int, default=500,
                   help="how many images, drawn at random with --seed (default: %(default)s)")
    p.add_argument("--methods", nargs="+", choices=METHODS,
                   default=list(DEFAULT_METHODS), metavar="METHOD",
                   help="mask (the attention masks: all modules, and each stage), gradcam, "
                        "occlusion (both need the [explain] extra: Captum); random order is "
                        "always measured as the reference (default: %(default)s)")
    p.add_argument("--steps", type=int, default=16,
                   help="points of each curve after the first (default: %(default)s)")
    p.add_argument("--baseline", choices=BASELINES, default="blur",
                   help="what a removed pixel becomes: the image blurred (Gaussian, sigma = "
                        "side/16) or the dataset mean (default: %(default)s)")
    p.add_argument("--out", default=None,
                   help="folder for the report and the pictures (default: print only)")
    p.add_argument("--data-dir", default=None,
                   help="where the model's dataset is (default: $RESATTN_DATA_DIR, else "
                        "~/.cache/resattn)")
    p.add_argument("--batch-size", type=int, default=50,
                   help="images explained together (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="the draw of images, the random order and the bootstrap (default: "
                        "%(default)s)")
    add_weights_arg(p)
    add_device_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    add_progress_arg(p, "no progress bar (--json has none either)")
    p.set_defaults(command=name)


def run(args: argparse.Namespace) -> int:
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out} is a file; give a folder for the report")
    report = faithfulness(args.checkpoint, args.split, args.images, args.methods,
                          data_dir=args.data_dir, weights=args.weights, device=args.device,
                          steps=args.steps, baseline=args.baseline, batch_size=args.batch_size,
                          seed=args.seed, progress=shows_progress(args))
    written = report.save(args.out) if args.out is not None else []
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
        return 0
    print(report.header())
    print(report.table())
    for path in written:
        print(one_line(path))
    return 0
