"""`resattn visualize MODEL IMAGE... --out DIR`: one PNG per image with every soft mask
overlaid; the model work is `resattn.api.Explainer`, the picture `Explanation.save`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..api.explain import Explainer
from ..api.images import ImageReadError, image_files, load_rgb
from ..errors import UserError
from ..viz.masks import SCALES
from .common import add_device_arg, add_source_arg, add_weights_arg, one_line


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description="For each image, a PNG with the input (and the original "
                                   "when the model saw a resized crop), the soft mask of every "
                                   "attention module (mean over channels, or chosen channels) "
                                   "overlaid as a heat map with a colour bar, the predicted "
                                   "class, and the true class when the image's folder names "
                                   "one; with --method gradcam, Grad-CAM beside the masks.")
    add_source_arg(p)
    p.add_argument("paths", nargs="+", metavar="IMAGE_OR_FOLDER",
                   help="images or folders of images (searched recursively)")
    p.add_argument("--out", required=True, help="folder for the PNG files")
    p.add_argument("--channels", type=int, nargs="+", default=None,
                   help="show these mask channels instead of the mean over channels")
    p.add_argument("--scale", choices=SCALES, default="fixed",
                   help="fixed: every mask coloured on [0, 1], so pictures of different models "
                        "and images compare; stretch: each mask over its own range, labelled as "
                        "such (default: %(default)s)")
    p.add_argument("--method", choices=("mask", "gradcam"), default="mask",
                   help="mask: the soft masks; gradcam: the masks and, beside them, Grad-CAM of "
                        "the predicted class on the last feature map, divided by its maximum "
                        "(needs the [explain] extra: Captum) (default: %(default)s)")
    add_device_arg(p)
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


def picture_title(path: Path, top: tuple[str, float], classes: list[str]) -> str:
    """"x.png: predicted cat (87.0%)", and ", true dog" when the image's folder is a class
    (an image-folder dataset's train/dog/x.png)."""
    title = f"{path.name}: predicted {top[0]} ({top[1]:.1%})"
    truth = path.parent.name
    return title + (f", true {truth}" if truth in classes else "")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the PNG files")
    explainer = Explainer(args.checkpoint, device=args.device, topk=1, weights=args.weights,
                          gradcam=args.method == "gradcam")
    files = image_files(args.paths)
    if not files:
        raise UserError("no image files found in the given paths")
    names = output_names(files)
    failed = 0
    for path in files:
        try:
            image = load_rgb(path)
        except ImageReadError as exc:
            print(f"resattn visualize: skipping {one_line(path)}: {exc}", file=sys.stderr)
            failed += 1
            continue
        exp = explainer(image)
        print(one_line(exp.save(out / names[path], args.channels,
                                picture_title(path, exp.top[0], explainer.classes), args.scale)))
    return 1 if failed else 0
