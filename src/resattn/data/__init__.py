"""Data: CIFAR-10/100 binary archives, image folders, splits, on-device augmentation, loaders."""

from .build import DATASETS, FOLDER_DATASETS, DataBundle, DataConfig, build_data
from .cifar import CIFAR10_CLASSES, default_data_dir, load_cifar, load_cifar_splits
from .dataset import ImageSet
from .download import DataError
from .loader import AugmentConfig, BatchTransform, DeviceLoader, image_stats
from .shards import write_shards

__all__ = [
    "CIFAR10_CLASSES", "DATASETS", "FOLDER_DATASETS", "AugmentConfig", "BatchTransform",
    "DataBundle", "DataConfig",
    "DataError", "DeviceLoader", "ImageSet", "build_data", "default_data_dir", "image_stats",
    "load_cifar", "load_cifar_splits", "write_shards",
]
