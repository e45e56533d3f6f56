"""Validation accuracy against training time of several runs in one picture (one point per
epoch), each run's final test accuracy (flip TTA where the run used it) in the legend.

    python benchmarks/compare_runs.py OUT.png LABEL=RUN_DIR [LABEL=RUN_DIR ...] [--title T]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from matplotlib.figure import Figure

from resattn.viz.plots import save_figure


def load(run: Path) -> tuple[list[float], list[float], dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if line.strip()]
    rows = [r for r in rows if r.get("val_acc") is not None]  # --val-every skips some epochs
    summary = json.loads((run / "summary.json").read_text())
    return [r["elapsed_s"] / 60 for r in rows], [100 * r["val_acc"] for r in rows], summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("runs", nargs="+", metavar="LABEL=RUN_DIR")
    p.add_argument("--title", default="validation accuracy against training time")
    args = p.parse_args()
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for item in args.runs:
        label, _, run = item.partition("=")
        minutes, acc, summary = load(Path(run))
        ax.plot(minutes, acc, marker="o", label=f"{label}: test {100 * summary['test_acc']:.1f}%")
    ax.set(xlabel="training time (min)", ylabel="val accuracy (%)", title=args.title)
    ax.set_xlim(0, None)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left")
    print(save_figure(fig, args.out))


if __name__ == "__main__":
    main()
