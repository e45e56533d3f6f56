"""`train_one_epoch` and `evaluate` (`log_probs` then `score`): plain functions over objects,
returning metric dicts."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..models.inference import inference_model
from .distributed import all_reduce
from .ema import ModelEMA
from .optim import set_lr


class NonFiniteLoss(RuntimeError):
    def __init__(self, step: int):
        super().__init__(f"the training loss became non-finite at step {step}")
        self.step = step


def autocast(device: torch.device, amp: str):
    """bf16 / fp16 autocast on the device, or nothing for "off"."""
    if amp == "off":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def loss_fn(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0):
    """Cross-entropy for class indices (N,) or soft targets (N, K) (mixup / cutmix), in fp32
    at least (autocast's bf16 / fp16 logits are widened; fp64 stays)."""
    if logits.dtype != torch.float64:
        logits = logits.float()
    return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)


def scaled_side(side: int, scale: float) -> int:
    """The side of a batch that `resize` shrinks by `scale`: rounded, at least 1 pixel."""
    return max(1, round(side * scale))


def resize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, round(H * scale), round(W * scale)), antialiased bilinear; the
    batch itself when scale is 1."""
    if scale >= 1:
        return x
    h, w = x.shape[-2:]
    size = (scaled_side(h, scale), scaled_side(w, scale))
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def _hard(targets: torch.Tensor) -> torch.Tensor:
    return targets.argmax(1) if targets.ndim == 2 else targets


@dataclass
class StepState:
    """Where training stands; updated after every optimizer step so an interruption between
    steps can be saved exactly."""

    step: int = 0  # optimizer steps so far, all epochs
    batch: int = 0  # batches done in the current epoch
    stop_requested: bool = False
    extra: dict = field(default_factory=dict)


@dataclass
class TrainStep:
    """One optimizer step on a batch: forward under autocast, loss (label smoothing), backward
    (scaled under fp16), gradient clipping, the step, the weights' moving average. Returns the
    detached loss and logits; nothing here waits for the device."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    amp: str = "off"
    scaler: torch.amp.GradScaler | None = None
    ema: ModelEMA | None = None
    grad_clip: float = 0.0
    label_smoothing: float = 0.0

    def __call__(self, x: torch.Tensor, targets: torch.Tensor,
                 lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        model, optimizer, scaler = self.model, self.optimizer, self.scaler
        set_lr(optimizer, lr)
        with autocast(self.device, self.amp):
            logits = model(x)
        loss = loss_fn(logits, targets, self.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if self.grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if self.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
            optimizer.step()
        if self.ema is not None:
            self.ema.update(model)
        return loss.detach(), logits.detach()


@dataclass
class EpochHooks:
    """What an epoch asks of its caller: the learning rate and batch side of each step
    (`lr_at`, `scale_at` < 1 shrinks the batch: progressive resizing), whether to stop after
    a step (`should_stop`; under torchrun the same answer on every rank), and where to report
    (`on_batch` after each batch, `on_log` every `log_every` steps)."""

    lr_at: Callable[[int], float]
    scale_at: Callable[[int], float] | None = None
    should_stop: Callable[[], bool] = lambda: False
    on_batch: Callable[[], None] | None = None
    on_log: Callable[[dict], None] | None = None
    log_every: int = 50
    channels_last: bool = False


class _Tally:
    """The epoch's loss, accuracy and non-finite flag, summed on the device: read once per
    log interval and at the end, never per step."""

    def __init__(self, device: torch.device):
        self.loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device)
        self.bad = torch.zeros((), dtype=torch.bool, device=device)
        self.images = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        n = len(logits)
        self.images += n
        self.bad |= ~torch.isfinite(loss)
        self.loss += loss * n
        self.correct += (logits.argmax(1) == _hard(targets)).sum()

    def check(self, step: int) -> None:
        """A non-finite loss on any rank stops every rank here (one small collective)."""
        if bool(all_reduce(self.bad.clone().float(), "max")):
            raise NonFiniteLoss(step)


class Step(Protocol):
    """What `train_one_epoch` calls: a `TrainStep`, or the compiled whole-step `GraphStep`."""
    model: nn.Module
    device: torch.device

    def __call__(self, x: torch.Tensor, targets: torch.Tensor,
                 lr: float) -> tuple[torch.Tensor, torch.Tensor]: ...


def train_one_epoch(step: Step, loader: Iterable, state: StepState, hooks: EpochHooks,
                    skip: int = 0) -> dict:
    """One pass over `loader`, a `step` per batch (the first `skip` batches replayed without
    training, for exact resume mid-epoch), as `hooks` say. Metrics are summed over ranks.

    Returns {loss, acc, images, seconds, images_per_s, stopped}."""
    step.model.train()
    tally, device = _Tally(step.device), step.device
    start = time.perf_counter()
    stopped = False
    for i, (x, targets) in enumerate(loader):
        if i < skip:
            continue  # the batch was drawn (keeping every random stream in place), not trained
        if hooks.scale_at is not None:
            x = resize(x, hooks.scale_at(state.step))
        if hooks.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        lr = hooks.lr_at(state.step)
        loss, logits = step(x, targets, lr)
        tally.add(loss, logits, targets)
        state.step += 1
        state.batch = i + 1
        if hooks.on_batch is not None:
            hooks.on_batch()
        if state.step % hooks.log_every == 0:
            tally.check(state.step)  # one host sync every log_every steps, not every step
            if hooks.on_log is not None:
                hooks.on_log({"step": state.step, "lr": lr, "loss": float(loss),
                              "acc": float(tally.correct) / tally.images,  # this epoch's
                              "images": tally.images, "seconds": time.perf_counter() - start})
        if hooks.should_stop():
            stopped = True
            break
    tally.check(state.step)
    seconds = time.perf_counter() - start
    totals = all_reduce(torch.stack([tally.loss.float(), tally.correct.float(),
                                     torch.tensor(float(tally.images), device=device)]))
    loss_sum, correct, images = totals[0], totals[1], int(totals[2])
    return {"loss": float(loss_sum) / max(images, 1), "acc": float(correct) / max(images, 1),
            "images": images, "seconds": seconds,
            "images_per_s": images / seconds if seconds > 0 else 0.0, "stopped": stopped}


# images per slice of an evaluation batch on a CPU: attention56 evaluated 1.1-1.5x faster in
# slices of 16, 32 or 64 images (alike) than in whole batches of 128 (results.md, eval-slices)
EVAL_SLICE_CPU = 32


def evaluation_model(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """The module evaluation runs: a frozen copy of `model` with its BatchNorms folded into the
    convolutions before them (`models.inference_model`), in slices of EVAL_SLICE_CPU images on
    a CPU, whose activations then stay in cache. Its numbers agree with the model's to float
    rounding. A model with a BatchNorm that keeps no running statistics (nothing to fold) runs
    as it is."""
    if any(isinstance(m, nn.BatchNorm2d) and m.running_mean is None for m in model.modules()):
        return model
    return inference_model(model, channels_last,
                           EVAL_SLICE_CPU if device.type == "cpu" else None)


VIEWS = ("plain", "flip", "tta")


@torch.no_grad()
def log_probs(model: nn.Module, loader: Iterable, device: torch.device, amp: str = "off",
              channels_last: bool = False, view: str = "plain",
              on_batch: Callable[[], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-image log-softmax of `model` over `loader` (in its order, on the device) and the
    labels: of the images as they are (`view` "plain"), of their mirror images ("flip"), or
    both averaged in one pass ("tta", flip test-time augmentation). `on_batch` is called after
    each batch (a progress bar)."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, not {view!r}")
    model.eval()
    outs, targets = [], []
    for x, labels in loader:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            out = model(x.flip(3) if view == "flip" else x).float().log_softmax(1)
            if view == "tta":
                out = mirror_average(out, model(x.flip(3)).float().log_softmax(1))
        outs.append(out)
        targets.append(labels)
        if on_batch is not None:
            on_batch()
    if not outs:
        return torch.zeros(0, 0, device=device), torch.zeros(0, dtype=torch.long, device=device)
    return torch.cat(outs), torch.cat(targets)


def mirror_average(plain: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
    """Flip TTA: the log of the mean of the two softmaxes, from their log-softmaxes."""
    return torch.logsumexp(torch.stack([plain, flipped]), 0) - math.log(2.0)


def score(log_probs: torch.Tensor, labels: torch.Tensor, num_classes: int,
          return_predictions: bool = False) -> dict:
    """Loss, top-1, top-5 and per-class accuracy (fractions), plus the confusion matrix (rows:
    true class, columns: predicted) of per-image log-probabilities; summed over the ranks."""
    k, device = num_classes, labels.device
    count = len(labels)
    if count:
        loss_sum = F.nll_loss(log_probs, labels, reduction="sum").double()
        pred = log_probs.topk(min(5, k), dim=1).indices  # (N, 5)
        top1 = (pred[:, 0] == labels).sum().double()
        top5 = (pred == labels[:, None]).any(1).sum().double()
        confusion = torch.bincount(labels * k + pred[:, 0], minlength=k * k)
    else:
        loss_sum = top1 = top5 = torch.zeros((), device=device, dtype=torch.float64)
        confusion = torch.zeros(k * k, device=device, dtype=torch.long)
    totals = all_reduce(torch.stack([loss_sum, top1, top5,
                                     torch.tensor(float(count), device=device,
                                                  dtype=torch.float64)]))
    total = int(totals[3])
    confusion = all_reduce(confusion).view(k, k).cpu()
    per_class = (confusion.diag().double() / confusion.sum(1).clamp_min(1)).tolist()
    out = {"loss": float(totals[0]) / max(total, 1), "top1": int(totals[1]) / max(total, 1),
           "top5": int(totals[2]) / max(total, 1), "count": total, "per_class": per_class,
           "confusion": confusion.tolist()}
    if return_predictions:
        out["predictions"] = pred[:, 0].tolist() if count else []
    return out


def evaluate(model: nn.Module, loader: Iterable, device: torch.device, num_classes: int,
             amp: str = "off", channels_last: bool = False, tta: bool = False,
             on_batch: Callable[[], None] | None = None) -> dict:
    """`score` of `model` on `loader`; `tta` averages the softmax over the image and its mirror.
    `on_batch` is called after each batch (a progress bar). For each image's prediction as
    well, `score(*log_probs(...), return_predictions=True)`."""
    probs, labels = log_probs(model, loader, device, amp, channels_last,
                              "tta" if tta else "plain", on_batch)
    return score(probs, labels, num_classes)
