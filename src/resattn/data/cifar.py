"""CIFAR-10 and CIFAR-100 from the official *binary* archives (never pickle), verified by MD5.

Record layout: CIFAR-10 = 1 label byte + 3072 image bytes; CIFAR-100 = 1 coarse + 1 fine label
byte + 3072 image bytes. Image bytes are planar R, G, B planes, each 32x32 row-major, so a record
reshapes straight to (3, 32, 32).
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InvalidOption, UserError
from ..files import write_text
from .dataset import ImageSet
from .download import DataError, check_md5, download, md5sum, safe_extract

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
IMAGE_BYTES = 3 * 32 * 32
MANIFEST = "resattn-md5.json"  # member hashes recorded on first extraction (CIFAR-100)


@dataclass(frozen=True)
class CifarSource:
    name: str
    url: str
    archive: str
    archive_md5: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_bytes: int
    records_per_file: dict[str, int]
    member_md5: dict[str, str] | None  # official member hashes, where they are published
    extra_files: tuple[str, ...] = ()

    @property
    def data_files(self) -> tuple[str, ...]:
        return self.train_files + self.test_files

    def file_size(self, file: str) -> int:
        return self.records_per_file[file] * (self.label_bytes + IMAGE_BYTES)


CIFAR10 = CifarSource(
    name="cifar10",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    archive="cifar-10-binary.tar.gz",
    archive_md5="c32a1d4ab5d03f1284b67883e8d87530",
    folder="cifar-10-batches-bin",
    train_files=tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    test_files=("test_batch.bin",),
    label_bytes=1,
    records_per_file={**{f"data_batch_{i}.bin": 10000 for i in range(1, 6)},
                      "test_batch.bin": 10000},
    member_md5={
        "data_batch_1.bin": "5dd7e06a14cb22eb9f671a540d1b7c25",
        "data_batch_2.bin": "5ea93a67294ea407fff1d09f752e9692",
        "data_batch_3.bin": "942cd6a4bcdd0dd3c604fbe906cb4421",
        "data_batch_4.bin": "ae636b3ba5c66a11e91e8cb52e771fcb",
        "data_batch_5.bin": "53f37980c15c3d472c316c40844f3f0d",
        "test_batch.bin": "803d5f7f4d78ea53de84dbe85f74fb6d",
    },
)

CIFAR100 = CifarSource(
    name="cifar100",
    url="https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    archive="cifar-100-binary.tar.gz",
    archive_md5="03b5dce01913d631647c71ecec9e9cb8",
    folder="cifar-100-binary",
    train_files=("train.bin",),
    test_files=("test.bin",),
    label_bytes=2,
    records_per_file={"train.bin": 50000, "test.bin": 10000},
    member_md5=None,
    extra_files=("fine_label_names.txt", "coarse_label_names.txt"),
)

SOURCES = {"cifar10": CIFAR10, "cifar100": CIFAR100}


def default_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """`data_dir`, else $RESATTN_DATA_DIR, else ~/.cache/resattn."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("RESATTN_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "resattn"


def _folder_in(root: Path, src: CifarSource) -> Path | None:
    """The extracted folder: ROOT/<folder>, or ROOT itself when it holds the data files."""
    for candidate in (root / src.folder, root):
        if all((candidate / f).is_file() for f in src.data_files):
            return candidate
    return None


def locate(src: CifarSource, data_dir: str | os.PathLike | None = None,
           download_ok: bool = True, progress: bool = True) -> Path:
    """Find (or extract, or download and extract) the verified folder of `src`."""
    root = default_data_dir(data_dir)
    folder = _folder_in(root, src)
    if folder is not None:
        return folder
    archive = root / src.archive
    if not archive.is_file():
        if data_dir is not None and not root.exists():
            raise DataError(f"the data folder {root} does not exist; create it or point "
                            f"data_dir (--data-dir) at the folder holding {src.archive} or "
                            f"{src.folder}/")
        if not download_ok:
            raise DataError(f"{src.name} not found in {root}: put {src.archive} ({src.url}) "
                            f"or its extracted folder {src.folder}/ there")
        try:
            download(src.url, archive, src.archive_md5, progress=progress)
        except (urllib.error.URLError, OSError) as exc:
            raise DataError(f"{src.name} is not in {root} and cannot be downloaded ({exc}); "
                            f"download {src.url} and put {src.archive} in {root}, or point "
                            "--data-dir (data_dir; make run DATA_DIR=) or $RESATTN_DATA_DIR at "
                            "the folder holding it (the default is ~/.cache/resattn)") from None
    check_md5(archive, src.archive_md5,
              f"delete it and download {src.url} again")
    members = [f"{src.folder}/{f}" for f in src.data_files + src.extra_files]
    safe_extract(archive, root, members)
    folder = root / src.folder
    if src.member_md5 is None:
        _write_manifest(folder, src)
    return folder


