"""`resattn experiment SUITE`: regenerate a table of the paper (or the seed) with our numbers
beside it (`resattn.experiment.run_suite`). Every run is an ordinary run directory; an
interrupted suite continues where it stopped and reuses finished runs (also those of other
suites with the same configuration)."""

from __future__ import annotations

import argparse
import sys

from ..config import suite_value
from ..errors import Interrupted
from ..experiment import explain_suite, run_suite, suite_names, suite_plan
from ..saliency import METHODS
from .common import add_device_arg, add_progress_arg


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description="Run a suite of training runs and write results.md (our "
                                   "numbers next to the paper's) and a bar chart.")
    p.add_argument("suite", help=f"shipped: {', '.join(suite_names())}; or a .toml file")
    p.add_argument("--budget", default=None, metavar="seconds:N|epochs:N",
                   help="scale every run: a time budget or a number of epochs")
    p.add_argument("--recipe", default="fast", help="recipe of every run (default fast)")
    p.add_argument("--seeds", type=int, default=1,
                   help="seeds per run, 0, 1, ... (or from --set seed=N on): mean and spread; "
                        "every seed validates on the same held-out images (split_seed)")
    p.add_argument("--out", default="runs/experiments",
                   help="where the suite's runs and results go (default: %(default)s)")
    add_device_arg(p, default=None)
    p.add_argument("--data-dir", default=None,
                   help="where the dataset is (default: $RESATTN_DATA_DIR, else "
                        "~/.cache/resattn)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any configuration key for every run, e.g. --set train_subset=5000")
    p.add_argument("--only", nargs="+", default=None, metavar="RUN",
                   help="run only these runs of the suite (names as in --dry-run)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their status")
    p.add_argument("--explain", type=int, default=None, metavar="IMAGES",
                   help="train nothing: measure how faithful the saliency maps of every finished "
                        "run are (resattn explain on IMAGES test images each) and write "
                        "faithfulness.md")
    p.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                   choices=METHODS,
                   help="with --explain: the saliency methods (default: mask gradcam occlusion)")
    add_progress_arg(p, "no progress bars (log lines only)")
    p.set_defaults(command=name)


def run(args: argparse.Namespace) -> int:
    overrides = dict(suite_value(item) for item in args.set)
    for key, value in (("device", args.device), ("data_dir", args.data_dir)):
        if value is not None:
            overrides[key] = value
    where = dict(out=args.out, recipe=args.recipe, budget=args.budget, seeds=args.seeds,
                 overrides=overrides, only=args.only)
    if args.dry_run:
        for p in suite_plan(args.suite, **where)[1]:
            print(f"{p.status():>7}  {p.suite_run} (seed {p.seed})  {p.run_dir}")
        return 0
    if args.explain is not None:
        target = explain_suite(args.suite, args.explain, args.methods,
                               progress=args.progress, **where)
        sys.stdout.write((target / "faithfulness.md").read_text())
        print(f"written: {target / 'faithfulness.md'}")
        return 0
    try:
        target = run_suite(args.suite, **where, progress=args.progress)
    except Interrupted as exc:
        print(f"{exc}; rerun the same command to continue the suite")
        return 130
    sys.stdout.write((target / "results.md").read_text())
    print(f"written: {target / 'results.md'}, {target / 'chart.png'}")
    return 0
