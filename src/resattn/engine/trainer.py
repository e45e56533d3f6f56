"""`Trainer`: epochs of `train_one_epoch`, validation, checkpoints, resume, time budget and the
final evaluation, each a method over explicit counters (whole epochs done, batches into the
next one, optimizer steps)."""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from ..data.loader import derive_seed
from ..errors import Interrupted, UserError
from ..provenance import environment
from .bench import seconds_per_call
from .checkpoint import rng_state, save_checkpoint, set_rng_state
from .distributed import DistInfo, all_reduce, gather_objects, sync_buffers, weights_in_sync
from .ema import ModelEMA
from .graph_step import GraphStep, supports
from .logger import RunLogger, format_duration, result_table
from .loop import (
    EpochHooks,
    NonFiniteLoss,
    StepState,
    TrainStep,
    autocast,
    evaluation_model,
    log_probs,
    mirror_average,
    score,
    train_one_epoch,
)
from .optim import Schedule
from .stop_hook import StepSignal


@dataclass
class Plan:
    """How long training runs: optimizer steps per epoch, steps in all, epochs they span."""
    steps_per_epoch: int
    total_steps: int
    epochs: int


@dataclass
class Optimization:
    """What the steps follow: `optimizer` (its groups at `base_lr` times their `lr_scale`),
    `schedule` (the lr factor at a progress fraction) over `plan`, and the weights' moving
    average (`ema`, or None)."""
    optimizer: torch.optim.Optimizer
    base_lr: float
    schedule: Schedule
    plan: Plan
    ema: ModelEMA | None = None


@dataclass(frozen=True)
class Settings:
    """How the Trainer runs its steps and epochs: where (`device`, `amp`, memory format,
    torch.compile), when it stops (`time_budget` seconds of training, 0 for none), progressive
    resizing (training at `low_res_scale` of the side until `low_res_until` of the run), the
    step's loss (`label_smoothing`, `grad_clip`), how often it logs and validates, and the final
    evaluation (flip `tta`; `monitor_test` also scores the test set each epoch, off the clock).
    `seed` derives the per-rank randomness under torchrun."""
    device: torch.device
    amp: str = "off"
    channels_last: bool = False
    compile: bool = False
    seed: int = 0
    time_budget: float = 0.0
    low_res_scale: float = 1.0
    low_res_until: float = 0.0
    label_smoothing: float = 0.0
    grad_clip: float = 0.0
    log_every: int = 50
    val_every: int = 1
    tta: bool = False
    monitor_test: bool = False


@dataclass
class Records:
    """Where the run is written: `run_dir` (checkpoints), `logger` (metrics, console, summary),
    and what every checkpoint and the summary carry: the run's configuration as a plain dict
    (its `model`, `dataset` and `batch_size` name the run) and the model's parameter and MAC
    counts."""
    run_dir: Path
    logger: RunLogger
    config: dict[str, Any]
    model_info: dict[str, Any]


def place_model(model: nn.Module, device: torch.device, channels_last: bool = False,
                sync_bn: bool = False) -> nn.Module:
    """The model where it trains (before its optimizer and EMA copy are made): SyncBatchNorm
    if asked (torchrun on CUDA), on `device`, in channels-last memory if asked."""
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


@contextmanager
def graceful_interrupts(state: StepState, logger: RunLogger):
    """First Ctrl-C (or SIGTERM): finish the current step, save, exit. A second one: at once."""
    def handler(signum, _frame):
        if state.stop_requested:
            raise KeyboardInterrupt
        state.stop_requested = True
        logger.print("stopping after this step to save a checkpoint (Ctrl-C again to abort)")

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for s in old:
            signal.signal(s, handler)
    except ValueError:  # not the main thread: leave signals alone
        old = {}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class Diverged(UserError):
    """The loss became NaN or infinite: the run's settings, not a bug."""


