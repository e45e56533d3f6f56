"""An image classification split held as one uint8 tensor: the unit every loader works on."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ImageSet:
    """images: (N, C, H, W) uint8; labels: (N,) int64; classes: names in label order;
    index: (N,) position of each image in the original file order (kept through subsets, so a
    prediction can be traced back to its image)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    index: torch.Tensor | None = None  # None: 0..N-1 (set on creation)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError("images must be a (N, C, H, W) uint8 tensor")
        if self.labels.shape != (len(self.images),):
            raise ValueError("labels must be a (N,) tensor matching the images")
        if self.index is None:
            self.index = torch.arange(len(self.labels))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, index: torch.Tensor) -> ImageSet:
        assert self.index is not None  # set by __post_init__
        return ImageSet(self.images[index], self.labels[index], self.classes,
                        self.index[index.to(self.index.device)])

    def to(self, device: torch.device | str) -> ImageSet:
        return ImageSet(self.images.to(device), self.labels.to(device), self.classes, self.index)
