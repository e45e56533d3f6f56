"""The whole split on the device as uint8; an epoch is a seeded permutation sliced into batches.

No per-image Python work: every batch is one index, one gather and a few batched tensor ops.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..errors import InvalidOption
from . import augment as A
from .dataset import ImageSet

NORMALIZATIONS = ("pixel", "channel")


@dataclass
class AugmentConfig:
    """Training augmentation. The paper: pad 4 + crop 32, flip, per-pixel mean subtraction."""

    crop_padding: int = 4  # pixels added on each side before the random crop; 0 = off
    crop_mode: str = "constant"  # "constant" (zeros, the paper) or "reflect"
    flip: bool = True
    rotation: float = 0.0  # max degrees, uniform in [-rotation, rotation]
    cutout: int = 0  # side of the zeroed square, pixels
    mixup: float = 0.0  # Beta(alpha, alpha); 0 = off
    cutmix: float = 0.0  # Beta(alpha, alpha); 0 = off (with mixup too: one of them per batch)
    normalization: str = "pixel"  # "pixel": subtract the mean image; "channel": mean/std per RGB

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZATIONS:
            raise InvalidOption("normalization", self.normalization,
                             f"choose one of {', '.join(NORMALIZATIONS)}")
        if self.crop_mode not in ("constant", "reflect"):
            raise InvalidOption("crop_mode", self.crop_mode, ""
                             "choose constant or reflect")
        for key in ("crop_padding", "rotation", "cutout", "mixup", "cutmix"):
            if getattr(self, key) < 0:
                raise InvalidOption(key, getattr(self, key), "it must be >= 0")


def image_stats(images: torch.Tensor, normalization: str,
                chunk: int = 10000) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) in [0, 1] units of a uint8 (N, C, H, W) set: per pixel (C, H, W) mean and
    unit std, or per channel (C, 1, 1) mean and std. Accumulated in float64 chunks."""
    n, c = images.shape[:2]
    total = torch.zeros(images.shape[1:], dtype=torch.float64, device=images.device)
    total_sq = torch.zeros_like(total)
    for start in range(0, n, chunk):
        x = images[start:start + chunk].double() / 255
        total += x.sum(0)
        total_sq += (x * x).sum(0)
    if normalization == "pixel":
        mean = total / n
        return mean.float(), torch.ones(c, 1, 1, device=images.device)
    count = n * images.shape[2] * images.shape[3]
    mean = total.sum((1, 2)) / count
    var = total_sq.sum((1, 2)) / count - mean * mean
    return mean.float().view(c, 1, 1), var.clamp_min(0).sqrt().float().view(c, 1, 1)


class BatchTransform:
    """uint8 batch -> normalised float batch and targets; random only when `train`."""

    def __init__(self, cfg: AugmentConfig, mean: torch.Tensor, std: torch.Tensor,
                 num_classes: int):
        self.cfg = cfg
        self.mean, self.std = mean, std
        self.num_classes = num_classes

    @property
    def soft_targets(self) -> bool:
        return self.cfg.mixup > 0 or self.cfg.cutmix > 0

    def to(self, device: torch.device | str) -> BatchTransform:
        return BatchTransform(self.cfg, self.mean.to(device), self.std.to(device),
                              self.num_classes)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, g: torch.Generator | None,
                 train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        if not train:
            return A.normalize(images, self.mean, self.std), labels
        assert g is not None, "training augmentation draws from a generator"
        x = A.random_crop(images, cfg.crop_padding, g, cfg.crop_mode)
        if cfg.flip:
            x = A.flip_lr(x, g)
        x = A.normalize(x, self.mean, self.std)
        x = A.rotate(x, cfg.rotation, g)
        x = A.cutout(x, cfg.cutout, g)
        if not self.soft_targets:
            return x, labels
        targets = A.one_hot(labels, self.num_classes)
        use_mixup = cfg.mixup > 0 and (cfg.cutmix == 0 or
                                       torch.rand(1, generator=g, device=g.device).item() < 0.5)
        if use_mixup:
            return A.mixup(x, targets, cfg.mixup, g)
        return A.cutmix(x, targets, cfg.cutmix, g)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (seed, epoch, stream...), stable across runs and platforms."""
    return random.Random("/".join(map(str, parts))).getrandbits(63)


class DeviceLoader:
    """Batches of a device-resident `ImageSet`.

    Training: every epoch draws a new permutation from (seed, epoch), so a resumed run sees the
    same order; the last partial batch is dropped. Evaluation: in order, nothing dropped.
    `rank` / `world_size` give each process its strided shard of the same global order.
    """

    def __init__(self, data: ImageSet, batch_size: int, transform: BatchTransform, train: bool,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise InvalidOption("batch_size", batch_size, "it must be >= 1")
        self.data = data
        self.batch_size = batch_size
        self.transform = transform.to(data.images.device)
        self.train = train
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        n = len(self.data)
        if self.train:
            g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, 0))
            order = torch.randperm(n, generator=g)
            # every rank the same number of images, so every rank runs the same number of steps
            order = order[: n - n % self.world_size]
        else:
            order = torch.arange(n)  # evaluation: every image exactly once over all ranks
        return order[self.rank::self.world_size]

    def __len__(self) -> int:
        n = len(self.data)
        if self.train:
            return (n // self.world_size) // self.batch_size
        return -(-len(range(self.rank, n, self.world_size)) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        device = self.data.images.device
        order = self._order().to(device)
        g = None
        if self.train:
            g = torch.Generator(device=device)
            g.manual_seed(derive_seed(self.seed, self.epoch, 1, self.rank))
        for i in range(len(self)):
            index = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.transform(self.data.images[index], self.data.labels[index], g, self.train)