class Trainer:
    """Train `model` (placed by `place_model`) on `data` (a DataBundle) with `optim`, as
    `settings` say, writing to `records`; `fit()` returns the summary dict.
    `on_epoch_end(model, epoch, step)` runs after each epoch's checkpoint (e.g. mask pictures).
    Under torchrun (`dist_info.enabled`) the model trains as DistributedDataParallel; only rank
    0 writes files."""

    def __init__(self, model: nn.Module, data, optim: Optimization, settings: Settings,
                 records: Records, dist_info: DistInfo | None = None,
                 on_epoch_end: Callable[[nn.Module, int, int], None] | None = None):
        self.model, self.data, self.settings, self.records = model, data, settings, records
        self.device, self.amp = settings.device, settings.amp
        self.run_dir, self.logger = records.run_dir, records.logger
        self.dist = dist_info or DistInfo()
        self.on_epoch_end = on_epoch_end
        self.optimizer, self.base_lr, self.ema = optim.optimizer, optim.base_lr, optim.ema
        self.plan, self.schedule = optim.plan, optim.schedule
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp == "fp16" else None
        self.step = self._make_step(model)
        # counters: whole epochs done, batches done into the next epoch, optimizer steps
        self.completed_epochs, self.batch = 0, 0
        self.state = StepState()
        self.step_signal = StepSignal()  # the tests' RESATTN_SIGNAL_AT_STEP
        self.elapsed_before = 0.0  # training seconds of earlier sessions (resume)
        self.off_clock = 0.0  # seconds of evaluation that is not training time
        self.clock = 0.0  # training seconds (all ranks' maximum) as of the last step
        self.last_val: dict[str, dict] = {}  # the latest validation, per weights (raw, ema)
        self.last_probs: dict[str, tuple] = {}  # its log-probabilities, kept for flip TTA
        self.bar: Any = None  # the epoch's progress bar
        self.t0 = time.perf_counter()
        self.best: dict[str, Any] = {"val_acc": -1.0, "epoch": -1}
        self.last_train: dict[str, Any] = {}

    def _make_step(self, model: nn.Module) -> TrainStep | GraphStep:
        """The training step: under `compile` on a GPU, the whole step as one graph where it
        can be (SGD, one process, no fp16 scaling); else the model compiled inside an eager
        step. (On a CPU, inductor's compilation of the whole step takes minutes even for the
        tiny attention_test, and CPU training gains little from fewer kernel launches.)"""
        s = self.settings
        graph = self.device.type == "cuda" and supports(self.optimizer, self.amp,
                                                       self.dist.enabled)
        if s.compile and graph:
            return GraphStep(model, cast(torch.optim.SGD, self.optimizer), self.device,
                             self.amp, self.ema, s.grad_clip, s.label_smoothing)
        return TrainStep(self._wrap(model), self.optimizer, self.device, self.amp, self.scaler,
                         self.ema, s.grad_clip, s.label_smoothing)

    def _wrap(self, model: nn.Module) -> nn.Module:
        """The module the training step calls: DDP and/or torch.compile around `model`.
        Evaluation runs on the plain module: outside DDP (shards may differ by one batch, and
        no collective may wait) and outside torch.compile (eval mode and the last partial batch
        would each cost a recompilation longer than the evaluation itself)."""
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            device = self.device
            model = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
            # dropout and other global randomness differ per rank; data order does not
            torch.manual_seed(derive_seed(self.settings.seed, self.dist.rank, 3))
        if self.settings.compile:
            model = cast(nn.Module, torch.compile(model))  # an OptimizedModule
        return model

    # --- resume -----------------------------------------------------------------------------
    def restore(self, ckpt: dict[str, Any]) -> None:
        """Continue exactly where the checkpoint stopped: weights, optimizer, EMA, scaler,
        counters, clock, best score and every random stream."""
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            if self.ema is not None and ckpt.get("ema") is not None:
                self.ema.load_state_dict(ckpt["ema"])
            if self.scaler is not None and ckpt.get("scaler") is not None:
                self.scaler.load_state_dict(ckpt["scaler"])
            self.completed_epochs, self.batch = int(ckpt["epoch"]), int(ckpt["batch"])
            self.state.step = int(ckpt["step"])
            self.elapsed_before = float(ckpt["train_time_s"])
            self.best = dict(ckpt.get("best", self.best))
            per_rank = ckpt.get("rng_per_rank") or []
            same_world = len(per_rank) == self.dist.world_size
            set_rng_state(per_rank[self.dist.rank] if same_world else ckpt["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
            raise UserError(f"the checkpoint cannot be resumed ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:100] if str(exc) else ''}); it is "
                            "damaged or from another version; start a new run") from None
        self.t0 = time.perf_counter()
        self.logger.truncate_metrics(self.completed_epochs, self.state.step)
        self.logger.print(f"resuming at epoch {self.completed_epochs + 1}, batch {self.batch}, "
                          f"step {self.state.step}")

    # --- clock, schedule, stop --------------------------------------------------------------
    def local_elapsed(self) -> float:
        """Training seconds on this process's clock (no communication)."""
        return self.elapsed_before + time.perf_counter() - self.t0 - self.off_clock

    def elapsed(self) -> float:
        local = self.local_elapsed()
        if self.settings.time_budget and self.dist.enabled:
            # one clock for all ranks: the same lr, the same stop
            return float(all_reduce(torch.tensor([local], device=self.device), "max")[0])
        return local

    def progress(self, step: int) -> float:
        """Where training stands in [0, 1]: steps done, or the budget's time spent if more
        (by `clock`, the training time read once per step: no communication here)."""
        progress = step / self.plan.total_steps
        if self.settings.time_budget:
            progress = max(progress, self.clock / self.settings.time_budget)
        return progress

    def lr_at(self, step: int) -> float:
        return self.base_lr * self.schedule(self.progress(step))

    def scale_at(self, step: int) -> float:
        """Progressive resizing: the side of the training batches, as a fraction of full."""
        s = self.settings
        if s.low_res_scale < 1 and self.progress(step) < s.low_res_until:
            return s.low_res_scale
        return 1.0

    def out_of_time(self) -> bool:
        return bool(self.settings.time_budget and self.elapsed() >= self.settings.time_budget)

    def finished(self) -> bool:
        """The plan's steps are done or the budget is spent: no more training."""
        return self.state.step >= self.plan.total_steps or self.out_of_time()

    def should_stop(self, steps_left: int, first_step: int) -> bool:
        """Asked after every step: stop for a Ctrl-C (on any rank), the plan or the budget.
        Under torchrun this is the step's one collective: it also agrees on the training time
        (the slowest rank's), which the next step's learning rate and batch size read."""
        self.step_signal.after_step()
        state = self.state
        local = [float(state.stop_requested), float(state.step - first_step >= steps_left),
                 self.local_elapsed()]
        if self.dist.enabled:
            local = all_reduce(torch.tensor(local, dtype=torch.float64, device=self.device),
                               "max").tolist()
        self.clock = local[2]
        if local[0]:
            state.stop_requested = True  # a Ctrl-C on any rank stops every rank here
        budget = self.settings.time_budget
        return bool(local[0] or local[1] or (budget and self.clock >= budget))

    # --- checkpoints ------------------------------------------------------------------------
    def checkpoint(self, train_time: float) -> dict[str, Any]:
        rng_all = gather_objects(rng_state()) if self.dist.enabled else None
        data = self.data
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_state(), "rng_per_rank": rng_all,
            "epoch": self.completed_epochs, "batch": self.batch, "step": self.state.step,
            "train_time_s": train_time, "best": self.best, "config": self.records.config,
            "classes": list(data.classes), "mean": data.mean.cpu(), "std": data.std.cpu(),
            "input_size": data.input_size, "crop_pct": data.crop_pct,
            "model_info": self.records.model_info,
        }

    def save(self, name: str, ckpt: dict[str, Any]) -> Path:
        path = self.run_dir / name
        if self.dist.is_main:
            save_checkpoint(ckpt, path)
        return path

    # --- one epoch --------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """Train epoch `epoch` (0-based) from batch `self.batch` on; afterwards the counters
        say where training stands: the epoch complete, or stopped inside it."""
        data, settings, state = self.data, self.settings, self.state
        data.train.set_epoch(epoch)
        state.batch = self.batch
        self.clock = self.elapsed()  # then read once per step, in should_stop
        remaining, first = self.plan.total_steps - state.step, state.step
        bar = self.logger.bar(len(data.train), self.batch, f"epoch {epoch + 1}/{self.plan.epochs}")
        self.bar = bar
        try:
            hooks = EpochHooks(
                self.lr_at, scale_at=self.scale_at if settings.low_res_scale < 1 else None,
                should_stop=lambda: self.should_stop(remaining, first), on_batch=bar.update,
                on_log=self.log_step, log_every=settings.log_every,
                channels_last=settings.channels_last)
            train = train_one_epoch(self.step, data.train, state, hooks, skip=self.batch)
        except NonFiniteLoss as exc:
            last = self.run_dir / "last.pt"
            where = f"the last good checkpoint is {last}" if last.exists() else \
                "no checkpoint was written yet"
            raise Diverged(f"{exc}; {where}; lower the learning rate, clip gradients "
                           "(grad_clip) or train in fp32 (amp off)") from None
        finally:
            bar.close()
        sync_buffers(self.model)  # every rank evaluates and saves rank 0's BN statistics
        if self.ema is not None:
            sync_buffers(self.ema.module)
        if state.batch >= len(data.train):
            self.completed_epochs, self.batch = epoch + 1, 0
        else:  # a budget or Ctrl-C stop inside the epoch: a resume continues from there
            self.batch = state.batch
        return train

    def log_step(self, values: dict[str, Any]) -> None:
        """A logged step, placed in epochs and training time for the curves; under a time
        budget, the epoch bar ends where the budget will (its ETA is the budget's)."""
        elapsed = self.local_elapsed()
        self.logger.log_step({**values, "epoch": values["step"] / self.plan.steps_per_epoch,
                              "elapsed_s": elapsed})
        bar, budget = self.bar, self.settings.time_budget
        rate = bar.format_dict.get("rate") if bar is not None and not bar.disable else None
        if budget and rate:
            left = max(budget - elapsed, 0.0)
            bar.total = min(len(self.data.train), bar.n + math.ceil(rate * left))
            bar.set_postfix_str(f"budget: {format_duration(left)} left", refresh=True)

    def eval_copy(self, model: nn.Module) -> nn.Module:
        """The copy of `model` evaluation runs: BN folded, in the training's memory format."""
        return evaluation_model(model, self.device, self.settings.channels_last)

    def _log_probs(self, copy: nn.Module, loader, view: str = "plain",
                   what: str = "validation") -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image log-probabilities of an `eval_copy` on `loader`, with a progress bar
        (`what` names it)."""
        bar = self.logger.bar(len(loader), 0, what + (" (flip TTA)" if view == "tta" else ""))
        try:
            return log_probs(copy, loader, self.device, self.amp, self.settings.channels_last,
                             view, on_batch=bar.update)
        finally:
            bar.close()

    def _evaluate(self, copy: nn.Module, loader, tta: bool = False,
                  what: str = "validation") -> dict[str, Any]:
        """One evaluation of an `eval_copy`, with a progress bar (`what` names it)."""
        return score(*self._log_probs(copy, loader, "tta" if tta else "plain", what),
                     self.data.num_classes)

    def validate(self, name: str, model: nn.Module, what: str, keep: bool) -> dict[str, Any]:
        """Validate `model` (the `name` weights: raw, ema) into `last_val`; `keep` also keeps
        its per-image log-probabilities, which the final flip TTA completes with the mirror
        images instead of seeing the plain ones twice."""
        probs = self._log_probs(self.eval_copy(model), self.data.val, what=what)
        self.last_val[name] = score(*probs, self.data.num_classes)
        if keep:
            self.last_probs[name] = probs
        return self.last_val[name]

    def last_epoch(self, epoch: int, train: dict[str, Any]) -> bool:
        """Training ends with this epoch: the plan's last, or a stop inside it."""
        return train["stopped"] or epoch + 1 >= self.plan.epochs or self.finished()

    def validate_after(self, epoch: int, train: dict[str, Any], last: bool | None = None
                       ) -> bool:
        """Every `val_every`-th epoch, and the last one (`last`, when already known)."""
        last = self.last_epoch(epoch, train) if last is None else last
        return last or (epoch + 1) % self.settings.val_every == 0

    def epoch_row(self, epoch: int, train: dict[str, Any]) -> dict[str, Any]:
        """The epoch's metrics: training, validation (raw and EMA), optionally the test set
        off the clock."""
        data, ema = self.data, self.ema
        row = {"epoch": epoch + 1, "step": self.state.step, "lr": self.lr_at(self.state.step),
               "train_loss": train["loss"], "train_acc": train["acc"],
               "val_loss": None, "val_acc": None}
        self.last_val, self.last_probs = {}, {}
        after_last_step = self.last_epoch(epoch, train)
        if data.val is not None and self.validate_after(epoch, train, after_last_step):
            # after the run's last step this is evaluation, not training: off the clock, so
            # that a time budget is the training time reported
            paused = time.perf_counter()
            keep = after_last_step and self.settings.tta
            val = self.validate("raw", self.model, "validation", keep)
            row.update(val_loss=val["loss"], val_acc=val["top1"])
            if ema is not None:
                ev = self.validate("ema", ema.module, "validation (EMA)", keep)
                row.update(ema_val_loss=ev["loss"], ema_val_acc=ev["top1"])
            if after_last_step:
                self.off_clock += time.perf_counter() - paused
        if self.settings.monitor_test and data.test is not None:
            paused = time.perf_counter()
            row["test_acc"] = self._evaluate(self.eval_copy(self.model), data.test,
                                             what="test")["top1"]
            if ema is not None:
                row["ema_test_acc"] = self._evaluate(self.eval_copy(ema.module), data.test,
                                                     what="test (EMA)")["top1"]
            self.off_clock += time.perf_counter() - paused
        row.update(images_per_s=train["images_per_s"], epoch_s=train["seconds"],
                   elapsed_s=self.elapsed())
        return row

    def end_epoch(self, epoch: int, train: dict[str, Any]) -> Path:
        """Validate, keep the best weights, checkpoint, log; returns last.pt's path."""
        self.last_train = train
        row = self.epoch_row(epoch, train)
        raw, ema = row["val_acc"] or 0.0, row.get("ema_val_acc") or 0.0
        improved = self.data.val is not None and max(raw, ema) > self.best["val_acc"]
        if improved:
            self.best = {"val_acc": max(raw, ema), "epoch": epoch + 1,
                         "weights": "ema" if ema > raw else "raw"}
        ckpt = self.checkpoint(self.elapsed())
        path = self.save("last.pt", ckpt)
        if improved:
            self.save("best.pt", {**ckpt, "eval_weights": self.best["weights"]})
        self.logger.log_epoch(row)
        if self.on_epoch_end is not None and self.dist.is_main:
            self.on_epoch_end(self.model, epoch + 1, self.state.step)
        return path

    # --- the run ----------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        plan = self.plan
        if self.settings.time_budget and not self.finished():
            self.logger.print(self.budget_note())
        with graceful_interrupts(self.state, self.logger):
            for epoch in range(self.completed_epochs, plan.epochs):
                if self.finished():
                    break
                train = self.train_epoch(epoch)
                complete = self.completed_epochs == epoch + 1
                if self.state.stop_requested and not complete:
                    raise Interrupted(self.save("last.pt", self.checkpoint(self.elapsed())))
                path = self.end_epoch(epoch, train)
                if self.state.stop_requested:  # Ctrl-C on the epoch's last step
                    raise Interrupted(path)
        train_time = self.elapsed()
        self.note_unspent_budget(train_time)
        return self.final_evaluation(train_time)

    def evaluation_images(self) -> int:
        """How many images the evaluation after the last step puts through the network on this
        process: validation of the raw (and EMA) weights, the chosen ones' mirror images under
        flip TTA, and the test set (twice under TTA)."""
        info, tta = self.data.info, self.settings.tta
        val, test = info.get("val_size", 0), info.get("test_size", 0)
        weights = 2 if self.ema is not None else 1
        images = (weights + tta) * val + (1 + tta) * test
        return -(-images // self.dist.world_size)

    @torch.no_grad()
    def eval_speed(self, size: int = 32) -> float:
        """Images per second of the evaluation model, timed on a batch of `size` images after
        one that warms it up; touches no random state and not the training model."""
        model = evaluation_model(self.model, self.device, self.settings.channels_last)
        side = self.data.input_size
        x = torch.full((size, 3, side, side), 0.5, device=self.device)
        if self.settings.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)

        def forward() -> None:
            with autocast(self.device, self.amp):
                model(x)

        return size / max(seconds_per_call(forward, seconds=0.0, warmup=1), 1e-9)

    def budget_note(self) -> str:
        """What a time budget covers, and about how long the evaluation after it will take."""
        images = self.evaluation_images()
        text = f"time budget: {self.settings.time_budget:g} s of training"
        if not images:
            return text
        seconds = images / self.eval_speed()
        return (f"{text}, then about {format_duration(seconds)} of evaluation ({images:,} "
                "images through the network)")

    def note_unspent_budget(self, elapsed: float) -> None:
        """A time-budgeted run that ran out of epochs (or iterations) well before its budget
        (cheap steps: progressive resizing, a fast machine) says how to use the rest."""
        budget, plan = self.settings.time_budget, self.plan
        if budget and self.state.step >= plan.total_steps and elapsed < 0.9 * budget:
            epochs = plan.total_steps / plan.steps_per_epoch
            self.logger.print(
                f"note: the run did all its {plan.total_steps} steps ({epochs:g} epoch"
                f"{'' if epochs == 1 else 's'}) in {elapsed:.0f} s of its {budget:g} s budget; "
                "more epochs (or iterations) let the budget decide when it ends")

    def final_evaluation(self, train_time: float) -> dict[str, Any]:
        """Evaluate the final weights, raw or EMA as validation chooses (never the test set),
        save last.pt with that choice and write the summary."""
        if not weights_in_sync(self.model):
            raise RuntimeError("the ranks ended with different weights")  # a bug, not the user's
        data, tta = self.data, self.settings.tta
        candidates = {"raw": self.model}
        if self.ema is not None:
            candidates["ema"] = self.ema.module
        chosen, val = ("ema" if self.ema is not None else "raw"), None
        if data.val is not None:
            # validation chooses, on the last epoch's numbers: they saw these very weights
            for name, m in candidates.items():
                if name not in self.last_val or (tta and name not in self.last_probs):
                    self.validate(name, m, f"final validation ({name} weights)", tta)
            chosen = max(candidates, key=lambda name: self.last_val[name]["top1"])
            val = self.last_val[chosen]
        mirror = data.val is not None and tta  # the mirror images complete the TTA of val
        if not mirror and data.test is None:
            return self.finish(train_time, chosen, val, None)
        copy = self.eval_copy(candidates[chosen])  # folded once, for val and test
        if mirror:
            plain, labels = self.last_probs[chosen]
            mirrored, _ = self._log_probs(copy, data.val, "flip", "final validation, mirror "
                                          f"images ({chosen} weights)")
            val = score(mirror_average(plain, mirrored), labels, data.num_classes)
        test = self._evaluate(copy, data.test, tta, f"final test ({chosen} weights)") \
            if data.test is not None else None
        return self.finish(train_time, chosen, val, test)

    def finish(self, train_time: float, chosen: str, val: dict | None,
               test: dict | None) -> dict[str, Any]:
        """Save last.pt with the chosen weights marked, write and print the summary."""
        final = self.checkpoint(train_time)  # all ranks
        self.save("last.pt", {**final, "eval_weights": chosen})
        summary = self.summary(train_time, chosen, val, test)
        self.logger.write_summary(summary, self.records.config)
        self.logger.print(result_table(summary))
        self.logger.print(f"run directory: {self.run_dir}")
        return summary

    def summary(self, train_time: float, chosen: str, val: dict | None,
                test: dict | None) -> dict[str, Any]:
        config, best, last = self.records.config, self.best, self.last_train
        return {
            "model": config["model"], "dataset": config["dataset"], **self.records.model_info,
            "epochs": self.state.step / self.plan.steps_per_epoch, "steps": self.state.step,
            "train_time_s": train_time, "train_acc": last.get("acc"),
            "train_loss": last.get("loss"),
            "val_acc": val["top1"] if val else None, "val_loss": val["loss"] if val else None,
            "test_acc": test["top1"] if test else None,
            "test_loss": test["loss"] if test else None,
            "val_images": val["count"] if val else 0, "test_images": test["count"] if test else 0,
            "test_top5": test["top5"] if test else None, "eval_weights": chosen,
            "tta": self.settings.tta,
            "best_val_acc": best["val_acc"] if best["epoch"] > 0 else None,
            "best_epoch": best["epoch"] if best["epoch"] > 0 else None,
            "device": str(self.device), "amp": self.amp, "world_size": self.dist.world_size,
            "global_batch_size": config["batch_size"] * self.dist.world_size, "lr": self.base_lr,
            **self.data.info, "environment": environment(self.device),
        }

