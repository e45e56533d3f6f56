"""`resattn visualize CKPT IMAGE... --out DIR`: one PNG per image with every soft mask overlaid."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ..api import load_source, model_from_checkpoint
from ..data.augment import normalize
from ..data.images import ImageReadError, load_rgb
from ..engine.predict import preprocess
from ..errors import UserError
from ..models import inference_model
from ..runtime import resolve_device
from .common import add_source_arg, add_weights_arg
from .predict import expand


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="attention-mask pictures",
                       description="For each image, a PNG with the input and the soft mask of "
                                   "every attention module (mean over channels, or chosen "
                                   "channels) overlaid as a heat map, and the predicted class.")
    add_source_arg(p)
    p.add_argument("paths", nargs="+", metavar="IMAGE_OR_FOLDER")
    p.add_argument("--out", required=True, help="folder for the PNG files")
    p.add_argument("--channels", type=int, nargs="+", default=None,
                   help="show these mask channels instead of the mean over channels")
    p.add_argument("--device", default="auto")
    add_weights_arg(p)
    p.set_defaults(command=name)


def output_names(files: list[Path]) -> dict[Path, str]:
    """`<stem>_masks.png` per image; where two images share a stem (a/ok.png, b/ok.png) their
    folders join the name (a_ok_masks.png, b_ok_masks.png), so no picture overwrites another."""
    stems: dict[str, int] = {}
    for path in files:
        stems[path.stem] = stems.get(path.stem, 0) + 1
    names = {}
    for path in files:
        if stems[path.stem] == 1:
            names[path] = f"{path.stem}_masks.png"
        else:
            names[path] = f"{path.resolve().parent.name}_{path.stem}_masks.png"
    if len(set(names.values())) < len(names):  # still equal: number them in order
        names = {p: f"{i:04d}_{p.stem}_masks.png" for i, p in enumerate(files)}
    return names


def run(args: argparse.Namespace) -> int:
    from ..viz import mask_figure, mask_maps, save_figure

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the PNG files")
    ckpt = load_source(args.checkpoint)
    model, _ = model_from_checkpoint(ckpt, args.weights)
    device = resolve_device(args.device)
    model = inference_model(model.to(device), channels_last=False)
    if not model.attention_modules():
        raise UserError(f"{ckpt['config']['model']} with residual="
                        f"{ckpt['config']['residual']} has no attention masks to show")
    classes, size = ckpt["classes"], int(ckpt["input_size"])
    files = expand(args.paths)
    if not files:
        raise UserError("no image files found in the given paths")
    names = output_names(files)
    failed = 0
    for path in files:
        try:
            if not path.is_file():
                raise ImageReadError("no such file")
            batch = preprocess([load_rgb(path)], size, float(ckpt.get("crop_pct", 1.0)))
        except ImageReadError as exc:
            print(f"resattn visualize: skipping {path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        x = normalize(batch.to(device), ckpt["mean"].to(device), ckpt["std"].to(device))
        with torch.inference_mode():
            logits, masks = model.forward_with_masks(x)
        prob, idx = logits.float().softmax(1)[0].max(0)
        maps = mask_maps({k: v[0] for k, v in masks.items()}, (size, size), args.channels)
        title = f"{path.name}: predicted {classes[int(idx)]} ({float(prob):.1%})"
        fig = mask_figure(batch[0].permute(1, 2, 0).numpy(), maps, title)
        target = save_figure(fig, out / names[path])
        print(target)
    return 1 if failed else 0
