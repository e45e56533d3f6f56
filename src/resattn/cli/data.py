"""`resattn data`: fetch (if needed), verify and summarise a dataset and its splits;
`resattn data shard ROOT OUT`: pack an image folder into tar shards."""

from __future__ import annotations

import argparse
import json

import torch

from ..api import load_data, write_shards
from ..config import SECTIONS, resolve
from .common import add_progress_arg, shows_progress
from .options import add_config_options, overrides

DATA_KEYS = set(SECTIONS["data"]) - {"input_size", "workers"}


def add_data_args(p: argparse.ArgumentParser) -> None:
    """The data flags of a subcommand that reads a dataset: generated from the options."""
    add_config_options(p, ("data",), only=DATA_KEYS)


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description="Fetch (if missing), verify by MD5 and summarise a dataset "
                                   "with its train / val / test splits.")
    add_data_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    add_progress_arg(p, "no download bar (--json has none either)")
    p.set_defaults(command=name, data_command=None)
    actions = p.add_subparsers(dest="data_command", metavar="{shard}",
                               help="shard: pack an image folder into tar shards (without "
                                    "it: summarise the dataset; default)")
    shard = actions.add_parser(
        "shard", help="pack an image folder into tar shards (dataset shards)",
        description="Pack ROOT/{train,val,test}/<class>/<image> into OUT/<split>-NNNNNN.tar "
                    "(WebDataset's layout, images shuffled across shards) and OUT/index.json "
                    "(SHA-256 of every shard). Train from them with --dataset shards "
                    "--data-dir OUT. Run it again after an interruption to finish; run it "
                    "again when done to verify every shard's hash.")
    shard.add_argument("root", metavar="ROOT", help="an image folder (ROOT/train/<class>/...)")
    shard.add_argument("out", metavar="OUT", help="an empty or new folder for the shards")
    shard.add_argument("--shard-size", type=int, default=1000, metavar="IMAGES",
                       help="images per shard (default: %(default)s, about 110 MB of "
                            "ImageNet JPEGs); at least one training shard per process")
    shard.add_argument("--seed", type=int, default=0,
                       help="seed of the shuffle across shards (default: %(default)s)")
    add_progress_arg(shard, "no progress bar", parent_has_it=True)


def run_shard(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    bars: list = []  # made at the first shard: a mistake in the folder prints only its error

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="shard", desc="shard", dynamic_ncols=True,
                             disable=not args.progress))
        bars[0].update(done - bars[0].n)

    try:
        index = write_shards(args.root, args.out, args.shard_size, args.seed, progress)
    finally:
        for bar in bars:
            bar.close()
    counts = {name: sum(s["count"] for s in shards) for name, shards in index["splits"].items()}
    print(f"{args.out}: " + ", ".join(f"{name} {counts[name]} images in {len(shards)} shard"
                                      f"{'' if len(shards) == 1 else 's'}"
                                      for name, shards in index["splits"].items()) +
          f", {len(index['classes'])} classes; train with --dataset shards --data-dir {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.data_command == "shard":
        return run_shard(args)
    cfg = resolve(overrides=overrides(args))
    bundle = load_data(cfg, torch.device("cpu"), batch_size=256,
                       progress=shows_progress(args))
    summary = {"dataset": cfg.dataset, **bundle.info, "classes": bundle.classes,
               "input_size": bundle.input_size}
    in_memory = getattr(bundle.train, "data", None)  # CIFAR: the images and labels
    if in_memory is not None:
        counts = torch.bincount(in_memory.labels, minlength=bundle.num_classes)
        summary["train_per_class"] = counts.tolist()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{cfg.dataset}: train {summary['train_size']}, val {summary['val_size']}, "
          f"test {summary['test_size']} images, {bundle.num_classes} classes, "
          f"{summary['noisy_labels']} noisy training labels")
    print("classes: " + ", ".join(bundle.classes[:20]) +
          (" ..." if bundle.num_classes > 20 else ""))
    return 0
