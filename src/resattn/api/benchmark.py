"""`benchmark`: parameters, FLOPs, training and inference throughput and peak memory of a model,
with and without channels-last, bf16 autocast and torch.compile, beside the compute floor
(`resattn bench`). Each measurement runs in a fresh process on the CPU, where peak memory is the
process's; a worker that dies is a failed row, never a wait forever."""

from __future__ import annotations

import math
import multiprocessing as mp
import signal
from collections.abc import Callable
from dataclasses import dataclass
from queue import Empty
from typing import Any

import torch

from ..engine.bench import Case, measure
from ..errors import UserError
from ..models import count_flops, count_params, create_model, get_spec, list_models
from ..models.stats import model_stats
from ..provenance import device_name
from ..runtime import cpu_has_native_bf16, resolve_device

VARIANTS = {  # name: (amp, channels_last, compile)
    "fp32": ("off", False, False),
    "fp32+cl": ("off", True, False),
    "bf16": ("bf16", False, False),
    "bf16+cl": ("bf16", True, False),
    "fp32+cl+compile": ("off", True, True),
    "bf16+cl+compile": ("bf16", True, True),
}
DEFAULT_VARIANTS = ["fp32", "fp32+cl", "bf16", "bf16+cl"]
# dense bf16 matrix rate (FLOP/s, no sparsity) of GPUs by name, from the vendors' datasheets
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12}


MODES = ("train", "inference")


@dataclass
class BenchPlan:
    """What `benchmark` measures: every mode x batch size x variant, `seconds` each."""

    modes: tuple[str, ...] = MODES
    train_batches: tuple[int, ...] = (64,)
    inference_batches: tuple[int, ...] = (256,)
    variants: tuple[str, ...] = tuple(DEFAULT_VARIANTS)
    compile: bool = False  # also each variant under torch.compile
    seconds: float = 5.0
    input_size: int | None = None  # None: the model's own
    device: str = "auto"
    isolate: bool | None = None  # None: on the CPU, not on CUDA
    peak_tflops: float | None = None  # None: known GPUs by name

    def check(self, model: str) -> None:
        if model not in list_models():
            raise UserError(f"unknown model {model!r}; valid models: {', '.join(list_models())}")
        if min(self.train_batches + self.inference_batches) < 1:
            raise UserError("batch sizes must be >= 1")
        if self.peak_tflops is not None and self.peak_tflops <= 0:
            raise UserError("--peak-tflops must be > 0")
        if self.seconds <= 0 or not math.isfinite(self.seconds):
            raise UserError(f"--seconds {self.seconds} is not valid; it must be > 0")
        if self.input_size is not None and self.input_size < 1:
            raise UserError(f"--input-size {self.input_size} is not valid; it must be >= 1 (or "
                            "left out: the model's own)")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or any(m not in MODES for m in self.modes):
            raise UserError(f"unknown variant or mode {(unknown or list(self.modes))[0]!r}; "
                            f"variants: {', '.join(VARIANTS)}; modes: {', '.join(MODES)}")

    def all_variants(self) -> list[str]:
        variants = list(self.variants)
        if self.compile:
            variants += [v + "+compile" for v in variants
                         if not v.endswith("+compile") and v + "+compile" in VARIANTS]
        return variants


def measure_row(kwargs: dict) -> dict:
    """One row: the model `kwargs["name"]`, built afresh (seed 0), measured as the rest of
    `kwargs` says (a `Case`'s fields and `seconds`)."""
    torch.manual_seed(0)
    case = Case(**{k: kwargs[k] for k in Case.__dataclass_fields__})
    return {"model": kwargs["name"], **measure(create_model(kwargs["name"]), case,
                                               kwargs["seconds"])}


def _worker(queue, kwargs):
    try:
        queue.put(measure_row(kwargs))
    except Exception as exc:  # reported in the table, not a crash of the whole benchmark
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def run_isolated(kwargs: dict, target: Callable = _worker) -> dict:
    """One measurement in a fresh process; a worker that dies (the out-of-memory killer, a
    crash) is a failed row that says how it ended, never a wait forever."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(queue, kwargs))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=0.5)
            break
        except Empty:
            if not proc.is_alive():
                try:  # it may have answered just before it ended
                    result = queue.get(timeout=1)
                except Empty:
                    result = {"error": died(proc.exitcode)}
                break
    proc.join()
    return {**kwargs, **result}


def died(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"the worker exited with signal {-code} ({name}){hint}"
    return f"the worker exited with code {code} without a result"


def run_here(kwargs: dict) -> dict:
    try:
        result = measure_row(kwargs)
    except Exception as exc:  # reported in the table, not a crash of the whole benchmark
        result = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        torch._dynamo.reset()  # no compiled graph or guard outlives its measurement
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return {**kwargs, **result}


def peak_rate(device: torch.device, given: float | None) -> float | None:
    """FLOP/s of dense bf16 matrix work, for the floor: --peak-tflops, else known GPUs."""
    if given is not None:
        return given * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((rate for key, rate in PEAK_BF16.items() if key in name), None)


def size_and_work(model: str, size: int | None) -> tuple[int, int, int]:
    """(input side, parameters, forward MACs): the shipped table at the model's own size, else
    counted on the meta device."""
    size = size or get_spec(model).input_size
    if size == get_spec(model).input_size:  # the shipped table: no model to build
        stats = model_stats(model)
        return size, stats["params"], stats["flops"]
    with torch.device("meta"):
        net = create_model(model)
    return size, count_params(net), count_flops(net, size)


def benchmark(model: str, plan: BenchPlan | None = None,
              on_row: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Measure `model` as `plan` says; returns {model, params, flops, input_size, device,
    device_name, threads, torch, cpu_native_bf16, peak_flops, results: [row, ...]}. A row that
    failed holds "error"; `on_row` sees each row as it is measured."""
    plan = plan or BenchPlan()
    plan.check(model)
    device = resolve_device(plan.device)
    size, params, macs = size_and_work(model, plan.input_size)
    rate = peak_rate(device, plan.peak_tflops)
    header = {"model": model, "params": params, "flops": macs,  # flops: forward MACs
              "input_size": size, "device": str(device),
              "device_name": device_name(device),  # the CPU's model and bf16/AMX/VNNI flags
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "cpu_native_bf16": cpu_has_native_bf16() if device.type == "cpu" else None,
              "peak_flops": rate}
    isolate = plan.isolate if plan.isolate is not None else device.type != "cuda"
    rows = []
    for mode in plan.modes:
        batches = plan.train_batches if mode == "train" else plan.inference_batches
        for batch in batches:
            for variant in plan.all_variants():
                amp, cl, compiled = VARIANTS[variant]
                kwargs = dict(name=model, mode=mode, batch_size=batch, input_size=size,
                              device=str(device), amp=amp, channels_last=cl, compile=compiled,
                              seconds=plan.seconds)
                row = run_isolated(kwargs) if isolate else run_here(kwargs)
                row["variant"] = variant
                if rate and "error" not in row:
                    # a training step is ~3 forward passes of work (forward, two for backward)
                    work = 2 * macs * (3 if mode == "train" else 1)
                    row["floor_images_per_s"] = rate / work
                    row["fraction_of_floor"] = row["images_per_s"] / row["floor_images_per_s"]
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    return {**header, "results": rows}
