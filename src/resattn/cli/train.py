"""`resattn train`: the main job. Recipe < --config file < flags; a run directory per run."""

from __future__ import annotations

import argparse

from ..api.training import train
from ..config import recipe_names
from ..errors import Interrupted
from .common import add_progress_arg
from .options import add_config_options, overrides


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description="Train a Residual Attention Network. Values come from the "
                                   "defaults, then --recipe,\nthen --config, then these flags; "
                                   "each flag's help shows its default and what the\nrecipes "
                                   "set. Without a recipe the defaults train 30 epochs at a "
                                   "constant lr 0.1:\nuse --recipe fast (short budgets) or "
                                   "--recipe paper (the paper's schedule).",
                       epilog="examples:\n"
                              "  resattn train --recipe fast --time-budget 600\n"
                              "  resattn train --recipe paper --model attention92 "
                              "--dataset cifar100\n"
                              "  resattn train --dataset folder --data-dir photos/ "
                              "--model attention56_imagenet --recipe fast\n"
                              "  resattn train --resume runs/<run> --time-budget 1200",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default=None, choices=recipe_names(),
                   help="a shipped recipe: paper (the paper's schedule) or fast (short budgets)")
    p.add_argument("--config", default=None, metavar="FILE.toml",
                   help="your own TOML file (same keys as a run's config.toml)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR|CKPT",
                   help="continue a run where it stopped, bit-exactly")
    add_progress_arg(p)
    add_config_options(p)
    p.set_defaults(command=name)


def run(args: argparse.Namespace) -> int:
    options = overrides(args)
    try:
        train(recipe=args.recipe, config_file=args.config, resume=args.resume,
              progress=args.progress, **options)
    except Interrupted as exc:
        print(str(exc))
        return 130
    return 0
