"""From a data configuration to train / val / test loaders on the chosen device."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidOption
from .cifar import SOURCES, load_cifar
from .dataset import ImageSet
from .folder import FolderDataset, FolderLoader, FolderSplit, scan_folder
from .images import CROP_PCT
from .loader import AugmentConfig, BatchTransform, DeviceLoader, derive_seed, image_stats
from .splits import add_label_noise, stratified_indices

DATASETS = (*SOURCES, "folder")
STATS_SAMPLE = 2000  # folder datasets: normalisation statistics from this many training images


@dataclass
class DataConfig:
    dataset: str = "cifar10"
    data_dir: str | None = None  # else $RESATTN_DATA_DIR, else ~/.cache/resattn
    label_type: str = "fine"  # CIFAR-100: fine (100 classes) or coarse (20)
    val_size: int = 5000  # held out of the training set, stratified; 0 = train on everything
    label_noise: float = 0.0  # fraction of training labels replaced by another class
    train_subset: int = 0  # train on a stratified subset of this many images; 0 = all
    test_subset: int = 0  # evaluate on a stratified subset of the test set; 0 = all
    download: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise InvalidOption("dataset", self.dataset,
                             f"choose one of {', '.join(DATASETS)}")
        if self.val_size < 0:
            raise InvalidOption("val_size", self.val_size, "it must be >= 0")
        if self.test_subset < 0:
            raise InvalidOption("test_subset", self.test_subset, "it must be >= 0")
        if self.train_subset < 0:
            raise InvalidOption("train_subset", self.train_subset, "it must be >= 0")


@dataclass
class DataBundle:
    train: DeviceLoader | FolderLoader
    val: DeviceLoader | FolderLoader | None
    test: DeviceLoader | FolderLoader | None
    classes: list[str]
    mean: torch.Tensor
    std: torch.Tensor
    input_size: int
    info: dict[str, Any]
    crop_pct: float = 1.0  # evaluation geometry: resize the shorter side to size / crop_pct

    @property
    def num_classes(self) -> int:
        return len(self.classes)


# independent streams of the split seed: which images are held out, subsetted or relabelled
VAL_STREAM, TRAIN_SUBSET_STREAM, TEST_SUBSET_STREAM, NOISE_STREAM, STATS_STREAM = range(5)


def _split(train, cfg: DataConfig, split_seed: int, has_val: bool):
    """Hold out val (unless the dataset brings its own), take the subset, add label noise.
    The validation labels stay clean: noise is a property of the training set only. Every
    choice is drawn from its own stream of `split_seed`, never from the training seed, so runs
    that differ only in their seed validate on the same images."""
    val = None
    if not has_val and cfg.val_size:
        if cfg.val_size >= len(train):
            raise InvalidOption("val_size", cfg.val_size, "the training set holds "
                             f"{len(train)} images")
        rest, held = stratified_indices(train.labels, cfg.val_size,
                                        derive_seed(split_seed, VAL_STREAM))
        train, val = train.subset(rest), train.subset(held)
    if cfg.train_subset:
        if cfg.train_subset > len(train):
            raise InvalidOption("train_subset", cfg.train_subset, "only "
                             f"{len(train)} training images are left")
        _, chosen = stratified_indices(train.labels, cfg.train_subset,
                                       derive_seed(split_seed, TRAIN_SUBSET_STREAM))
        train = train.subset(chosen)
    noisy = 0
    if cfg.label_noise:
        labels, changed = add_label_noise(train.labels, cfg.label_noise, len(train.classes),
                                          derive_seed(split_seed, NOISE_STREAM))
        train = replace(train, labels=labels)
        noisy = len(changed)
    return train, val, noisy


def build_data(cfg: DataConfig, batch_size: int, device: torch.device | str, seed: int = 0,
               split_seed: int = 0, input_size: int = 32, eval_batch_size: int | None = None,
               workers: int = 0, rank: int = 0, world_size: int = 1,
               progress: bool = True) -> DataBundle:
    """Train / val / test loaders. `seed`: augmentation and data order; `split_seed`: which
    images are held out for validation, subsetted or relabelled. `workers`: decoding processes
    for image folders (0 = in this process)."""
    device = torch.device(device)
    eval_bs = eval_batch_size or batch_size
    shard = {"rank": rank, "world_size": world_size}
    test: FolderSplit | ImageSet | None
    if cfg.dataset == "folder":
        if cfg.data_dir is None:
            raise InvalidOption("data_dir", None, "the folder dataset needs a folder holding "
                                "train/<class>/ images")
        splits = scan_folder(Path(cfg.data_dir))
        train, val, noisy = _split(splits["train"], cfg, split_seed, "val" in splits)
        val = splits.get("val", val)
        test = splits.get("test")
        aug = replace(cfg.augment, crop_padding=0)  # random-resized-crop already crops
        mean, std = _folder_stats(train, input_size, aug.normalization,
                                  derive_seed(split_seed, STATS_STREAM))
        transform = BatchTransform(aug, mean, std, len(train.classes))

        def loader(split: Any, is_train: bool):  # a FolderSplit or None
            if split is None:
                return None
            ds = FolderDataset(split, input_size, is_train, seed)
            return FolderLoader(ds, batch_size if is_train else eval_bs, transform, is_train,
                                device, seed, workers, **shard)
    else:
        train_set, test_set = load_cifar(cfg.dataset, cfg.data_dir, cfg.label_type,
                                         cfg.download, progress)
        train, val, noisy = _split(train_set, cfg, split_seed, has_val=False)
        test = test_set
        mean, std = image_stats(train.images, cfg.augment.normalization)
        transform = BatchTransform(cfg.augment, mean, std, len(train.classes))
        input_size = 32

        def loader(split: Any, is_train: bool):  # an ImageSet or None
            if split is None:
                return None
            return DeviceLoader(split.to(device), batch_size if is_train else eval_bs,
                                transform, is_train, seed, **shard)

    if test is not None and cfg.test_subset and cfg.test_subset < len(test):
        _, chosen = stratified_indices(test.labels, cfg.test_subset,
                                       derive_seed(split_seed, TEST_SUBSET_STREAM))
        test = test.subset(chosen)
    info = {"train_size": len(train), "val_size": len(val) if val is not None else 0,
            "test_size": len(test) if test is not None else 0, "noisy_labels": noisy}
    crop_pct = CROP_PCT if cfg.dataset == "folder" else 1.0  # CIFAR images are native size
    return DataBundle(loader(train, True), loader(val, False), loader(test, False),
                      list(train.classes), mean, std, input_size, info, crop_pct)


def _folder_stats(train: FolderSplit, size: int, normalization: str,
                  seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    count = min(len(train), STATS_SAMPLE)
    index = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:count]
    ds = FolderDataset(train.subset(index.sort().values), size, train=False)
    images = torch.stack([item[0] for item in (ds[i] for i in range(len(ds))) if item[1] >= 0])
    return image_stats(images, normalization)
