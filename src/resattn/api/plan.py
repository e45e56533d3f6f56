"""From a Config to the engine's objects: the plan (how many steps), the schedule over it, the
optimizer and EMA (`optimization`), the step and epoch settings, and the notes a run prints
about what its options mean together."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import Config
from ..engine.ema import ModelEMA
from ..engine.loop import scaled_side
from ..engine.optim import Schedule, build_optimizer
from ..engine.trainer import Optimization, Plan, Settings
from ..errors import InvalidOption

MAX_WARMUP = 0.5  # a warm-up longer than the run is clamped to this fraction of it


def make_plan(cfg: Config, steps_per_epoch: int) -> Plan:
    """Steps per epoch (the loader's length), total steps (iterations, or epochs' worth) and
    the epochs they span."""
    if steps_per_epoch < 1:
        raise InvalidOption("batch_size", cfg.batch_size,
                            "the training set is smaller than one batch; lower it")
    if cfg.iterations > 0:
        total = cfg.iterations
    elif cfg.epochs > 0:
        total = cfg.epochs * steps_per_epoch
    else:
        raise InvalidOption("epochs", 0, "set epochs or iterations to >= 1")
    return Plan(steps_per_epoch, total, math.ceil(total / steps_per_epoch))


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


def optimization(cfg: Config, model: nn.Module, steps_per_epoch: int,
                 world_size: int = 1) -> Optimization:
    """The optimizer over `model`'s trainable parameters (placed on its device first: the EMA
    copies it), its schedule over the plan, and the EMA if asked. The documented rule:
    lr_scaling "linear" multiplies the lr by the number of processes."""
    plan = make_plan(cfg, steps_per_epoch)
    base_lr = cfg.lr * (world_size if cfg.lr_scaling == "linear" else 1)
    optimizer = build_optimizer(model, cfg.optimizer, base_lr, cfg.weight_decay, cfg.momentum,
                                cfg.decay_norm_and_bias, cfg.body_lr_scale)
    ema = ModelEMA(model, cfg.ema_decay) if cfg.ema else None
    return Optimization(optimizer, base_lr, make_schedule(cfg, plan), plan, ema)


def settings(cfg: Config, device: torch.device, amp: str) -> Settings:
    """The engine's settings: the Config's keys that decide how steps and epochs run."""
    return Settings(device=device, amp=amp, channels_last=cfg.channels_last,
                    compile=cfg.compile, seed=cfg.seed, time_budget=cfg.time_budget,
                    low_res_scale=cfg.low_res_scale, low_res_until=cfg.low_res_until,
                    label_smoothing=cfg.label_smoothing, grad_clip=cfg.grad_clip,
                    log_every=cfg.log_every, val_every=cfg.val_every, tta=cfg.tta,
                    monitor_test=cfg.monitor_test)


def notes(cfg: Config, optim: Optimization, input_size: int) -> list[str]:
    """What the options mean together, said at the start of a run: a step schedule that never
    decays, a warm-up as long as the run, progressive resizing's sides."""
    plan, said = optim.plan, []
    if cfg.schedule == "step" and not cfg.milestones:
        said.append(f"note: a step schedule without milestones keeps the learning rate at "
                    f"{optim.base_lr:g} throughout; the recipes (fast, paper), a cosine schedule "
                    "or milestones decay it")
    if warmup_too_long(cfg, plan):
        said.append(f"note: the warm-up of {cfg.warmup:g} epochs is as long as the run "
                    f"({plan.total_steps / plan.steps_per_epoch:g} epochs); warming up over the "
                    f"first {MAX_WARMUP:.0%} of it instead")
    if cfg.low_res_scale < 1:
        low = scaled_side(input_size, cfg.low_res_scale)
        said.append(f"progressive resizing: training at {low}x{low} for the first "
                    f"{cfg.low_res_until:.0%} of the run, then at {input_size}x{input_size}")
    return said
