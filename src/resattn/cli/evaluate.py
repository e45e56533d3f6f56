"""`resattn evaluate CKPT`: loss, top-1, top-5 and per-class accuracy on the test or val split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..api.inference import evaluate
from ..errors import UserError
from ..files import write_text
from .common import (
    add_amp_arg,
    add_device_arg,
    add_int8_args,
    add_progress_arg,
    add_source_arg,
    add_weights_arg,
    shows_progress,
)


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description="Evaluate a checkpoint; the model and the data splits are "
                                   "rebuilt from the checkpoint alone.")
    add_source_arg(p)
    p.add_argument("--split", choices=("test", "val"), default="test",
                   help="the run's test set, or its held-out validation images (default: "
                        "%(default)s)")
    p.add_argument("--test-subset", type=int, default=0, metavar="N",
                   help="evaluate a seeded, stratified subset of N test images (default 0: the "
                        "whole test set, whatever subset the run itself used)")
    p.add_argument("--data-dir", default=None,
                   help="where the run's dataset is (default: where the run found it, else "
                        "$RESATTN_DATA_DIR, else ~/.cache/resattn)")
    p.add_argument("--tta", action="store_true", help="average with the mirrored image")
    p.add_argument("--input-size", type=int, default=None, metavar="PIXELS",
                   help="image folders and shards: evaluate at this side instead of the "
                        "training one (the paper tests Attention-92 at 320), with the same "
                        "crop fraction; needs per-channel normalisation")
    p.add_argument("--batch-size", type=int, default=None,
                   help="default: the run's own evaluation batch size")
    add_weights_arg(p)
    add_device_arg(p)
    add_amp_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    add_progress_arg(p, "no progress bar (--json has none either)")
    p.add_argument("--confusion", default=None, metavar="OUT.png",
                   help="also draw the confusion matrix into this PNG")
    p.add_argument("--save-predictions", default=None, metavar="FILE.json",
                   help="write the predicted class index of every image, in split order")
    add_int8_args(p)
    p.set_defaults(command=name)


def run(args: argparse.Namespace) -> int:
    if args.save_predictions:
        check_writable(args.save_predictions)
    result = evaluate(args.checkpoint, args.split, data_dir=args.data_dir, weights=args.weights,
                      tta=args.tta, batch_size=args.batch_size, test_subset=args.test_subset,
                      device=args.device, amp=args.amp, int8=args.int8,
                      calibration_images=args.calibration_images,
                      return_predictions=args.save_predictions is not None,
                      input_size=args.input_size, progress=shows_progress(args))
    classes = result.pop("classes")
    if args.save_predictions:
        write_text(args.save_predictions, json.dumps(
            {"split": args.split, "classes": classes,
             "predictions": result.pop("predictions"), "images": result.pop("image_ids")}) + "\n")
    if args.confusion:
        from ..viz import confusion_figure, save_figure

        save_figure(confusion_figure(result["confusion"], classes,
                                     f"{result['model']} {args.split}: top-1 "
                                     f"{result['top1']:.2%}"), args.confusion)
    result = {"checkpoint": str(args.checkpoint), **result}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['model']} on {result['dataset']} {args.split} ({result['images']} images"
          f" at {result['input_size']} px{', flip TTA' if args.tta else ''}, "
          f"{result['precision']}): "
          f"loss {result['loss']:.4f}, top-1 {result['top1']:.2%}, top-5 {result['top5']:.2%}")
    width = max(len(c) for c in classes)
    for name, acc in result["per_class"].items():
        print(f"  {name.ljust(width)}  {acc:.2%}")
    return 0


def check_writable(path: str) -> None:
    """An output file we could not write after a long evaluation is refused before it."""
    out = Path(path)
    if out.is_dir():
        raise UserError(f"{out} is a directory; give a file name")
    if not out.parent.is_dir():
        raise UserError(f"the folder of {out} does not exist")
