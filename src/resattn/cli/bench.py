"""`resattn bench MODEL`: parameters, FLOPs, training and inference throughput and peak memory,
with and without channels-last, bf16 autocast and torch.compile, beside the compute floor
(`resattn.api.benchmark`)."""

from __future__ import annotations

import argparse
import json

from ..api.benchmark import DEFAULT_VARIANTS, MODES, VARIANTS, BenchPlan, benchmark
from ..api.catalog import list_models
from ..errors import UserError
from .common import add_device_arg


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
    p.add_argument("--modes", nargs="+", default=list(MODES),
                   choices=MODES, help="what to measure (default: both)")
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


def run(args: argparse.Namespace) -> int:
    plan = BenchPlan(modes=tuple(args.modes), train_batches=tuple(args.batch_size),
                     inference_batches=tuple(args.inference_batch_size),
                     variants=tuple(args.variants), compile=args.compile, seconds=args.seconds,
                     input_size=args.input_size, device=args.device, isolate=args.isolate,
                     peak_tflops=args.peak_tflops)
    doc = benchmark(args.model, plan, on_row=None if args.json else _print_row)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        native = {True: ", native bf16", False: ", no native bf16 (fp32 by default)",
                  None: ""}[doc["cpu_native_bf16"]]
        size = doc["input_size"]
        print(f"{args.model}: {doc['params'] / 1e6:.2f}M params, "
              f"{doc['flops'] / 1e9:.3f} GMACs at {size}x{size}; {doc['device_name']}{native}; "
              f"torch {doc['torch']}")
    if doc["results"] and all("error" in row for row in doc["results"]):
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
