"""resattn against the most used public PyTorch port, on this CPU, in one process.

    python benchmarks/peer_cpu.py PEER_CHECKOUT [--rounds 3] [--seconds 8]

PEER_CHECKOUT is a local clone of tengshaofeng/ResidualAttentionNetwork-pytorch (its code is
imported from there at run time; none of it is part of resattn). Its
`ResidualAttentionModel_92_32input_update` runs in fp32 as its own training script runs it;
resattn's `attention92_wide` (the same layout) runs the way its commands run by default:

- training: a step of `resattn train` (precision from `--amp auto`, channels-last, SGD with
  Nesterov momentum), batch 64;
- inference: the path `resattn predict` takes (BatchNorm folded, channels-last, 64-image slices
  on a CPU, precision from `--amp auto`), batch 256.

The two alternate within each round; the figure is the median over rounds. Prints the CPU model
and its flags (avx512_bf16, amx, avx512_vnni), the thread count, torch version and the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from resattn.engine.bench import seconds_per_call
from resattn.engine.loop import autocast
from resattn.engine.optim import build_optimizer
from resattn.models import create_model, inference_model, quantize_int8
from resattn.provenance import cpu_model_and_flags
from resattn.runtime import cpu_has_native_bf16, resolve_amp

TRAIN_BATCH, INFER_BATCH = 64, 256


def cpu_facts() -> dict:
    model, flags = cpu_model_and_flags()
    return {"cpu": model, "avx512_bf16": "avx512_bf16" in flags, "amx": "amx_tile" in flags,
            "avx512_vnni": "avx512_vnni" in flags, "avx512f": "avx512f" in flags,
            "native_bf16_used": cpu_has_native_bf16(), "threads": torch.get_num_threads(),
            "torch": torch.__version__}


@contextlib.contextmanager
def python2_channel_counts():
    """The port was written for Python 2: `channels / 4` is a float under Python 3. While it is
    built, Conv2d and BatchNorm2d accept integral floats as counts; its code stays untouched."""
    originals = {cls: cls.__init__ for cls in (torch.nn.Conv2d, torch.nn.BatchNorm2d)}

    def integral(value):
        return int(value) if isinstance(value, float) and value.is_integer() else value

    def wrap(init):
        def patched(self, *args, **kwargs):
            init(self, *map(integral, args), **{k: integral(v) for k, v in kwargs.items()})
        return patched

    for cls, init in originals.items():
        cls.__init__ = wrap(init)
    try:
        yield
    finally:
        for cls, init in originals.items():
            cls.__init__ = init


def load_peer(path: Path) -> torch.nn.Module:
    root = path / "Residual-Attention-Network" if (path / "Residual-Attention-Network").is_dir() \
        else path
    if not (root / "model" / "residual_attention_network.py").is_file():
        sys.exit(f"error: {path} is not a checkout of tengshaofeng/"
                 "ResidualAttentionNetwork-pytorch (no model/residual_attention_network.py)")
    sys.path.insert(0, str(root))
    from model.residual_attention_network import ResidualAttentionModel_92_32input_update

    with python2_channel_counts():
        return ResidualAttentionModel_92_32input_update()


def timed(step, seconds: float, warmup: int = 2) -> float:
    """images/s of `step()` (which returns its batch size): the median step over at least
    `seconds`, by the library's own timer (torch.utils.benchmark), after `warmup` steps."""
    images = step()
    return images / seconds_per_call(step, seconds, warmup - 1)


def peer_steps(model: torch.nn.Module):
    x = torch.randn(TRAIN_BATCH, 3, 32, 32)
    y = torch.randint(0, 10, (TRAIN_BATCH,))
    xi = torch.randn(INFER_BATCH, 3, 32, 32)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)

    def train():
        model.train()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        return TRAIN_BATCH

    def infer():
        model.eval()
        with torch.inference_mode():
            model(xi)
        return INFER_BATCH

    return train, infer


def resattn_steps():
    cpu = torch.device("cpu")
    amp = resolve_amp("auto", cpu)
    model = create_model("attention92_wide").to(memory_format=torch.channels_last)
    opt = build_optimizer(model, "sgd", 0.01, 5e-4)
    x = torch.randn(TRAIN_BATCH, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (TRAIN_BATCH,))
    fast = inference_model(create_model("attention92_wide"), channels_last=True, micro_batch=64)
    xi = torch.randn(INFER_BATCH, 3, 32, 32).contiguous(memory_format=torch.channels_last)

    def train():
        model.train()
        opt.zero_grad(set_to_none=True)
        with autocast(cpu, amp):
            logits = model(x)
        F.cross_entropy(logits.float(), y).backward()
        opt.step()
        return TRAIN_BATCH

    def infer():
        with torch.inference_mode(), autocast(cpu, amp):
            fast(xi)
        return INFER_BATCH

    # `resattn predict --int8`: calibrated here on random images (speed does not depend on the
    # ranges; accuracy is measured on CIFAR-10 by `resattn evaluate --int8`)
    int8 = quantize_int8(create_model("attention92_wide").eval(), torch.randn(64, 3, 32, 32))
    xq = xi.contiguous()

    def infer_int8():
        with torch.inference_mode():
            int8(xq)
        return INFER_BATCH

    return train, infer, infer_int8, amp


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("peer", type=Path, help="local checkout of the public port")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    peer_train, peer_infer = peer_steps(load_peer(args.peer))
    ours_train, ours_infer, ours_int8, amp = resattn_steps()
    results = {k: [] for k in ("peer_train", "ours_train", "peer_infer", "ours_infer",
                               "ours_int8")}
    for r in range(args.rounds):
        results["peer_train"].append(timed(peer_train, args.seconds))
        results["ours_train"].append(timed(ours_train, args.seconds))
        results["peer_infer"].append(timed(peer_infer, args.seconds))
        results["ours_infer"].append(timed(ours_infer, args.seconds))
        results["ours_int8"].append(timed(ours_int8, args.seconds))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in results.items()),
              file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    doc = {**cpu_facts(), "resattn_amp": amp, "rounds": args.rounds, "seconds": args.seconds,
           "images_per_s": med, "all_rounds": results,
           "train_ratio": med["ours_train"] / med["peer_train"],
           "inference_ratio": med["ours_infer"] / med["peer_infer"],
           "int8_inference_ratio": med["ours_int8"] / med["peer_infer"]}
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"CPU: {doc['cpu']} (avx512_bf16 {doc['avx512_bf16']}, amx {doc['amx']}, "
          f"avx512_vnni {doc['avx512_vnni']}), {doc['threads']} threads, torch {doc['torch']}")
    print(f"| path | train img/s (batch {TRAIN_BATCH}) | inference img/s (batch {INFER_BATCH}) |")
    print("|---|---|---|")
    print(f"| public port, fp32 | {med['peer_train']:.1f} | {med['peer_infer']:.1f} |")
    print(f"| resattn default ({amp if amp != 'off' else 'fp32'}) | {med['ours_train']:.1f} "
          f"({doc['train_ratio']:.2f}x) | {med['ours_infer']:.1f} "
          f"({doc['inference_ratio']:.2f}x) |")
    print(f"| resattn `predict --int8` | | {med['ours_int8']:.1f} "
          f"({doc['int8_inference_ratio']:.2f}x) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
