"""`resattn plot RUN_DIR`: training curves as a PNG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..engine.logger import read_metrics as read_metrics_lines
from ..errors import UserError


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="training curves of a run as a PNG",
                       description="Plot train vs val loss and accuracy (EMA and test where "
                                   "logged) and the learning rate of a run (its metrics.jsonl) "
                                   "into a PNG, by epoch or by training time.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", default=None, help="PNG path (default RUN_DIR/curves.png)")
    p.add_argument("--x", choices=("epoch", "time"), default="epoch",
                   help="horizontal axis: epochs, or training wall-clock minutes (accuracy "
                        "against time) [default epoch]")
    p.set_defaults(command=name)


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise UserError(f"{path} not found; pass a run directory written by resattn train")
    try:
        rows, bad = read_metrics_lines(path)
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or exc})") from None
    if not rows:
        raise UserError(f"{path} holds no finished epoch yet" if not bad else
                        f"{path} holds no readable epoch row ({bad} unreadable lines)")
    if bad:
        print(f"resattn plot: skipped {bad} unreadable line(s) of {path}", file=sys.stderr)
    return rows


def run(args: argparse.Namespace) -> int:
    from ..viz import save_figure, training_curves

    run_dir = Path(args.run_dir)
    rows = read_metrics(run_dir)
    out = Path(args.out) if args.out else run_dir / "curves.png"
    print(save_figure(training_curves(rows, title=run_dir.name, x=args.x), out))
    return 0
