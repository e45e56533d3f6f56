"""`resattn plot RUN_DIR`: training curves as a PNG (`resattn.plot`)."""

from __future__ import annotations

import argparse

from ..api.curves import AXES, plot


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description="Plot the loss (per logged step and per epoch), train vs "
                                   "val accuracy (EMA and test where logged) and the learning "
                                   "rate of a run (its metrics.jsonl and steps.jsonl) into a "
                                   "PNG, by epoch or by training time.")
    p.add_argument("run_dir", metavar="RUN_DIR",
                   help="a run directory (its metrics.jsonl and steps.jsonl)")
    p.add_argument("--out", default=None, help="PNG path (default RUN_DIR/curves.png)")
    p.add_argument("--x", choices=AXES, default="epoch",
                   help="horizontal axis: epochs, or training wall-clock minutes (accuracy "
                        "against time) [default epoch]")
    p.set_defaults(command=name)


def run(args: argparse.Namespace) -> int:
    print(plot(args.run_dir, args.out, args.x, warn_as="resattn plot"))
    return 0
