"""Training curves and confusion matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..errors import UserError
from ..files import replacing


def save_figure(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a directory; give a .png file name")
    with replacing(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


COLOURS = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}


def _series(table: list[dict], key: str, scale: float = 1.0) -> list[float]:
    return [np.nan if r.get(key) is None else scale * r[key] for r in table]


def _positions(rows: list[dict], steps: list[dict], x: str) -> tuple[list, list, str]:
    """x of each epoch row and each logged step, and the axis label: epochs (fractional for
    steps) or training minutes."""
    def where(r: dict) -> float:
        if x == "epoch":
            return float(r.get("epoch", np.nan))
        return r.get("elapsed_s", np.nan) / 60

    per_epoch = steps[-1]["step"] / steps[-1]["epoch"] if steps and steps[-1].get("epoch") \
        else None
    # an epoch row sits where its training ended: a run stopped inside its epoch (a budget)
    # validated after 0.5 epochs, not after 1
    xs = [r["step"] / per_epoch if x == "epoch" and per_epoch and isinstance(r.get("step"), int)
          else where(r) for r in rows]
    return xs, [where(r) for r in steps], "epoch" if x == "epoch" else "training time (min)"


def _accuracy_panel(ax, rows: list[dict], steps: list[dict], xs: list, step_xs: list) -> int:
    """Train (per step and per epoch), validation, EMA and test accuracy; returns the number of
    points of its longest line."""
    step_acc = len(steps) if any(r.get("acc") is not None for r in steps) else 0
    if len(steps) >= 2 and step_acc:
        ax.plot(step_xs, _series(steps, "acc", 100), "-", lw=0.8, alpha=0.6,
                color="tab:blue", label="train (running, per epoch)")
    ax.plot(xs, _series(rows, "train_acc", 100), "o-", color="tab:blue", label="train")
    for key, style, label in (("val_acc", "o-", "val"), ("ema_val_acc", "o--", "val (EMA)"),
                              ("test_acc", "s-", "test"), ("ema_test_acc", "s--", "test (EMA)")):
        if any(r.get(key) is not None for r in rows):
            ax.plot(xs, _series(rows, key, 100), style, label=label,
                    color=COLOURS[label.split()[0]])
    return max(len(rows), step_acc)


def _finish(ax, title: str, xlabel: str, points: int) -> None:
    """Title, grid, legend; a panel with fewer than two points says it is too short."""
    ax.set(title=title, xlabel=xlabel)
    ax.grid(alpha=0.3)
    if points < 2:
        ax.text(0.5, 0.5, f"too short for a curve: {points} point{'s' * (points != 1)}\n"
                "(a smaller log_every logs more steps)", transform=ax.transAxes,
                ha="center", va="center", fontsize=9, color="0.35")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def training_curves(rows: list[dict], title: str = "", x: str = "epoch",
                    steps: list[dict] | None = None) -> Figure:
    """Loss, accuracy and learning rate of a run. `rows`: its epoch rows (metrics.jsonl: train
    and validation loss and accuracy; EMA and test where logged); `steps`: its logged steps
    (steps.jsonl: the batch loss and learning rate every `log_every` steps), drawn as lines
    beneath the epoch points when there are any. x: epochs (fractional for steps) or training
    wall-clock minutes (`x="time"`: accuracy against time, the figure for a time budget). A run
    too short for a line says so in the panel instead of drawing a lone dot."""
    if x not in ("epoch", "time"):
        raise ValueError(f"x must be 'epoch' or 'time', not {x!r}")
    steps = steps or []
    xs, step_xs, xlabel = _positions(rows, steps, x)
    fig = Figure(figsize=(13, 3.8), dpi=100)
    loss_ax, acc_ax, lr_ax = fig.subplots(1, 3)
    if len(steps) >= 2:
        loss_ax.plot(step_xs, _series(steps, "loss"), "-", lw=0.8, alpha=0.6,
                     color="tab:blue", label="train (batch)")
        lr_ax.plot(step_xs, _series(steps, "lr"), "-", color="tab:green", label="per step")
    else:
        lr_ax.plot(xs, _series(rows, "lr"), "o-", color="tab:green", label="end of epoch")
    loss_ax.plot(xs, _series(rows, "train_loss"), "o-", color="tab:blue", label="train (epoch)")
    if any(r.get("val_loss") is not None for r in rows):
        loss_ax.plot(xs, _series(rows, "val_loss"), "o-", color=COLOURS["val"], label="val")
    acc_points = _accuracy_panel(acc_ax, rows, steps, xs, step_xs)
    points = max(len(rows), len(steps))
    _finish(loss_ax, "loss", xlabel, points)
    _finish(acc_ax, "accuracy (%)", xlabel, acc_points)
    _finish(lr_ax, "learning rate", xlabel, points)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_figure(confusion: list[list[int]], classes: list[str], title: str = "") -> Figure:
    """Rows: true class; columns: predicted; colour: fraction of the true class."""
    counts = np.asarray(confusion, dtype=np.float64)
    frac = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    k = len(classes)
    side = max(5.0, 0.45 * k + 2)
    fig = Figure(figsize=(side, side), dpi=100)
    ax = fig.subplots()
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046)
    if k <= 30:
        ax.set_xticks(range(k), classes, rotation=90, fontsize=8)
        ax.set_yticks(range(k), classes, fontsize=8)
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=6,
                            color="white" if frac[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    fig.tight_layout()
    return fig
