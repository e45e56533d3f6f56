"""`plot`: a run's training curves as a PNG, from its metrics.jsonl (epoch rows) and
steps.jsonl (logged steps); `resattn plot` is this function."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..engine.logger import read_metrics as read_lines
from ..errors import InvalidOption, UserError

AXES = ("epoch", "time")


def _read(path: Path, key: str) -> tuple[list[dict[str, Any]], int]:
    try:
        return read_lines(path, key)
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or exc})") from None


def read_metrics(run_dir: str | Path, warn_as: str = "resattn") -> tuple[list[dict], list[dict]]:
    """The run's epoch rows and logged steps (a run still in its first epoch has steps only).
    Unreadable lines (cut by a crash, edited by hand) are skipped with a warning on stderr
    that starts with `warn_as`."""
    run_dir = Path(run_dir)
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
            print(f"{warn_as}: skipped {count} unreadable line(s) of {where}", file=sys.stderr)
    return rows, steps


def plot(run_dir: str | Path, out: str | Path | None = None, x: str = "epoch",
         warn_as: str = "resattn") -> Path:
    """Draw the run's loss (per logged step and per epoch), train vs val accuracy (EMA and test
    where logged) and learning rate against epochs (`x` "epoch") or training minutes ("time")
    into `out` (default RUN_DIR/curves.png, written atomically); returns the path."""
    from ..viz import save_figure, training_curves

    if x not in AXES:
        raise InvalidOption("x", x, f"choose one of {', '.join(AXES)}")
    run_dir = Path(run_dir)
    rows, steps = read_metrics(run_dir, warn_as)
    target = Path(out) if out is not None else run_dir / "curves.png"
    return save_figure(training_curves(rows, title=run_dir.name, x=x, steps=steps), target)
