"""Peak memory and step time of one training step with and without activation checkpointing
(`set_grad_checkpointing`), each in a fresh process (peak RSS is per process).

    python benchmarks/grad_checkpointing.py [--model attention56_imagenet] [--batch 32]
        [--size 224]

Prints one line per setting: the second step's seconds, the first step's loss (equal in both)
and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time


def one(model: str, batch: int, size: int, on: bool) -> str:
    import torch

    import resattn

    torch.manual_seed(0)
    net = resattn.create_model(model).train()
    net.set_grad_checkpointing(on)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, net.num_classes, (batch,))
    seconds, losses = [], []
    for _ in range(2):
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        seconds.append(time.perf_counter() - start)
        losses.append(loss.item())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB
    return (f"{model} batch {batch} at {size}px, checkpointing {'on' if on else 'off'}: "
            f"step {seconds[1]:.1f} s, first loss {losses[0]:.4f}, peak RSS {peak:.2f} GB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="attention56_imagenet")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--only", choices=("on", "off"), default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:
        print(one(args.model, args.batch, args.size, args.only == "on"), flush=True)
        return 0
    for setting in ("off", "on"):
        subprocess.run([sys.executable, __file__, "--model", args.model, "--batch",
                        str(args.batch), "--size", str(args.size), "--only", setting],
                       check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
