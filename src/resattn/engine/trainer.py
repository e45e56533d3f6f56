"""`fit`: epochs of `train_one_epoch`, validation, checkpoints, resume, time budget, summary."""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import Config, to_dict
from ..data.loader import derive_seed
from ..errors import UserError
from .checkpoint import rng_state, save_checkpoint, set_rng_state
from .distributed import DistInfo, all_reduce, gather_objects, sync_buffers, weights_in_sync
from .ema import ModelEMA
from .logger import RunLogger, result_table
from .loop import NonFiniteLoss, StepState, evaluate, train_one_epoch
from .optim import Schedule, build_optimizer
from .provenance import environment


@dataclass
class Plan:
    steps_per_epoch: int
    total_steps: int
    epochs: int


def make_plan(cfg: Config, steps_per_epoch: int) -> Plan:
    if steps_per_epoch < 1:
        raise UserError(f"the training set is smaller than one batch of {cfg.batch_size}; "
                        "lower --batch-size")
    if cfg.iterations > 0:
        total = cfg.iterations
    elif cfg.epochs > 0:
        total = cfg.epochs * steps_per_epoch
    else:
        raise UserError("set --epochs or --iterations (both are 0)")
    return Plan(steps_per_epoch, total, math.ceil(total / steps_per_epoch))


MAX_WARMUP = 0.5  # a warm-up longer than the run is clamped to this fraction of it


def warmup_too_long(cfg: Config, plan: Plan) -> bool:
    return cfg.warmup * plan.steps_per_epoch >= plan.total_steps


def warmup_fraction(cfg: Config, plan: Plan) -> float:
    """The warm-up as a fraction of training; one as long as the run or longer (the fast
    recipe's 2 epochs in a 1-epoch run) becomes half the run."""
    if warmup_too_long(cfg, plan):
        return MAX_WARMUP
    return cfg.warmup * plan.steps_per_epoch / plan.total_steps


def make_schedule(cfg: Config, plan: Plan) -> Schedule:
    per = plan.steps_per_epoch if cfg.milestone_unit == "epoch" else 1
    milestones = tuple(m * per / plan.total_steps for m in cfg.milestones)
    return Schedule(cfg.schedule, warmup_fraction(cfg, plan), milestones, cfg.gamma)


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


class Interrupted(Exception):
    def __init__(self, checkpoint: Path):
        super().__init__(f"interrupted; checkpoint saved to {checkpoint}; continue with "
                         f"--resume {checkpoint.parent}")
        self.checkpoint = checkpoint


