"""`train_one_epoch` and `evaluate`: plain functions over objects, returning metric dicts."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

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
    """Cross-entropy for class indices (N,) or soft targets (N, K) (mixup / cutmix)."""
    return F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)


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


def train_one_epoch(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer,
                    state: StepState, lr_at: Callable[[int], float], device: torch.device,
                    amp: str = "off", scaler: torch.amp.GradScaler | None = None,
                    ema: ModelEMA | None = None, grad_clip: float = 0.0,
                    label_smoothing: float = 0.0, channels_last: bool = False,
                    should_stop: Callable[[], bool] = lambda: False, skip: int = 0,
                    log_every: int = 50, on_batch: Callable[[], None] | None = None,
                    on_log: Callable[[dict], None] | None = None,
                    scale_at: Callable[[int], float] | None = None) -> dict:
    """One pass over `loader` (the first `skip` batches replayed without training, for exact
    resume mid-epoch). Stops early when `should_stop()` says so after a step (under torchrun it
    must return the same answer on every rank). `scale_at(step)` < 1 shrinks the batch to that
    fraction of its side (progressive resizing). Metrics are summed over ranks.

    Returns {loss, acc, images, seconds, images_per_s, stopped}."""
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    bad = torch.zeros((), dtype=torch.bool, device=device)
    images = 0
    start = time.perf_counter()
    stopped = False
    for i, (x, targets) in enumerate(loader):
        if i < skip:
            continue  # the batch was drawn (keeping every random stream in place), not trained
        if scale_at is not None:
            x = resize(x, scale_at(state.step))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        lr = lr_at(state.step)
        set_lr(optimizer, lr)
        with autocast(device, amp):
            logits = model(x)
        loss = loss_fn(logits, targets, label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
        if ema is not None:
            ema.update(model)
        n = len(x)
        images += n
        detached = loss.detach()
        bad |= ~torch.isfinite(detached)
        loss_sum += detached * n
        correct += (logits.detach().argmax(1) == _hard(targets)).sum()
        state.step += 1
        state.batch = i + 1
        if on_batch is not None:
            on_batch()
        if state.step % log_every == 0:
            # one host sync every log_every steps, not every step; every rank stops together
            if bool(all_reduce(bad.clone().float(), "max")):
                raise NonFiniteLoss(state.step)
            if on_log is not None:
                on_log({"step": state.step, "lr": lr, "loss": float(detached),
                        "acc": float(correct) / images,  # this epoch's so far, this process
                        "images": images, "seconds": time.perf_counter() - start})
        if should_stop():
            stopped = True
            break
    if bool(all_reduce(bad.clone().float(), "max")):
        raise NonFiniteLoss(state.step)
    seconds = time.perf_counter() - start
    totals = all_reduce(torch.stack([loss_sum.float(), correct.float(),
                                     torch.tensor(float(images), device=device)]))
    loss_sum, correct, images = totals[0], totals[1], int(totals[2])
    return {"loss": float(loss_sum) / max(images, 1), "acc": float(correct) / max(images, 1),
            "images": images, "seconds": seconds,
            "images_per_s": images / seconds if seconds > 0 else 0.0, "stopped": stopped}


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: torch.device, num_classes: int,
             amp: str = "off", channels_last: bool = False, tta: bool = False,
             return_predictions: bool = False,
             on_batch: Callable[[], None] | None = None) -> dict:
    """Loss, top-1, top-5 and per-class accuracy (fractions), plus the confusion matrix
    (rows: true class, columns: predicted). `tta` averages the softmax over the image and its
    mirror. `on_batch` is called after each batch (a progress bar)."""
    model.eval()
    k = num_classes
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    top1 = torch.zeros((), device=device, dtype=torch.long)
    top5 = torch.zeros((), device=device, dtype=torch.long)
    confusion = torch.zeros(k * k, device=device, dtype=torch.long)
    predictions = []
    count = 0
    for x, labels in loader:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            logits = model(x).float()
            if tta:
                logits = torch.logsumexp(torch.stack(
                    [logits.log_softmax(1), model(x.flip(3)).float().log_softmax(1)]), 0)
                logits = logits - torch.log(torch.tensor(2.0, device=device))
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
        pred = logits.topk(min(5, k), dim=1).indices  # (N, 5)
        top1 += (pred[:, 0] == labels).sum()
        top5 += (pred == labels[:, None]).any(1).sum()
        confusion += torch.bincount(labels * k + pred[:, 0], minlength=k * k)
        if return_predictions:
            predictions.append(pred[:, 0].cpu())
        count += len(labels)
        if on_batch is not None:
            on_batch()
    totals = all_reduce(torch.stack([loss_sum, top1.double(), top5.double(),
                                     torch.tensor(float(count), device=device,
                                                  dtype=torch.float64)]))
    count = int(totals[3])
    confusion = all_reduce(confusion).view(k, k).cpu()
    per_class = (confusion.diag().double() / confusion.sum(1).clamp_min(1)).tolist()
    out = {"loss": float(totals[0]) / max(count, 1), "top1": int(totals[1]) / max(count, 1),
           "top5": int(totals[2]) / max(count, 1), "count": count, "per_class": per_class,
           "confusion": confusion.tolist()}
    if return_predictions:
        out["predictions"] = torch.cat(predictions).tolist() if predictions else []
    return out
