"""`resattn bench MODEL`: parameters, FLOPs, training and inference throughput and peak memory,
with and without channels-last, bf16 autocast and torch.compile, beside the compute floor."""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import signal
from collections.abc import Callable
from queue import Empty

import torch

from ..engine.bench import measure
from ..engine.provenance import device_name
from ..errors import UserError
from ..models import count_flops, count_params, create_model, get_spec, list_models
from ..models.stats import model_stats
from ..runtime import cpu_has_native_bf16, resolve_device
from .common import add_device_arg

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


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description="Parameters, forward FLOPs, training and inference "
                                   "throughput and peak memory on the current device, beside "
                                   "the floor set by the device's bf16 matrix rate.")
    p.add_argument("model", help=f"one of: {', '.join(list_models())}")
    p.add_argument("--batch-size", type=int, nargs="+", default=[64],
                   help="training batch sizes (default: 64)")
    p.add_argument("--inference-batch-size", type=int, nargs="+", default=[256],
                   help="inference batch sizes (default: 256)")
    p.add_argument("--input-size", type=int, default=None,
                   help="side of the input images (default: the model's own)")
    add_device_arg(p)
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS),
                   help="precision (fp32, bf16) and memory layout (+cl: channels-last) to "
                        f"measure (default: {' '.join(DEFAULT_VARIANTS)})")
    p.add_argument("--compile", action="store_true",
                   help="also measure each variant under torch.compile (slow to start)")
    p.add_argument("--modes", nargs="+", default=["train", "inference"],
                   choices=["train", "inference"], help="what to measure (default: both)")
    p.add_argument("--seconds", type=float, default=5.0,
                   help="timed seconds per measurement (default: %(default)s)")
    p.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                   help="each measurement in a fresh process (default on the CPU, where peak "
                        "memory is the process's peak RSS; on CUDA the allocator's peak is "
                        "reset between measurements in one process)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="the device's dense bf16 rate for the floor column (default: known "
                        "GPUs by name)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(command=name)


def _worker(queue, kwargs):
    try:
        queue.put(measure(**kwargs))
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
        result = measure(**kwargs)
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


def run(args: argparse.Namespace) -> int:
    if args.model not in list_models():
        raise UserError(f"unknown model {args.model!r}; valid models: {', '.join(list_models())}")
    if min(args.batch_size + args.inference_batch_size) < 1:
        raise UserError("batch sizes must be >= 1")
    if args.peak_tflops is not None and args.peak_tflops <= 0:
        raise UserError("--peak-tflops must be > 0")
    if args.seconds <= 0 or not math.isfinite(args.seconds):
        raise UserError(f"--seconds {args.seconds} is not valid; it must be > 0")
    if args.input_size is not None and args.input_size < 1:
        raise UserError(f"--input-size {args.input_size} is not valid; it must be >= 1 (or "
                        "left out: the model's own)")
    device = resolve_device(args.device)
    size = args.input_size or get_spec(args.model).input_size
    if size == get_spec(args.model).input_size:  # the shipped table: no model to build
        stats = model_stats(args.model)
        params, macs = stats["params"], stats["flops"]
    else:
        with torch.device("meta"):
            model = create_model(args.model)
        params, macs = count_params(model), count_flops(model, size)
    rate = peak_rate(device, args.peak_tflops)
    header = {"model": args.model, "params": params, "flops": macs,  # flops: forward MACs
              "input_size": size, "device": str(device),
              "device_name": device_name(device),  # the CPU's model and bf16/AMX/VNNI flags
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "cpu_native_bf16": cpu_has_native_bf16() if device.type == "cpu" else None,
              "peak_flops": rate}
    isolate = args.isolate if args.isolate is not None else device.type != "cuda"
    variants = list(args.variants)
    if args.compile:
        variants += [v + "+compile" for v in variants
                     if not v.endswith("+compile") and v + "+compile" in VARIANTS]
    rows = []
    for mode in args.modes:
        batches = args.batch_size if mode == "train" else args.inference_batch_size
        for batch in batches:
            for variant in variants:
                amp, cl, compiled = VARIANTS[variant]
                kwargs = dict(name=args.model, mode=mode, batch_size=batch, input_size=size,
                              device=str(device), amp=amp, channels_last=cl, compile=compiled,
                              seconds=args.seconds)
                row = run_isolated(kwargs) if isolate else run_here(kwargs)
                row["variant"] = variant
                if rate and "error" not in row:
                    # a training step is ~3 forward passes of work (forward, two for backward)
                    work = 2 * macs * (3 if mode == "train" else 1)
                    row["floor_images_per_s"] = rate / work
                    row["fraction_of_floor"] = row["images_per_s"] / row["floor_images_per_s"]
                rows.append(row)
                if not args.json:
                    _print_row(row)
    if args.json:
        print(json.dumps({**header, "results": rows}, indent=2))
    else:
        native = {True: ", native bf16", False: ", no native bf16 (fp32 by default)",
                  None: ""}[header["cpu_native_bf16"]]
        print(f"{args.model}: {header['params'] / 1e6:.2f}M params, "
              f"{macs / 1e9:.3f} GMACs at {size}x{size}; {header['device_name']}{native}; "
              f"torch {torch.__version__}")
    if rows and all("error" in row for row in rows):
        raise UserError("every measurement failed (see above); try a smaller batch or input "
                        "size")
    return 0


def _print_row(row: dict) -> None:
    if "error" in row:
        print(f"{row['mode']:>9}  {row['variant']:<18}  batch {row['batch_size']:>4}  "
              f"failed: {row['error']}")
        return
    floor = ""
    if "floor_images_per_s" in row:
        floor = (f"  floor {row['floor_images_per_s']:9.0f} img/s "
                 f"({row['fraction_of_floor']:.1%} of it)")
    print(f"{row['mode']:>9}  {row['variant']:<18}  batch {row['batch_size']:>4}  "
          f"{row['images_per_s']:9.1f} img/s  peak {row['peak_memory_mb']:8.0f} MB  "
          f"first step {row['first_step_s']:6.1f} s{floor}", flush=True)
