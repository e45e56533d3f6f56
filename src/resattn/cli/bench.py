"""`resattn bench MODEL`: parameters, FLOPs, training and inference throughput and peak memory,
with and without channels-last, bf16 autocast and torch.compile."""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp

import torch

from ..engine.bench import measure
from ..errors import UserError
from ..models import count_flops, count_params, create_model, get_spec, list_models
from .common import cpu_has_native_bf16, resolve_device

VARIANTS = {  # name: (amp, channels_last)
    "fp32": ("off", False),
    "fp32+cl": ("off", True),
    "bf16": ("bf16", False),
    "bf16+cl": ("bf16", True),
}


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="benchmark a model's speed and memory",
                       description="Parameters, forward FLOPs, training and inference "
                                   "throughput and peak memory on the current device. Each "
                                   "variant runs in a fresh process, so peak memory is its own.")
    p.add_argument("model", help=f"one of: {', '.join(list_models())}")
    p.add_argument("--batch-size", type=int, default=64, help="training batch")
    p.add_argument("--inference-batch-size", type=int, default=256)
    p.add_argument("--input-size", type=int, default=None, help="default: the model's own")
    p.add_argument("--device", default="auto")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--compile", action="store_true",
                   help="also measure each variant under torch.compile (slow to start)")
    p.add_argument("--modes", nargs="+", default=["train", "inference"],
                   choices=["train", "inference"])
    p.add_argument("--seconds", type=float, default=5.0, help="timed seconds per measurement")
    p.add_argument("--json", action="store_true")
    p.set_defaults(command=name)


def _worker(queue, kwargs):
    try:
        queue.put(measure(**kwargs))
    except Exception as exc:  # reported in the table, not a crash of the whole benchmark
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def run_isolated(kwargs: dict) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(queue, kwargs))
    proc.start()
    result = queue.get()
    proc.join()
    return {**kwargs, **result}


def run(args: argparse.Namespace) -> int:
    if args.model not in list_models():
        raise UserError(f"unknown model {args.model!r}; valid models: {', '.join(list_models())}")
    if min(args.batch_size, args.inference_batch_size) < 1:
        raise UserError("batch sizes must be >= 1")
    device = resolve_device(args.device)
    size = args.input_size or get_spec(args.model).input_size
    with torch.device("meta"):
        model = create_model(args.model)
    header = {"model": args.model, "params": count_params(model),
              "flops": count_flops(model, size), "input_size": size, "device": str(device),
              "threads": torch.get_num_threads(),
              "cpu_native_bf16": cpu_has_native_bf16() if device.type == "cpu" else None}
    rows = []
    for mode in args.modes:
        batch = args.batch_size if mode == "train" else args.inference_batch_size
        for variant in args.variants:
            for compiled in ([False, True] if args.compile else [False]):
                amp, cl = VARIANTS[variant]
                row = run_isolated(dict(name=args.model, mode=mode, batch_size=batch,
                                        input_size=size, device=str(device), amp=amp,
                                        channels_last=cl, compile=compiled,
                                        seconds=args.seconds))
                row["variant"] = variant + ("+compile" if compiled else "")
                rows.append(row)
                if not args.json:
                    _print_row(row)
    if args.json:
        print(json.dumps({**header, "results": rows}, indent=2))
    else:
        print(f"{args.model}: {header['params'] / 1e6:.2f}M params, "
              f"{header['flops'] / 1e9:.3f} GFLOPs at {size}x{size}, {device}, "
              f"{header['threads']} threads")
    return 0


def _print_row(row: dict) -> None:
    if "error" in row:
        print(f"{row['mode']:>9}  {row['variant']:<18}  failed: {row['error']}")
        return
    print(f"{row['mode']:>9}  {row['variant']:<18}  batch {row['batch_size']:>4}  "
          f"{row['images_per_s']:9.1f} img/s  peak {row['peak_memory_mb']:8.0f} MB", flush=True)
