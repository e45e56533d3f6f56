"""Throughput and peak memory of one model in one configuration (`resattn bench`), and the one
timer every measurement of the library uses (`seconds_per_call`, on torch.utils.benchmark)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.benchmark import Timer

from ..models import inference_model
from .loop import autocast


@dataclass(frozen=True)
class Case:
    """One measurement: a training step (forward, backward, SGD) or fast inference (BN folded,
    inference_mode) of `batch_size` images of side `input_size` on `device`, with the given
    precision (`amp`), memory format and compilation."""
    mode: str
    batch_size: int
    input_size: int
    device: str
    amp: str = "off"
    channels_last: bool = False
    compile: bool = False


def seconds_per_call(fn: Callable[[], object], seconds: float = 1.0, warmup: int = 1) -> float:
    """Median seconds of one `fn()` call: `warmup` untimed calls, then blocks of calls for at
    least `seconds` (torch.utils.benchmark: accelerators synchronised around each block, torch's
    own thread count kept)."""
    for _ in range(warmup):
        fn()
    timer = Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return float(timer.blocked_autorange(min_run_time=seconds).median)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource
    except ImportError:  # Windows has no getrusage
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, else kB


def _step(model: nn.Module, case: Case, dev: torch.device) -> Callable[[], None]:
    """The call to time: one inference batch, or one training step, on a fixed batch."""
    x = torch.randn(case.batch_size, 3, case.input_size, case.input_size, device=dev)
    if case.mode == "inference":
        micro = 64 if dev.type == "cpu" else None  # the library's own CPU inference path
        model = inference_model(model, channels_last=case.channels_last, micro_batch=micro)
    elif case.channels_last:
        # torch's stubs lack Module.to(memory_format=...)
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if case.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    run = torch.compile(model) if case.compile else model

    if case.mode == "inference":
        def step() -> None:
            with torch.inference_mode(), autocast(dev, case.amp):
                run(x)
        return step
    classes = getattr(model, "num_classes", 10)
    y = torch.randint(0, classes, (case.batch_size,), device=dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast(dev, case.amp):
            loss = torch.nn.functional.cross_entropy(run(x).float(), y)
        loss.backward()
        opt.step()
    return train_step


def measure(model: nn.Module, case: Case, seconds: float = 5.0, warmup: int = 2) -> dict:
    """{images_per_s, first_step_s, peak_memory_mb} of `model` (moved to the case's device) as
    `case` says: the first step timed alone (it pays for compilation and cuDNN's algorithm
    search), then `warmup` more untimed, then the median step over `seconds`."""
    dev = torch.device(case.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as `resattn train` does on CUDA
    step = _step(model.to(dev), case, dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    first = time.perf_counter()
    step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    first_step_s = time.perf_counter() - first
    per_step = seconds_per_call(step, seconds, warmup + (2 if case.compile else 0))
    return {"first_step_s": first_step_s, "images_per_s": case.batch_size / per_step,
            "peak_memory_mb": peak_memory_mb(dev)}