def fit(cfg: Config, model: nn.Module, data, device: torch.device, amp: str, run_dir: Path,
        logger: RunLogger, model_info: dict[str, Any], resume: dict | None = None,
        dist_info: DistInfo | None = None,
        on_epoch_end: Callable[[nn.Module, int, int], None] | None = None) -> dict[str, Any]:
    """Train `model` on `data` (a DataBundle) as `cfg` says; returns the summary dict.
    `on_epoch_end(model, epoch, step)` runs after each epoch's checkpoint (e.g. mask pictures).
    Under torchrun (`dist_info.enabled`) the model trains as DistributedDataParallel; only rank
    0 writes files."""
    dist_info = dist_info or DistInfo()
    is_main = dist_info.is_main
    if cfg.sync_bn and dist_info.enabled:
        if device.type != "cuda":
            raise UserError("--sync-bn needs CUDA devices (SyncBatchNorm); drop it on the CPU")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    # the documented rule: "linear" multiplies the lr by the number of processes
    base_lr = cfg.lr * (dist_info.world_size if cfg.lr_scaling == "linear" else 1)
    optimizer = build_optimizer(model, cfg.optimizer, base_lr, cfg.weight_decay, cfg.momentum,
                                cfg.decay_norm_and_bias)
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    ema = ModelEMA(model, cfg.ema_decay) if cfg.ema else None
    plan = make_plan(cfg, len(data.train))
    schedule = make_schedule(cfg, plan)
    if warmup_too_long(cfg, plan):
        logger.print(f"note: the warm-up of {cfg.warmup:g} epochs is as long as the run "
                     f"({plan.total_steps / plan.steps_per_epoch:g} epochs); warming up over "
                     f"the first {MAX_WARMUP:.0%} of it instead")
    train_model = model
    if dist_info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
        # dropout and other global randomness differ per rank; data order does not
        torch.manual_seed(derive_seed(cfg.seed, dist_info.rank, 3))
    if cfg.compile:
        train_model = torch.compile(train_model)
    # evaluation runs on the plain module: outside DDP (shards may differ by one batch, and no
    # collective may wait) and outside torch.compile (eval mode and the last partial batch would
    # each cost a recompilation longer than the evaluation itself)
    eval_model = model

    state = StepState()
    start_epoch, skip, elapsed_before, best = 0, 0, 0.0, {"val_acc": -1.0, "epoch": -1}
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        if ema is not None and resume.get("ema") is not None:
            ema.load_state_dict(resume["ema"])
        if scaler is not None and resume.get("scaler") is not None:
            scaler.load_state_dict(resume["scaler"])
        start_epoch, skip = int(resume["epoch"]), int(resume["batch"])
        state.step = int(resume["step"])
        elapsed_before = float(resume["train_time_s"])
        best = dict(resume.get("best", best))
        per_rank = resume.get("rng_per_rank") or []
        same_world = len(per_rank) == dist_info.world_size
        set_rng_state(per_rank[dist_info.rank] if same_world else resume["rng"])
        logger.truncate_metrics(start_epoch)
        logger.print(f"resuming at epoch {start_epoch + 1}, batch {skip}, step {state.step}")

    budget = cfg.time_budget
    t0 = time.perf_counter()
    off_clock = [0.0]  # seconds of --monitor-test evaluation, not counted as training time

    def elapsed() -> float:
        local = elapsed_before + time.perf_counter() - t0 - off_clock[0]
        if budget and dist_info.enabled:  # one clock for all ranks: the same lr, the same stop
            return float(all_reduce(torch.tensor([local], device=device), "max")[0])
        return local

    def lr_at(step: int) -> float:
        progress = step / plan.total_steps
        if budget:
            progress = max(progress, elapsed() / budget)
        return base_lr * schedule(progress)

    def should_stop(steps_left: int, first_step: int) -> bool:
        local = [float(state.stop_requested),
                 float(state.step - first_step >= steps_left or
                       bool(budget and elapsed() >= budget))]
        if dist_info.enabled:
            local = all_reduce(torch.tensor(local, device=device), "max").tolist()
        if local[0]:
            state.stop_requested = True  # a Ctrl-C on any rank stops every rank here
        return bool(local[0] or local[1])

    def checkpoint(epoch: int, batch: int, train_time: float) -> dict[str, Any]:
        rng_all = gather_objects(rng_state()) if dist_info.enabled else None
        return {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": rng_state(), "rng_per_rank": rng_all, "epoch": epoch, "batch": batch,
            "step": state.step,
            "train_time_s": train_time, "best": best, "config": to_dict(cfg),
            "classes": list(data.classes), "mean": data.mean.cpu(), "std": data.std.cpu(),
            "input_size": data.input_size, "crop_pct": data.crop_pct, "model_info": model_info,
        }

    def save(name: str, ckpt: dict[str, Any]) -> Path:
        path = run_dir / name
        if is_main:
            save_checkpoint(ckpt, path)
        return path

    last_train: dict[str, Any] = {}
    position = (start_epoch, skip)  # (epoch, batch) a resume would continue from
    with graceful_interrupts(state, logger):
        for epoch in range(start_epoch, plan.epochs):
            if state.step >= plan.total_steps or (budget and elapsed() >= budget):
                break
            data.train.set_epoch(epoch)
            remaining = plan.total_steps - state.step
            bar = logger.bar(len(data.train), skip, f"epoch {epoch + 1}/{plan.epochs}")
            try:
                train = train_one_epoch(
                    train_model, data.train, optimizer, state, lr_at, device, amp, scaler, ema,
                    cfg.grad_clip, cfg.label_smoothing, cfg.channels_last,
                    should_stop=lambda r=remaining, s=state.step: should_stop(r, s),
                    skip=skip, log_every=cfg.log_every, on_batch=bar.update,
                    on_log=logger.log_step)
            except NonFiniteLoss as exc:
                last = run_dir / "last.pt"
                where = f"the last good checkpoint is {last}" if last.exists() else \
                    "no checkpoint was written yet"
                raise UserError(f"{exc}; {where}; lower --lr, set --grad-clip or use "
                                "--amp off") from None
            finally:
                bar.close()
            skip = 0
            sync_buffers(model)  # every rank evaluates and saves rank 0's BN statistics
            if ema is not None:
                sync_buffers(ema.module)
            # where training stands: after a whole epoch, or inside one (a budget or Ctrl-C
            # stop mid-epoch); a resume continues from exactly there
            epoch_done = state.batch >= len(data.train)
            position = (epoch + 1, 0) if epoch_done else (epoch, state.batch)
            if state.stop_requested and not epoch_done:
                path = save("last.pt", checkpoint(*position, elapsed()))
                raise Interrupted(path)
            last_train = train
            row = {"epoch": epoch + 1, "step": state.step, "lr": lr_at(state.step),
                   "train_loss": train["loss"], "train_acc": train["acc"],
                   "val_loss": None, "val_acc": None}
            if data.val is not None:
                val = evaluate(eval_model, data.val, device, data.num_classes, amp,
                               cfg.channels_last)
                row.update(val_loss=val["loss"], val_acc=val["top1"])
                if ema is not None:
                    ev = evaluate(ema.module, data.val, device, data.num_classes, amp,
                                  cfg.channels_last)
                    row.update(ema_val_loss=ev["loss"], ema_val_acc=ev["top1"])
            if cfg.monitor_test and data.test is not None:
                paused = time.perf_counter()
                row["test_acc"] = evaluate(eval_model, data.test, device, data.num_classes, amp,
                                           cfg.channels_last)["top1"]
                if ema is not None:
                    row["ema_test_acc"] = evaluate(ema.module, data.test, device,
                                                   data.num_classes, amp,
                                                   cfg.channels_last)["top1"]
                off_clock[0] += time.perf_counter() - paused
            row.update(images_per_s=train["images_per_s"], epoch_s=train["seconds"],
                       elapsed_s=elapsed())
            score = max(row["val_acc"] or 0.0, row.get("ema_val_acc") or 0.0)
            improved = data.val is not None and score > best["val_acc"]
            if improved:
                best = {"val_acc": score, "epoch": epoch + 1,
                        "weights": "ema" if (row.get("ema_val_acc") or 0) > (row["val_acc"]
                                                                               or 0) else "raw"}
            ckpt = checkpoint(*position, elapsed())
            path = save("last.pt", ckpt)
            if improved:
                save("best.pt", {**ckpt, "eval_weights": best["weights"]})
            logger.log_epoch(row)
            if on_epoch_end is not None and is_main:
                on_epoch_end(model, epoch + 1, state.step)
            if state.stop_requested:  # Ctrl-C on the epoch's last step: the epoch is complete
                raise Interrupted(path)
    train_time = elapsed()
    in_sync = weights_in_sync(model)
    if not in_sync:
        raise UserError("the ranks ended with different weights; this is a bug, please report "
                        "it with the command line")

    # final evaluation of the final weights; raw or EMA chosen on validation, never on test
    candidates = {"raw": eval_model}
    if ema is not None:
        candidates["ema"] = ema.module
    val_scores = {}
    if data.val is not None:
        for name, m in candidates.items():
            val_scores[name] = evaluate(m, data.val, device, data.num_classes, amp,
                                        cfg.channels_last, tta=cfg.tta)
    chosen = max(val_scores, key=lambda k: val_scores[k]["top1"]) if val_scores else \
        ("ema" if ema is not None else "raw")
    test = None
    if data.test is not None:
        test = evaluate(candidates[chosen], data.test, device, data.num_classes, amp,
                        cfg.channels_last, tta=cfg.tta)
    final = checkpoint(*position, train_time)  # all ranks
    save("last.pt", {**final, "eval_weights": chosen})
    val = val_scores.get(chosen)
    summary = {
        "model": cfg.model, "dataset": cfg.dataset, **model_info,
        "epochs": state.step / plan.steps_per_epoch, "steps": state.step,
        "train_time_s": train_time, "train_acc": last_train.get("acc"),
        "train_loss": last_train.get("loss"),
        "val_acc": val["top1"] if val else None, "val_loss": val["loss"] if val else None,
        "test_acc": test["top1"] if test else None, "test_loss": test["loss"] if test else None,
        "val_images": val["count"] if val else 0, "test_images": test["count"] if test else 0,
        "test_top5": test["top5"] if test else None, "eval_weights": chosen, "tta": cfg.tta,
        "best_val_acc": best["val_acc"] if best["epoch"] > 0 else None,
        "best_epoch": best["epoch"] if best["epoch"] > 0 else None,
        "device": str(device), "amp": amp, "world_size": dist_info.world_size,
        "global_batch_size": cfg.batch_size * dist_info.world_size, "lr": base_lr,
        "ranks_in_sync": in_sync, **data.info, "environment": environment(device),
    }
    logger.write_summary(summary, to_dict(cfg))
    logger.print(result_table(summary))
    logger.print(f"run directory: {run_dir}")
    return summary
