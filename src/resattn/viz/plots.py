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


def training_curves(rows: list[dict], title: str = "", x: str = "epoch") -> Figure:
    """Loss and accuracy (train vs val; EMA val, test and EMA test where logged) and the learning
    rate, by epoch (`x="epoch"`) or by training wall-clock minutes (`x="time"`, the runs'
    `elapsed_s`: accuracy against time, the figure that matters for a time budget)."""
    if x not in ("epoch", "time"):
        raise ValueError(f"x must be 'epoch' or 'time', not {x!r}")
    if x == "epoch":
        xs, xlabel = [r["epoch"] for r in rows], "epoch"
    else:
        xs, xlabel = [r.get("elapsed_s", np.nan) / 60 for r in rows], "training time (min)"

    def series(key: str) -> list[float]:
        return [np.nan if r.get(key) is None else r[key] for r in rows]

    def logged(key: str) -> bool:
        return any(r.get(key) is not None for r in rows)

    fig = Figure(figsize=(13, 3.8), dpi=100)
    loss_ax, acc_ax, lr_ax = fig.subplots(1, 3)
    loss_ax.plot(xs, series("train_loss"), "o-", label="train")
    if logged("val_loss"):
        loss_ax.plot(xs, series("val_loss"), "o-", label="val")
    loss_ax.set(title="loss", xlabel=xlabel)
    acc_ax.plot(xs, [100 * v for v in series("train_acc")], "o-", label="train")
    for key, style, label in (("val_acc", "o-", "val"), ("ema_val_acc", "o--", "val (EMA)"),
                              ("test_acc", "s-", "test"), ("ema_test_acc", "s--", "test (EMA)")):
        if logged(key):
            acc_ax.plot(xs, [100 * v for v in series(key)], style, label=label)
    acc_ax.set(title="accuracy (%)", xlabel=xlabel)
    lr_ax.plot(xs, series("lr"), "o-", color="tab:green")
    lr_ax.set(title="learning rate (end of epoch)", xlabel=xlabel)
    for ax in (loss_ax, acc_ax, lr_ax):
        ax.grid(alpha=0.3)
    loss_ax.legend()
    acc_ax.legend()
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
