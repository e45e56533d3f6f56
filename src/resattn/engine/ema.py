"""Exponential moving average of a model's weights, evaluated beside the model itself."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import InvalidOption


class ModelEMA:
    """ema = d * ema + (1 - d) * weights after every step, with d warmed up as
    min(decay, (1 + n) / (10 + n)) so early averages are not dominated by the initial weights.
    Buffers (BN running statistics) are copied, not averaged."""

    def __init__(self, model: nn.Module, decay: float = 0.999):
        if not 0 < decay < 1:
            raise InvalidOption("ema_decay", decay, "choose a value in (0, 1)")
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.apply(model, self.next_decay())

    def next_decay(self) -> float:
        """Count one more update and return its decay (warmed up)."""
        self.updates += 1
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def apply(self, model: nn.Module, decay: float | torch.Tensor) -> None:
        """ema = decay * ema + (1 - decay) * weights; buffers copied. `decay` may be a tensor
        (the compiled whole step passes one, so its changing value recompiles nothing)."""
        ema_params: list[torch.Tensor] = list(self.module.parameters())
        params = [p.detach() for p in model.parameters()]
        # the stubs know only numbers as the weight; a 0-dim tensor works as well
        torch._foreach_lerp_(ema_params, params, 1 - decay)  # type: ignore[arg-type]
        # one fused copy for all BN statistics: a Python loop over ~600 buffers costs more than
        # the GPU work of a small model's step
        buffers = list(self.module.buffers())
        if buffers:
            torch._foreach_copy_(buffers, list(model.buffers()))

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
