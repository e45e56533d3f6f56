"""Augmentation + batching throughput over the full CIFAR-10 training split, next to the training
throughput of attention56 on the same device. The data path must be >= 20x faster.

    python benchmarks/data_throughput.py --data-dir DIR [--device cpu] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from resattn import create_model
from resattn.data import AugmentConfig, DataConfig, build_data


def data_rate(args, augment: AugmentConfig) -> float:
    cfg = DataConfig(data_dir=args.data_dir, val_size=0, augment=augment)
    bundle = build_data(cfg, batch_size=args.batch_size, device=args.device, seed=0)
    loader = bundle.train
    for _ in loader:  # warm-up epoch
        pass
    loader.set_epoch(1)
    start = time.perf_counter()
    n = 0
    for x, _ in loader:
        n += len(x)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def train_rate(args) -> float:
    model = create_model("attention56").to(args.device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(args.batch_size, 3, 32, 32, device=args.device)
    y = torch.randint(0, 10, (args.batch_size,), device=args.device)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(args.train_steps):
        step()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    return args.train_steps * args.batch_size / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--train-steps", type=int, default=5)
    args = ap.parse_args()
    paper = data_rate(args, AugmentConfig())
    heavy = data_rate(args, AugmentConfig(crop_mode="reflect", rotation=10, cutout=8,
                                          mixup=0.2, cutmix=1.0))
    train = train_rate(args)
    result = {
        "device": args.device, "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "batch_size": args.batch_size,
        "data_paper_aug_img_s": round(paper), "data_all_aug_img_s": round(heavy),
        "train_attention56_img_s": round(train, 1),
        "ratio_paper": round(paper / train, 1), "ratio_all": round(heavy / train, 1),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(result, indent=2))
    if min(result["ratio_paper"], result["ratio_all"]) < 20:
        raise SystemExit("FAIL: the data path is less than 20x faster than training")


if __name__ == "__main__":
    main()
