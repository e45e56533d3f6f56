"""Optimizers with the usual parameter groups, and learning-rate schedules as pure functions of
training progress (a fraction in [0, 1]), so a time budget can stretch them."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import InvalidOption


def param_groups(model: nn.Module, weight_decay: float, decay_norm_and_bias: bool = False,
                 body_lr_scale: float = 1.0) -> list[dict]:
    """Weight decay on conv and linear weights only, unless asked: BN scales/shifts and biases
    (every parameter with fewer than 2 dimensions) are left undecayed, as in timm. Frozen
    parameters are left out. `body_lr_scale` != 1: the classifier and the body in separate
    groups, the body's learning rate scaled (fine-tuning); `set_lr` keeps the ratio."""
    get_classifier = getattr(model, "get_classifier", None)
    head = {id(p) for p in get_classifier().parameters()} \
        if body_lr_scale != 1 and get_classifier is not None else set()
    groups: dict[tuple[bool, bool], list] = {}
    for p in model.parameters():
        if p.requires_grad:
            decayed = decay_norm_and_bias or p.ndim > 1
            groups.setdefault((id(p) in head, decayed), []).append(p)
    return [{"params": params, "weight_decay": weight_decay if decayed else 0.0,
             "lr_scale": 1.0 if is_head or not head else body_lr_scale}
            for (is_head, decayed), params in sorted(groups.items(),
                                                     key=lambda kv: (kv[0][0], not kv[0][1]))]


def build_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float,
                    momentum: float = 0.9, decay_norm_and_bias: bool = False,
                    body_lr_scale: float = 1.0) -> torch.optim.Optimizer:
    groups = param_groups(model, weight_decay, decay_norm_and_bias, body_lr_scale)
    for g in groups:
        g["lr"] = lr * g["lr_scale"]
    if name == "sgd":  # Nesterov momentum, as the paper
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise InvalidOption("optimizer", name, "choose sgd, adam or adamw")


class Schedule:
    """lr factor at a progress fraction t in [0, 1].

    warmup: linear from 0 over the first `warmup` fraction. Then
      step     - multiply by gamma at each milestone (fractions of training);
      cosine   - half a cosine from 1 to 0;
      onecycle - linear decay from 1 to 0 (with the warm-up: a triangle).
    """

    def __init__(self, kind: str, warmup: float = 0.0, milestones: tuple[float, ...] = (),
                 gamma: float = 0.1):
        if kind not in ("step", "cosine", "onecycle"):
            raise InvalidOption("schedule", kind, "choose step, cosine or onecycle")
        if not 0 <= warmup < 1:
            raise ValueError(f"warm-up of {warmup:.0%} of training is not valid; shorten it")
        self.kind, self.warmup = kind, warmup
        self.milestones, self.gamma = tuple(sorted(milestones)), gamma

    def __call__(self, t: float) -> float:
        t = min(max(t, 0.0), 1.0)
        if t < self.warmup:
            return t / self.warmup
        if self.kind == "step":
            return self.gamma ** sum(t >= m for m in self.milestones)
        u = (t - self.warmup) / (1 - self.warmup)  # progress after warm-up
        if self.kind == "cosine":
            return 0.5 * (1 + math.cos(math.pi * u))
        return 1 - u


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
