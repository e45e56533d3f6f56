"""From a data configuration to train / val / test loaders on the chosen device."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidOption
from .cifar import SOURCES, load_cifar_splits
from .folder import FolderDataset, FolderLoader, FolderSplit, scan_folder
from .images import CROP_PCT
from .loader import AugmentConfig, BatchTransform, DeviceLoader, derive_seed, image_stats
from .shards import ShardDataset, ShardLoader, ShardSplit, scan_shards
from .splits import add_label_noise, stratified_indices

FOLDER_DATASETS = ("folder", "shards")  # image files of any size: decoded, cropped, resized
DATASETS = (*SOURCES, *FOLDER_DATASETS)
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
    train: DeviceLoader | FolderLoader | None  # None: not built (Loading.splits)
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


SPLITS = ("train", "val", "test")


@dataclass
class Loading:
    """How `build_data` loads: batch sizes, device, seeds (`seed`: augmentation and order;
    `split_seed`: which images are held out, subsetted or relabelled), image side, decoding
    workers for image folders (0 = in this process), this process's shard, and what to skip:
    only the loaders in `splits` are built, and given `stats` (a checkpoint's mean and std)
    the training images are not summarised. Evaluating the test set reads nothing else."""

    batch_size: int = 128
    device: torch.device | str = "cpu"
    seed: int = 0
    split_seed: int = 0
    input_size: int = 32
    eval_batch_size: int | None = None
    workers: int = 0
    rank: int = 0
    world_size: int = 1
    progress: bool = True
    splits: tuple[str, ...] = SPLITS
    stats: tuple[torch.Tensor, torch.Tensor] | None = None


def build_data(cfg: DataConfig, loading: Loading | None = None, **options: Any) -> DataBundle:
    """Train / val / test loaders (None for a split not built or not there); `options` are
    `Loading` fields, for `loading` or instead of it."""
    how = replace(loading or Loading(), **options)
    if not set(how.splits) <= set(SPLITS):
        raise InvalidOption("splits", how.splits, f"choose from {', '.join(SPLITS)}")
    split_seed, size = how.split_seed, how.input_size
    if cfg.dataset in FOLDER_DATASETS:
        train, val, test, noisy, make = _folder_splits(cfg, how)
    else:
        train, val, test, noisy, make = _cifar_splits(cfg, how)
        size = 32
    if test is not None and cfg.test_subset and cfg.test_subset < len(test):
        _, chosen = stratified_indices(test.labels, cfg.test_subset,
                                       derive_seed(split_seed, TEST_SUBSET_STREAM))
        test = test.subset(chosen)
    info = {"train_size": len(train) if train is not None else 0,
            "val_size": len(val) if val is not None else 0,
            "test_size": len(test) if test is not None else 0, "noisy_labels": noisy}
    # the training images are read when no statistics are given (_cifar_splits)
    mean, std = how.stats if how.stats is not None else _stats(cfg, train, size, split_seed)
    transform = BatchTransform(_augment(cfg), mean, std, len(_classes(train, val, test)))
    crop_pct = CROP_PCT if cfg.dataset in FOLDER_DATASETS else 1.0  # CIFAR images are native size
    loaders = {name: make(split, name == "train", transform) if name in how.splits else None
               for name, split in (("train", train), ("val", val), ("test", test))}
    return DataBundle(loaders["train"], loaders["val"], loaders["test"],
                      list(_classes(train, val, test).classes), mean, std, size, info, crop_pct)


def _classes(*splits: Any) -> Any:
    """The first split that is there (each carries the class names)."""
    return next(s for s in splits if s is not None)


def _augment(cfg: DataConfig) -> AugmentConfig:
    # image folders: random-resized-crop already crops
    return (replace(cfg.augment, crop_padding=0) if cfg.dataset in FOLDER_DATASETS
            else cfg.augment)


def _stats(cfg: DataConfig, train: Any, size: int,
           split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if cfg.dataset in FOLDER_DATASETS:
        return _folder_stats(train, size, cfg.augment.normalization,
                             derive_seed(split_seed, STATS_STREAM))
    return image_stats(train.images, cfg.augment.normalization)


def image_dataset(split: FolderSplit | ShardSplit, size: int, train: bool,
                  seed: int = 0) -> FolderDataset:
    """The decoding dataset of an image-folder or shard split."""
    if isinstance(split, ShardSplit):
        return ShardDataset(split, size, train, seed)
    return FolderDataset(split, size, train, seed)


def _folder_splits(cfg: DataConfig, how: Loading):
    if cfg.data_dir is None:
        raise InvalidOption("data_dir", None, "the folder dataset needs a folder holding "
                            "train/<class>/ images" if cfg.dataset == "folder" else
                            "the shards dataset needs the folder `resattn data shard` wrote")
    splits: dict[str, Any] = (scan_folder(Path(cfg.data_dir)) if cfg.dataset == "folder"
                              else scan_shards(Path(cfg.data_dir)))
    loader_class = FolderLoader if cfg.dataset == "folder" else ShardLoader
    train, val, noisy = _split(splits["train"], cfg, how.split_seed, "val" in splits)
    val = splits.get("val", val)
    eval_bs = how.eval_batch_size or how.batch_size

    def make(split: Any, is_train: bool, transform: BatchTransform):  # a FolderSplit or None
        if split is None:
            return None
        ds = image_dataset(split, how.input_size, is_train, how.seed)
        return loader_class(ds, how.batch_size if is_train else eval_bs,
                            transform.to(how.device), is_train, how.seed, how.workers,
                            rank=how.rank, world_size=how.world_size)

    return train, val, splits.get("test"), noisy, make


def _cifar_splits(cfg: DataConfig, how: Loading):
    # the training files hold the validation images too; the test set is a file of its own
    needed = tuple(s for s in ("train", "test")
                   if s in how.splits or (s == "train" and ("val" in how.splits
                                                            or how.stats is None)))
    read = dict(zip(needed, load_cifar_splits(cfg.dataset, needed, cfg.data_dir,
                                              cfg.label_type, cfg.download, how.progress)))
    train, val, noisy = (_split(read["train"], cfg, how.split_seed, has_val=False)
                         if "train" in read else (None, None, 0))
    device, eval_bs = torch.device(how.device), how.eval_batch_size or how.batch_size

    def make(split: Any, is_train: bool, transform: BatchTransform):  # an ImageSet or None
        if split is None:
            return None
        return DeviceLoader(split.to(device), how.batch_size if is_train else eval_bs,
                            transform, is_train, how.seed, rank=how.rank,
                            world_size=how.world_size)

    return train, val, read.get("test"), noisy, make


def _folder_stats(train: FolderSplit | ShardSplit, size: int, normalization: str,
                  seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    count = min(len(train), STATS_SAMPLE)
    index = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:count]
    ds = image_dataset(train.subset(index.sort().values), size, train=False)
    images = torch.stack([item[0] for item in (ds[i] for i in range(len(ds))) if item[1] >= 0])
    return image_stats(images, normalization)


def draw_images(loader: DeviceLoader | FolderLoader, input_size: int, count: int,
                seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` images of a loader's split drawn at random (seeded), as they are evaluated:
    (N, 3, S, S) uint8 and their labels, on the CPU, not normalised. Image folders are decoded
    with the evaluation geometry; files that fail to decode are left out."""
    g = torch.Generator().manual_seed(seed)
    if isinstance(loader, DeviceLoader):  # CIFAR: the split is one uint8 tensor
        index = torch.randperm(len(loader.data), generator=g)[:count].to(loader.data.images.device)
        return loader.data.images[index].cpu(), loader.data.labels[index].cpu()
    ds = image_dataset(loader.dataset.split, input_size, train=False)
    index = torch.randperm(len(ds), generator=g)[:count]
    items = [item for item in (ds[int(i)] for i in index) if item[1] >= 0]
    if not items:
        return torch.zeros(0, 3, input_size, input_size, dtype=torch.uint8), \
            torch.zeros(0, dtype=torch.long)
    return torch.stack([it[0] for it in items]), torch.tensor([it[1] for it in items])
