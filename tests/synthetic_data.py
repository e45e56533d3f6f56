"""Archives in the exact official CIFAR binary layouts, small enough for tests."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from resattn.data import cifar


def records(n: int, label_bytes: int, seed: int, num_classes: int = 10) -> bytes:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 256, size=(n, label_bytes + 3072), dtype=np.uint8)
    rows[:, :label_bytes] = rng.integers(0, num_classes, size=(n, label_bytes))
    if label_bytes == 2:
        rows[:, 0] = rows[:, 1] // 5  # coarse label: 20 super-classes of 5 fine ones
    return rows.tobytes()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def write_tar(path: Path, members: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return md5(path.read_bytes())


def cifar10_archive(root: Path, per_file: int = 20) -> tuple[cifar.CifarSource, dict[str, bytes]]:
    """A cifar-10-binary.tar.gz with `per_file` records per file, and the matching source."""
    src = cifar.CIFAR10
    files = {f: records(per_file, 1, seed=i) for i, f in enumerate(src.data_files)}
    archive_md5 = write_tar(root / src.archive, {f"{src.folder}/{f}": d for f, d in files.items()})
    patched = replace(src, archive_md5=archive_md5,
                      records_per_file={f: per_file for f in files},
                      member_md5={f: md5(d) for f, d in files.items()})
    return patched, files


def cifar100_archive(root: Path, n_train: int = 40, n_test: int = 10):
    src = cifar.CIFAR100
    files = {"train.bin": records(n_train, 2, 0, 100), "test.bin": records(n_test, 2, 1, 100)}
    names = {"fine_label_names.txt": "\n".join(f"fine{i}" for i in range(100)).encode(),
             "coarse_label_names.txt": "\n".join(f"coarse{i}" for i in range(20)).encode()}
    members = {f"{src.folder}/{f}": d for f, d in {**files, **names}.items()}
    archive_md5 = write_tar(root / src.archive, members)
    patched = replace(src, archive_md5=archive_md5,
                      records_per_file={"train.bin": n_train, "test.bin": n_test})
    return patched, files


def learnable_records(n: int, seed: int, num_classes: int = 10) -> bytes:
    """`n` CIFAR-10 records, classes balanced, each image its class's blocky colour pattern
    (the same for every seed) under noise: a network tells the classes apart within a few
    steps, as it cannot with uniform noise."""
    patterns = np.random.default_rng(1234).integers(0, 256, (num_classes, 3, 4, 4))
    patterns = patterns.repeat(8, axis=2).repeat(8, axis=3).reshape(num_classes, -1)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % num_classes)
    noise = rng.integers(0, 256, (n, 3072))
    rows = np.empty((n, 3073), dtype=np.uint8)
    rows[:, 0] = labels
    rows[:, 1:] = (0.7 * patterns[labels] + 0.3 * noise).astype(np.uint8)
    return rows.tobytes()


def cifar10_folder(folder: Path, per_file: int = 200) -> tuple[Path, cifar.CifarSource]:
    """An extracted CIFAR-10 folder of learnable images (`per_file` in each of the six files)
    and the source that accepts it in place of the official one."""
    src = cifar.CIFAR10
    folder.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for i, name in enumerate(src.data_files):
        data = learnable_records(per_file, seed=i)
        (folder / name).write_bytes(data)
        hashes[name] = md5(data)
    (folder / "batches.meta.txt").write_text("\n".join(cifar.CIFAR10_CLASSES) + "\n")
    return folder, replace(src, records_per_file={f: per_file for f in src.data_files},
                           member_md5=hashes)


def held_out_images(folder: Path, source: cifar.CifarSource):
    """(images, labels) of the test file of `cifar10_folder`: (N, 3, 32, 32) uint8 and (N,)."""
    name = source.test_files[0]
    return cifar.read_records(folder / name, source, source.member_md5[name])


def imagenet_like_tree(root: Path, classes: int = 1000, per_class: int = 2, seed: int = 0,
                       split: str = "train") -> Path:
    """ROOT/<split>/nNNNNNNN/*.JPEG: `classes` classes of `per_class` JPEGs of ImageNet-like
    sizes (most 500x375 or 375x500, the rest 200-800 px a side), quality 90, smooth colour
    fields under noise (about 100 KB each, as ImageNet's average)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / split / f"n{c:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            kind = rng.random()
            if kind < 0.45:
                w, h = 500, 375
            elif kind < 0.7:
                w, h = 375, 500
            else:
                w, h = (int(v) for v in rng.integers(200, 801, 2))
            base = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
            field = np.asarray(base.resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
            noisy = field + rng.integers(-24, 25, (h, w, 3), dtype=np.int16)
            Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(
                folder / f"{split}_{c}_{i}.JPEG", quality=90)
    return root
