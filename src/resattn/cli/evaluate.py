"""`resattn evaluate CKPT`: loss, top-1, top-5 and per-class accuracy on the test or val split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..data import BatchTransform
from ..engine.checkpoint import load_checkpoint
from ..engine.loop import evaluate
from ..errors import UserError
from .common import (
    add_int8_args,
    int8_model,
    load_data,
    model_from_checkpoint,
    resolve_amp,
    resolve_device,
)


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="evaluate a checkpoint",
                       description="Evaluate a checkpoint; the model and the data splits are "
                                   "rebuilt from the checkpoint alone.")
    p.add_argument("checkpoint", metavar="CKPT", help="a .pt file or a run directory")
    p.add_argument("--split", choices=("test", "val"), default="test")
    p.add_argument("--test-subset", type=int, default=0, metavar="N",
                   help="evaluate a seeded, stratified subset of N test images (default 0: the "
                        "whole test set, whatever subset the run itself used)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--tta", action="store_true", help="average with the mirrored image")
    p.add_argument("--batch-size", type=int, default=None,
                   help="default: the run's own evaluation batch size")
    p.add_argument("--weights", choices=("auto", "raw", "ema"), default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--confusion", default=None, metavar="OUT.png",
                   help="also draw the confusion matrix into this PNG")
    p.add_argument("--save-predictions", default=None, metavar="FILE.json",
                   help="write the predicted class index of every image, in split order")
    add_int8_args(p)
    p.set_defaults(command=name)


def run(args: argparse.Namespace) -> int:
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size {args.batch_size} is not valid; it must be >= 1")
    ckpt = load_checkpoint(args.checkpoint)
    model, cfg = model_from_checkpoint(ckpt, args.weights)
    if args.data_dir is not None:
        cfg.data_dir = args.data_dir
    if args.batch_size is not None:
        cfg.eval_batch_size = args.batch_size
    if args.test_subset < 0:
        raise UserError(f"--test-subset {args.test_subset} is not valid; it must be >= 0")
    cfg.test_subset = args.test_subset
    device = resolve_device(args.device)
    amp = resolve_amp(args.amp, device)
    data = load_data(cfg, device, progress=not args.json)
    loader = data.test if args.split == "test" else data.val
    if loader is None:
        raise UserError(f"this run has no {args.split} split (e.g. --val-size 0); "
                        "use --split test")
    # the checkpoint's own normalisation, exactly as in training
    loader.transform = BatchTransform(loader.transform.cfg, ckpt["mean"], ckpt["std"],
                                      len(ckpt["classes"])).to(device)
    precision = {"precision": amp if amp != "off" else "fp32"}
    channels_last = cfg.channels_last
    if args.int8:  # calibrates on the training split just loaded (on the CPU)
        model, precision = int8_model(model, cfg, ckpt, args.calibration_images, device,
                                      data=data)
        amp, channels_last = "off", False
    else:
        model.to(device)
        if channels_last:  # the run's own memory format: the same kernels, the same numbers
            model.to(memory_format=torch.channels_last)
    metrics = evaluate(model, loader, device, len(ckpt["classes"]), amp, channels_last,
                       tta=args.tta, return_predictions=args.save_predictions is not None)
    if args.save_predictions:
        # which image each prediction is: its position in the dataset's own files (CIFAR: the
        # test batch, or the training batches for val), or its path (image folders)
        data_set = getattr(loader, "data", None)  # CIFAR: an ImageSet, which keeps its index
        if data_set is not None:
            images = data_set.index.tolist()
        else:
            split = getattr(getattr(loader, "dataset", None), "split", None)
            images = [str(p) for p in split.paths] if split is not None else []
        if len(images) != len(metrics["predictions"]):
            images = None  # unreadable files were dropped: positions no longer line up
        Path(args.save_predictions).write_text(json.dumps(
            {"split": args.split, "classes": ckpt["classes"],
             "predictions": metrics["predictions"], "images": images}) + "\n")
    classes = ckpt["classes"]
    if args.confusion:
        from ..viz import confusion_figure, save_figure

        save_figure(confusion_figure(metrics["confusion"], classes,
                                     f"{cfg.model} {args.split}: top-1 {metrics['top1']:.2%}"),
                    args.confusion)
    result = {"checkpoint": str(args.checkpoint), "model": cfg.model, "split": args.split,
              "images": metrics["count"], "loss": metrics["loss"], "top1": metrics["top1"],
              "top5": metrics["top5"], "tta": args.tta, **precision,
              "per_class": dict(zip(classes, metrics["per_class"])),
              "confusion": metrics["confusion"]}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{cfg.model} on {cfg.dataset} {args.split} ({metrics['count']} images"
          f"{', flip TTA' if args.tta else ''}, {precision['precision']}): "
          f"loss {metrics['loss']:.4f}, "
          f"top-1 {metrics['top1']:.2%}, top-5 {metrics['top5']:.2%}")
    width = max(len(c) for c in classes)
    for name, acc in zip(classes, metrics["per_class"]):
        print(f"  {name.ljust(width)}  {acc:.2%}")
    return 0
