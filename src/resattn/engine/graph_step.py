"""The whole SGD training step as one graph for `torch.compile`: forward, loss, gradients,
clipping, the Nesterov update of every parameter group and the weights' moving average, with no
host synchronisation and no graph break, so that a GPU runs the step as a few fused kernels
instead of thousands of small launches from Python.

`torch.optim.SGD.step` breaks the graph on purpose (it may not run inside a compiled region);
this step does the same arithmetic with foreach operations on the optimizer's own parameter
groups and momentum buffers, so checkpoints and resume are those of `TrainStep`. Gradients come
from `torch.autograd.grad`, which Dynamo traces with `trace_autograd_ops`. The learning rates
and the EMA's decay are tensors: changing them every step recompiles nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .ema import ModelEMA
from .loop import autocast, loss_fn


def supports(optimizer: torch.optim.Optimizer, amp: str, distributed: bool) -> bool:
    """Whether the step can be one graph: SGD without dampening, no fp16 loss scaling (its
    skipped steps are host decisions), one process (DistributedDataParallel reduces gradients
    in hooks of `backward()`, which a traced `autograd.grad` does not call)."""
    if type(optimizer) is not torch.optim.SGD or amp == "fp16" or distributed:
        return False
    return all(g.get("dampening", 0) == 0 and not g.get("maximize", False)
               for g in optimizer.param_groups)


class GraphStep:
    """One optimizer step of `model` with `optimizer` (an SGD of resattn's parameter groups),
    called as `TrainStep` is: `step(x, targets, lr) -> (loss, logits)`, both detached. `compile`
    wraps the step function (torch.compile by default; the tests pass a cheaper backend)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.SGD, device: torch.device,
                 amp: str = "off", ema: ModelEMA | None = None, grad_clip: float = 0.0,
                 label_smoothing: float = 0.0,
                 compile: Callable[[Callable], Callable] | None = None):
        import torch._dynamo

        torch._dynamo.config.trace_autograd_ops = True  # autograd.grad inside the graph
        self.model, self.optimizer, self.device, self.amp = model, optimizer, device, amp
        self.ema, self.grad_clip, self.label_smoothing = ema, grad_clip, label_smoothing
        self.groups = [[p for p in g["params"] if p.requires_grad]
                       for g in optimizer.param_groups]
        self.params = [p for group in self.groups for p in group]
        self._buffers()
        compile = compile or (lambda fn: torch.compile(fn, fullgraph=True))
        self.compiled = compile(self.step)

    def _buffers(self) -> None:
        """The momentum buffers, made before the first step (zeros: `0 * momentum + grad` is
        the first step's `grad` exactly, as SGD's clone of it)."""
        for group, params in zip(self.optimizer.param_groups, self.groups):
            if group["momentum"]:
                for p in params:
                    state = self.optimizer.state[p]
                    if state.get("momentum_buffer") is None:
                        state["momentum_buffer"] = torch.zeros_like(p)

    def step(self, x: torch.Tensor, targets: torch.Tensor, lrs: torch.Tensor,
             decay: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The traced function: `lrs` (one per parameter group), `decay` the EMA's."""
        with autocast(self.device, self.amp):
            logits = self.model(x)
        loss = loss_fn(logits, targets, self.label_smoothing)
        grads = list(torch.autograd.grad(loss, self.params))
        with torch.no_grad():
            if self.grad_clip:  # as nn.utils.clip_grad_norm_
                norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
                torch._foreach_mul_(grads, (self.grad_clip / (norm + 1e-6)).clamp(max=1.0))
            start = 0
            for i, (group, params) in enumerate(zip(self.optimizer.param_groups, self.groups)):
                g = grads[start:start + len(params)]
                start += len(params)
                self._update(group, params, g, lrs[i])
            if self.ema is not None:
                self.ema.apply(self.model, decay)
        return loss.detach(), logits.detach()

    def _update(self, group: dict[str, Any], params: list, grads: list,
                lr: torch.Tensor) -> None:
        """SGD's arithmetic (weight decay, momentum, Nesterov) on one group, in place."""
        if not params:
            return
        if group["weight_decay"]:
            grads = list(torch._foreach_add(grads, params, alpha=group["weight_decay"]))
        if group["momentum"]:
            bufs = [self.optimizer.state[p]["momentum_buffer"] for p in params]
            torch._foreach_mul_(bufs, group["momentum"])
            torch._foreach_add_(bufs, grads)
            grads = list(torch._foreach_add(grads, bufs, alpha=group["momentum"])) \
                if group["nesterov"] else bufs
        torch._foreach_add_(params, torch._foreach_mul(grads, -lr))

    def __call__(self, x: torch.Tensor, targets: torch.Tensor,
                 lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        groups = self.optimizer.param_groups
        for group in groups:  # the lr the optimizer's state_dict and logs show
            group["lr"] = lr * group.get("lr_scale", 1.0)
        lrs = torch.tensor([g["lr"] for g in groups], device=self.device)
        decay = torch.tensor(0.0, device=self.device)
        if self.ema is not None:
            decay = torch.tensor(self.ema.next_decay(), device=self.device)
        return self.compiled(x, targets, lrs, decay)