def _write_manifest(folder: Path, src: CifarSource) -> dict[str, str]:
    hashes = {f: md5sum(folder / f) for f in src.data_files}
    with contextlib.suppress(UserError):  # a read-only data folder: recomputed next time
        write_text(folder / MANIFEST, json.dumps(hashes, indent=2))
    return hashes


def _expected_md5(folder: Path, src: CifarSource) -> dict[str, str]:
    if src.member_md5 is not None:
        return src.member_md5
    manifest = folder / MANIFEST
    if not manifest.is_file():
        # a folder the user extracted by hand: sizes are checked first, then hashes recorded
        for f in src.data_files:
            _check_size(folder / f, src)
        return _write_manifest(folder, src)
    try:
        return json.loads(manifest.read_text())
    except (OSError, ValueError):
        raise DataError(f"{manifest} is unreadable; delete it so that the hashes are "
                        "recorded again") from None


def _check_size(path: Path, src: CifarSource) -> None:
    size, expected = path.stat().st_size, src.file_size(path.name)
    if size != expected:
        raise DataError(f"{path} is truncated or corrupt ({size} bytes, expected {expected}); "
                        f"delete it and extract {src.archive} again")


def read_records(path: Path, src: CifarSource, expected_md5: str,
                 label_type: str = "fine") -> tuple[torch.Tensor, torch.Tensor]:
    """Verify one binary file, then parse it into (N, 3, 32, 32) uint8 images and labels."""
    _check_size(path, src)
    check_md5(path, expected_md5, f"delete it and extract {src.archive} again")
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, src.label_bytes + IMAGE_BYTES)
    # CIFAR-100: byte 0 is the coarse label, byte 1 the fine label
    column = 1 if (src.label_bytes == 2 and label_type == "fine") else 0
    labels = torch.from_numpy(raw[:, column].astype(np.int64))
    images = torch.from_numpy(np.ascontiguousarray(raw[:, src.label_bytes:]))
    return images.view(-1, 3, 32, 32), labels


def class_names(folder: Path, src: CifarSource, label_type: str) -> list[str]:
    if src.name == "cifar10":
        return list(CIFAR10_CLASSES)
    path = folder / f"{label_type}_label_names.txt"
    try:
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        names = []
    expected = 100 if label_type == "fine" else 20
    return names if len(names) == expected else [f"class_{i}" for i in range(expected)]


def load_cifar(name: str, data_dir: str | os.PathLike | None = None, label_type: str = "fine",
               download_ok: bool = True, progress: bool = True) -> tuple[ImageSet, ImageSet]:
    """(train, test) of CIFAR-10 or CIFAR-100, every file verified before a byte is used."""
    train, test = load_cifar_splits(name, ("train", "test"), data_dir, label_type, download_ok,
                                    progress)
    return train, test


def load_cifar_splits(name: str, splits: tuple[str, ...], data_dir: str | os.PathLike | None = None,
                      label_type: str = "fine", download_ok: bool = True,
                      progress: bool = True) -> list[ImageSet]:
    """The named splits ("train", "test") of CIFAR-10 or CIFAR-100, in that order, reading and
    verifying only their files (the test set alone is one file of six)."""
    if name not in SOURCES:
        raise InvalidOption("dataset", name, f"choose one of {', '.join(SOURCES)}")
    if label_type not in ("fine", "coarse"):
        raise InvalidOption("label_type", label_type, "choose fine or coarse")
    if not set(splits) <= {"train", "test"}:
        raise InvalidOption("splits", splits, "CIFAR has train and test")
    try:
        return _load(SOURCES[name], data_dir, label_type, download_ok, progress, splits)
    except PermissionError as exc:
        raise DataError(f"cannot read {exc.filename or data_dir} (permission denied); make the "
                        "data readable or point data_dir (--data-dir) elsewhere") from None


def _load(src: CifarSource, data_dir, label_type: str, download_ok: bool,
          progress: bool, splits: tuple[str, ...]) -> list[ImageSet]:
    folder = locate(src, data_dir, download_ok, progress)
    expected = _expected_md5(folder, src)
    classes = class_names(folder, src, label_type)

    def read(files: tuple[str, ...]) -> ImageSet:
        parts = [read_records(folder / f, src, expected[f], label_type) for f in files]
        images = torch.cat([p[0] for p in parts])
        labels = torch.cat([p[1] for p in parts])
        if int(labels.max()) >= len(classes):
            raise DataError(f"{folder} holds labels outside 0..{len(classes) - 1}; "
                            f"delete it and extract {src.archive} again")
        return ImageSet(images, labels, classes)

    files = {"train": src.train_files, "test": src.test_files}
    return [read(files[split]) for split in splits]
