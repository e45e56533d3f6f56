"""`resattn data`: fetch (if needed), verify and summarise a dataset and its splits."""

from __future__ import annotations

import argparse
import json

import torch

from ..data import DATASETS, DataConfig, build_data


def add_data_args(p: argparse.ArgumentParser) -> None:
    """The data flags every subcommand that reads a dataset shares."""
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, default=None, help="default: cifar10")
    g.add_argument("--data-dir", default=None,
                   help="where the data is (default: $RESATTN_DATA_DIR, else ~/.cache/resattn)")
    g.add_argument("--label-type", choices=("fine", "coarse"), default=None,
                   help="CIFAR-100 labels (default: fine)")
    g.add_argument("--val-size", type=int, default=None,
                   help="images held out of train for validation, stratified (default 5000; "
                        "0 = train on all)")
    g.add_argument("--label-noise", type=float, default=None,
                   help="fraction of training labels replaced by another class (paper Table 5)")
    g.add_argument("--train-subset", type=int, default=None,
                   help="train on a seeded, stratified subset of N images")
    g.add_argument("--test-subset", type=int, default=None,
                   help="evaluate on a seeded, stratified subset of N test images (quick looks)")
    g.add_argument("--no-download", dest="download", action="store_false", default=None,
                   help="never download; fail if the data is not there")


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="fetch, verify and summarise a dataset",
                       description="Fetch (if missing), verify by MD5 and summarise a dataset "
                                   "with its train / val / test splits.")
    add_data_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(command=name)


def data_config_from_args(args: argparse.Namespace, base: DataConfig | None = None) -> DataConfig:
    base = base or DataConfig()
    keys = ("dataset", "data_dir", "label_type", "val_size", "label_noise", "train_subset",
            "test_subset", "download")
    values = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    return DataConfig(**{**base.__dict__, **values})


def run(args: argparse.Namespace) -> int:
    cfg = data_config_from_args(args)
    bundle = build_data(cfg, batch_size=256, device="cpu", seed=args.seed, workers=0)
    summary = {"dataset": cfg.dataset, **bundle.info, "classes": bundle.classes,
               "input_size": bundle.input_size}
    if cfg.dataset != "folder":
        counts = torch.bincount(bundle.train.data.labels, minlength=bundle.num_classes)
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
