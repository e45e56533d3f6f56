"""The user's own labelled images: ROOT/train/<class>/*, optional ROOT/val and ROOT/test.

Files are decoded with Pillow in DataLoader worker processes, cropped to the model's input size
(random-resized-crop for training, resize + centre crop for evaluation) and batched as uint8, so
the on-device `BatchTransform` finishes them exactly as it does CIFAR batches.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from .download import DataError
from .images import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    ImageReadError,
    check_header,
    load_rgb,
    random_resized_crop,
    resize_center_crop,
    to_tensor,
)
from .loader import BatchTransform, derive_seed

log = logging.getLogger(__name__)
MAX_BAD_FRACTION = 0.01


@dataclass
class FolderSplit:
    """Paths and labels of one split; `classes` shared by all splits."""

    paths: list[Path]
    labels: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, index: torch.Tensor) -> FolderSplit:
        return FolderSplit([self.paths[i] for i in index.tolist()], self.labels[index],
                           self.classes)


SKIPPED_FOLDERS = ("__MACOSX",)  # made by archivers; like dot-folders (.ipynb_checkpoints)


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED_FOLDERS


def _class_dirs(split_dir: Path) -> set[str]:
    return {d.name for d in split_dir.iterdir() if d.is_dir() and not _hidden(d.name)}


def find_classes(split_dir: Path) -> list[str]:
    """The class folders of train/, sorted; hidden folders (.ipynb_checkpoints, __MACOSX) are
    not classes."""
    classes = sorted(_class_dirs(split_dir))
    if not classes:
        raise DataError(f"{split_dir} has no class sub-folders; lay images out as "
                        f"{split_dir}/<class>/<image>")
    if len(classes) < 2:
        raise DataError(f"{split_dir} has one class folder ({classes[0]}); a classifier needs "
                        f"at least two, as {split_dir}/<class>/<image>")
    return classes


def scan_split(split_dir: Path, classes: list[str], max_pixels: int = MAX_PIXELS,
               every_class: bool = False) -> FolderSplit:
    """List every image file under split_dir/<class>/ (not in hidden folders), checking each
    header. Unreadable files are logged by path and skipped; more than 1% of them stops with an
    error, and so does a class without images when `every_class` (the training split)."""
    unknown = sorted(_class_dirs(split_dir) - set(classes))
    if unknown:
        raise DataError(f"{split_dir} has classes not in train/: {', '.join(unknown)}; "
                        "every split must use the training classes")
    paths, labels, bad = [], [], []
    for label, name in enumerate(classes):
        class_dir = split_dir / name
        if class_dir.exists() and not class_dir.is_dir():
            raise DataError(f"{class_dir} is a file, not a folder of {name} images; remove it "
                            "or make it a folder")
        if not class_dir.is_dir():
            continue
        for path in sorted(p for p in class_dir.rglob("*") if p.is_file()
                           and not any(_hidden(part)
                                       for part in p.relative_to(class_dir).parts)):
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            try:
                check_header(path, max_pixels)
            except ImageReadError as exc:
                log.warning("skipping %s: %s", path, exc)
                bad.append(path)
                continue
            paths.append(path)
            labels.append(label)
    total = len(paths) + len(bad)
    if total == 0:
        raise DataError(f"{split_dir} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    if every_class:
        empty = [name for label, name in enumerate(classes) if label not in set(labels)]
        if empty:
            raise DataError(f"{split_dir / empty[0]} holds no images; every training class "
                            "needs some (add images or remove the folder)")
    if len(bad) > MAX_BAD_FRACTION * total:
        raise DataError(f"{len(bad)} of {total} files in {split_dir} are unreadable (more than "
                        f"{MAX_BAD_FRACTION:.0%}), e.g. {bad[0]}; fix or remove them")
    return FolderSplit(paths, torch.tensor(labels, dtype=torch.long), classes)


def scan_folder(root: Path, max_pixels: int = MAX_PIXELS) -> dict[str, FolderSplit]:
    """{'train': ..., and 'val' / 'test' where those folders exist}."""
    root = Path(root).expanduser()
    if not (root / "train").is_dir():
        raise DataError(f"{root}/train not found; a folder dataset needs {root}/train/<class>/ "
                        "(and optionally val/ and test/)")
    classes = find_classes(root / "train")
    return {name: scan_split(root / name, classes, max_pixels, every_class=name == "train")
            for name in ("train", "val", "test") if (root / name).is_dir()}


class FolderDataset(Dataset):
    """Decodes one image per item into a (3, size, size) uint8 tensor. A file that fails to
    decode yields label -1 and is dropped (and logged) by the loader."""

    def __init__(self, split: FolderSplit, size: int, train: bool, seed: int = 0,
                 max_pixels: int = MAX_PIXELS):
        self.split, self.size, self.train = split, size, train
        self.seed, self.epoch, self.max_pixels = seed, 0, max_pixels

    def __len__(self) -> int:
        return len(self.split)

    def load(self, i: int) -> Image.Image:
        """Image i, decoded to RGB (ImageReadError when it cannot be)."""
        return load_rgb(self.split.paths[i], self.max_pixels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        try:
            img = self.load(i)
        except ImageReadError:
            return torch.zeros(3, self.size, self.size, dtype=torch.uint8), -1, i
        if self.train:
            # the crop depends on (seed, epoch, index) alone: any number of workers agrees
            img = random_resized_crop(img, self.size,
                                      random.Random(derive_seed(self.seed, self.epoch, 2, i)))
        else:
            img = resize_center_crop(img, self.size)
        return to_tensor(img), int(self.split.labels[i]), i


def _collate(items):
    images = torch.stack([it[0] for it in items])
    labels = torch.tensor([it[1] for it in items], dtype=torch.long)
    failed = [it[2] for it in items if it[1] < 0]
    return images, labels, failed


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers and `taskset` narrow;
    `os.cpu_count()` counts the whole machine)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class FolderLoader:
    """Same interface as `DeviceLoader`: seeded epoch order, per-rank shard, batches transformed
    on the device of `transform` (its mean and std), where they are delivered."""

    def __init__(self, dataset: FolderDataset, batch_size: int, transform: BatchTransform,
                 train: bool, seed: int = 0, workers: int = 2, rank: int = 0,
                 world_size: int = 1):
        self.dataset = dataset
        self.batch_size, self.train = batch_size, train
        self.transform, self.device = transform, transform.mean.device
        self.seed, self.workers = seed, workers
        self.rank, self.world_size, self.epoch = rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        n = len(self.dataset)
        if self.train:
            g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, 0))
            order = torch.randperm(n, generator=g)[: n - n % self.world_size]
        else:
            order = torch.arange(n)
        mine = order[self.rank::self.world_size].tolist()
        count = len(mine) // self.batch_size if self.train else -(-len(mine) // self.batch_size)
        return [mine[i * self.batch_size:(i + 1) * self.batch_size] for i in range(count)]

    def __len__(self) -> int:
        return len(self._batches())

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.dataset.epoch = self.epoch
        loader = DataLoader(self.dataset, batch_sampler=self._batches(),
                            num_workers=min(self.workers, usable_cpus()),
                            collate_fn=_collate, pin_memory=self.device.type == "cuda")
        g = None
        if self.train:
            g = torch.Generator(device=self.device)
            g.manual_seed(derive_seed(self.seed, self.epoch, 1, self.rank))
        for images, labels, failed in loader:
            for i in failed:
                log.warning("skipping %s: the image could not be decoded",
                            self.dataset.split.paths[i])
            if failed:
                keep = labels >= 0
                images, labels = images[keep], labels[keep]
                if len(labels) == 0:
                    continue
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            yield self.transform(images, labels, g, self.train)
