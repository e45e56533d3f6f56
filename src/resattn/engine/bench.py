"""Throughput and peak memory of one model configuration, for `resattn bench`."""

from __future__ import annotations

import sys
import time

import torch
from torch import nn

from ..models import create_model, inference_model
from .loop import autocast


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(step, device: torch.device, warmup: int, seconds: float, min_steps: int) -> float:
    """Seconds per step: `warmup` untimed steps, then steps until `seconds` and `min_steps`."""
    for _ in range(warmup):
        step()
    _sync(device)
    start, n = time.perf_counter(), 0
    while n < min_steps or time.perf_counter() - start < seconds:
        step()
        n += 1
        if device.type == "cuda" and n % 10 == 0:
            _sync(device)
    _sync(device)
    return (time.perf_counter() - start) / n


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource
    except ImportError:  # Windows has no getrusage
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, else kB


def measure(name: str, mode: str, batch_size: int, input_size: int, device: str,
            amp: str = "off", channels_last: bool = False, compile: bool = False,
            seconds: float = 5.0, warmup: int = 2, min_steps: int = 3) -> dict:
    """images/s of a training step (forward, backward, SGD) or of fast inference (BN folded,
    inference_mode) with the given precision, memory format and compilation."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as `resattn train` does on CUDA
    torch.manual_seed(0)
    net = create_model(name).to(dev)
    model: nn.Module = net
    x = torch.randn(batch_size, 3, input_size, input_size, device=dev)
    if mode == "inference":
        micro = 64 if dev.type == "cpu" else None  # the library's own CPU inference path
        model = inference_model(model, channels_last=channels_last, micro_batch=micro)
    elif channels_last:
        # torch's stubs lack Module.to(memory_format=...)
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    run = torch.compile(model) if compile else model
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    if mode == "inference":
        def step():
            with torch.inference_mode(), autocast(dev, amp):
                run(x)
    else:
        y = torch.randint(0, net.num_classes, (batch_size,), device=dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast(dev, amp):
                loss = torch.nn.functional.cross_entropy(run(x).float(), y)
            loss.backward()
            opt.step()

    first = time.perf_counter()
    step()  # the first step pays for compilation (and cuDNN's algorithm search)
    _sync(dev)
    first_step_s = time.perf_counter() - first
    per_step = _timed(step, dev, warmup + (2 if compile else 0), seconds, min_steps)
    return {"model": name, "mode": mode, "batch_size": batch_size, "input_size": input_size,
            "first_step_s": first_step_s,
            "device": str(dev), "amp": amp, "channels_last": channels_last, "compile": compile,
            "images_per_s": batch_size / per_step, "peak_memory_mb": peak_memory_mb(dev)}
