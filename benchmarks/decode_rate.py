"""Decode + augment rate of ImageNet-sized JPEGs per CPU core, from an image folder and from tar
shards, and with every core in DataLoader workers: how many cores one GPU needs.

Makes its own synthetic tree (ImageNet-like sizes, ~90 KB JPEGs at quality 90) in a temporary
folder, shards it, then times one process on one thread per path:

    python benchmarks/decode_rate.py [--images 2000] [--size 224] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from synthetic_data import imagenet_like_tree  # noqa: E402

from resattn.data import DataConfig, build_data, write_shards  # noqa: E402
from resattn.data.build import image_dataset  # noqa: E402
from resattn.data.folder import scan_folder, usable_cpus  # noqa: E402
from resattn.data.loader import AugmentConfig  # noqa: E402
from resattn.data.shards import scan_shards  # noqa: E402


def per_image(dataset, count: int) -> float:
    """Images per second of one thread decoding, cropping and converting `count` images."""
    dataset[0]  # warm-up: imports, first file open
    start = time.perf_counter()
    for i in range(count):
        dataset[i % len(dataset)]
    return count / (time.perf_counter() - start)


def loader_rate(root: Path, dataset: str, size: int, workers: int, batch: int) -> float:
    """Images per second of the training loader with `workers` processes (batched, flipped and
    normalised on the CPU: everything a GPU would be handed)."""
    cfg = DataConfig(dataset=dataset, data_dir=str(root), val_size=0,
                     augment=AugmentConfig(crop_padding=0, normalization="channel"))
    loader = build_data(cfg, batch_size=batch, input_size=size, workers=workers,
                        progress=False, splits=("train",)).train
    start, n = time.perf_counter(), 0
    for x, _ in loader:
        n += len(x)
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000, help="images in the synthetic tree")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--workers", type=int, default=usable_cpus())
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder, shards = Path(tmp) / "images", Path(tmp) / "shards"
        imagenet_like_tree(folder, classes=100, per_class=args.images // 100)
        write_shards(folder, shards, shard_size=250)
        files = list((folder / "train").rglob("*.JPEG"))
        mean_kb = sum(f.stat().st_size for f in files) / len(files) / 1024
        split, shard_split = scan_folder(folder)["train"], scan_shards(shards)["train"]
        n = len(files)
        result = {
            "date": time.strftime("%Y-%m-%d"), "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__, "images": n, "mean_jpeg_kb": round(mean_kb, 1),
            "size": args.size,
            "folder_train_img_s_per_core": per_image(image_dataset(split, args.size, True), n),
            "shards_train_img_s_per_core": per_image(image_dataset(shard_split, args.size, True),
                                                     n),
            "folder_eval_img_s_per_core": per_image(image_dataset(split, args.size, False), n),
            "workers": args.workers,
            "folder_loader_img_s": loader_rate(folder, "folder", args.size, args.workers,
                                               args.batch_size),
            "shards_loader_img_s": loader_rate(shards, "shards", args.size, args.workers,
                                               args.batch_size),
        }
    print(json.dumps({k: round(v, 1) if isinstance(v, float) else v
                      for k, v in result.items()}, indent=2))


if __name__ == "__main__":
    main()
