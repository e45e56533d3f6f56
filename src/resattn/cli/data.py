"""`resattn data`: fetch (if needed), verify and summarise a dataset and its splits."""

from __future__ import annotations

import argparse
import json

import torch

from ..api import load_data
from ..config import SECTIONS, resolve
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
    p.set_defaults(command=name)


def run(args: argparse.Namespace) -> int:
    cfg = resolve(overrides=overrides(args))
    bundle = load_data(cfg, torch.device("cpu"), batch_size=256, progress=not args.json)
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
