"""Everything a run writes: config.toml, metrics.jsonl, TensorBoard events, summary.json, and the
console (progress bars, one line per epoch, the closing table). Silent on ranks other than 0."""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..files import write_text

ADVICE = "free some space or choose another output folder (--out)"


def new_run_dir(out: str | Path, model: str, dataset: str) -> Path:
    """OUT/<YYYYmmdd-HHMMSS>_<model>_<dataset>, never an existing folder: the name is claimed by
    creating it, so two runs started in the same second get two folders (-1, -2, ...)."""
    base = Path(out).expanduser() / f"{time.strftime('%Y%m%d-%H%M%S')}_{model}_{dataset}"
    path = base
    for i in itertools.count(1):
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            path = base.with_name(f"{base.name}-{i}")
        except OSError as exc:  # a file in the way, no permission, read-only file system
            raise UserError(f"cannot make the run directory {path} ({exc.strerror or exc}); "
                            "choose another output folder (--out)") from None
    raise AssertionError("unreachable")


def read_metrics(path: Path, key: str = "epoch") -> tuple[list[dict[str, Any]], int]:
    """The rows of a metrics.jsonl (`key` "epoch") or steps.jsonl (`key` "step"), and how many
    lines were unreadable (a line cut by a crash, or edited by hand): those are skipped, never
    fatal."""
    rows, bad = [], 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if isinstance(row, dict) and isinstance(row.get(key), int):
            rows.append(row)
        else:
            bad += 1
    return rows, bad


class RunLogger:
    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True,
                 progress: bool = True):
        self.run_dir = run_dir
        self.enabled = enabled
        self.progress = progress and enabled
        self.tensorboard = enabled and tensorboard
        self._writer = None

    @property
    def writer(self):
        """The TensorBoard writer, made on first use: a run that fails while setting up (a
        checkpoint that cannot be resumed) leaves no new file behind."""
        if self._writer is None and self.tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self._writer = SummaryWriter(str(self.run_dir))
        return self._writer

    # files ---------------------------------------------------------------------------------
    def write_config(self, text: str) -> None:
        if self.enabled:
            write_text(self.run_dir / "config.toml", text, advice=ADVICE)

    def truncate_metrics(self, last_epoch: int, last_step: int | None = None) -> None:
        """On resume: drop the lines of epochs (metrics.jsonl) and steps (steps.jsonl) after
        the checkpoint: they will be run again."""
        for name, key, last in (("metrics.jsonl", "epoch", last_epoch),
                                ("steps.jsonl", "step", last_step)):
            path = self.run_dir / name
            if not self.enabled or not path.exists() or last is None:
                continue
            rows, bad = read_metrics(path, key)
            if bad:
                self.print(f"note: dropped {bad} unreadable line(s) of {path}")
            write_text(path, "".join(json.dumps(row) + "\n" for row in rows
                                     if row[key] <= last), advice=ADVICE)

    def log_epoch(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.writer is not None:
            step = row["step"]
            for key, value in row.items():
                if key in ("epoch", "step") or not isinstance(value, (int, float)):
                    continue
                group = key.split("_")[0] if key.split("_")[0] in ("train", "val", "ema", "test") \
                    else "misc"
                self.writer.add_scalar(f"{group}/{key}", value, step)
            self.writer.flush()
        parts = [f"epoch {row['epoch']:>3}", f"lr {row['lr']:.4f}",
                 f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.2%}"]
        if row.get("val_acc") is not None:
            parts.append(f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.2%}")
        if row.get("ema_val_acc") is not None:
            parts.append(f"ema val acc {row['ema_val_acc']:.2%}")
        if row.get("test_acc") is not None:
            ema = row.get("ema_test_acc")
            parts.append(f"test acc {row['test_acc']:.2%}" +
                         (f" (ema {ema:.2%})" if ema is not None else ""))
        parts.append(f"{row['images_per_s']:.0f} img/s {row['epoch_s']:.0f}s "
                     f"(total {row.get('elapsed_s', 0):.0f}s)")
        self.print(" | ".join(parts))

    def log_step(self, values: dict[str, Any]) -> None:
        """Every `log_every` steps: the step's loss and learning rate, into TensorBoard and
        steps.jsonl (the curves of `resattn plot`)."""
        if not self.enabled:
            return
        row = {key: values[key] for key in ("step", "epoch", "lr", "loss", "acc", "elapsed_s")
               if key in values}
        with open(self.run_dir / "steps.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.writer is not None:
            self.writer.add_scalar("step/lr", values["lr"], values["step"])
            self.writer.add_scalar("step/loss", values["loss"], values["step"])

    def write_summary(self, summary: dict[str, Any], hparams: dict[str, Any]) -> None:
        if not self.enabled:
            return
        write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n",
                   advice=ADVICE)
        if self.writer is not None:
            clean = {k: v for k, v in hparams.items() if isinstance(v, (int, float, str, bool))}
            metrics = {f"hparam/{k}": summary[k] for k in ("val_acc", "test_acc", "train_acc")
                       if isinstance(summary.get(k), (int, float))}
            self.writer.add_hparams(clean, metrics, run_name="hparams")
            self.writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    # console -------------------------------------------------------------------------------
    def print(self, text: str) -> None:
        if self.enabled:
            from tqdm import tqdm
            tqdm.write(text, file=sys.stdout)

    def bar(self, total: int, initial: int, desc: str):
        from tqdm import tqdm
        return tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=False,
                    disable=not self.progress, dynamic_ncols=True)


def format_duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def result_table(summary: dict[str, Any]) -> str:
    """The closing table of the seed re-implementation: train / val / test error, train time."""
    def err(key: str) -> str:
        v = summary.get(key)
        return "n/a" if v is None else f"{100 * (1 - v):.2f}%"

    # the final evaluation: which weights, and whether flipped copies were averaged in (the
    # epoch lines' validation is single-view, so the two can differ)
    how = f"{summary.get('eval_weights', 'raw')} weights" + \
        (", flip TTA" if summary.get("tta") else "")
    rows = [("train error (last epoch)", err("train_acc")), (f"val error ({how})", err("val_acc")),
            (f"test error ({how})", err("test_acc")),
            ("train time", format_duration(summary["train_time_s"]))]
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    line = f"+-{'-' * width}-+-{'-' * value_width}-+"
    body = [f"| {k.ljust(width)} | {v.rjust(value_width)} |" for k, v in rows]
    return "\n".join([line, *body, line])
