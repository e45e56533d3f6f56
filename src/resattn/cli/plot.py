"""`resattn plot RUN_DIR`: training curves as a PNG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..engine.logger import read_metrics as read_metrics_lines
from ..errors import UserError


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="training curves of a run as a PNG",
                       description="Plot the loss (per logged step and per epoch), train vs "
                                   "val accuracy (EMA and test where logged) and the learning "
                                   "rate of a run (its metrics.jsonl and steps.jsonl) into a "
                                   "PNG, by epoch or by training time.")
    p.add_argument("run_dir", metavar="RUN_DIR",
                   help="a run directory (its metrics.jsonl and steps.jsonl)")
    p.add_argument("--out", default=None, help="PNG path (default RUN_DIR/curves.png)")
    p.add_argument("--x", choices=("epoch", "time"), default="epoch",
                   help="horizontal axis: epochs, or training wall-clock minutes (accuracy "
                        "against time) [default epoch]")
    p.set_defaults(command=name)


def _read(path: Path, key: str) -> tuple[list[dict], int]:
    try:
        return read_metrics_lines(path, key)
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or exc})") from None


def read_metrics(run_dir: Path) -> tuple[list[dict], list[dict]]:
    """The run's epoch rows and logged steps; a run still in its first epoch has steps only."""
    path, step_path = run_dir / "metrics.jsonl", run_dir / "steps.jsonl"
    if not path.is_file() and not step_path.is_file():
        raise UserError(f"{path} not found; pass a run directory written by resattn train")
    rows, bad = _read(path, "epoch") if path.is_file() else ([], 0)
    steps, bad_steps = _read(step_path, "step") if step_path.is_file() else ([], 0)
    if not rows and not steps:
        raise UserError(f"{path} holds no finished epoch yet" if not bad else
                        f"{path} holds no readable epoch row ({bad} unreadable lines)")
    for count, where in ((bad, path), (bad_steps, step_path)):
        if count:
            print(f"resattn plot: skipped {count} unreadable line(s) of {where}",
                  file=sys.stderr)
    return rows, steps


def run(args: argparse.Namespace) -> int:
    from ..viz import save_figure, training_curves

    run_dir = Path(args.run_dir)
    rows, steps = read_metrics(run_dir)
    out = Path(args.out) if args.out else run_dir / "curves.png"
    print(save_figure(training_curves(rows, title=run_dir.name, x=args.x, steps=steps), out))
    return 0
