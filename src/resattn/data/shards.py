"""Image folders as tar shards, for many processes on many machines.

`write_shards(ROOT, OUT)` packs ROOT/{train,val,test}/<class>/<image> into OUT/<split>-NNNNNN.tar
in WebDataset's layout (per image `<key>.<ext>`, the file's own bytes, and `<key>.cls`, the class
index as text), images shuffled across shards, and lists every shard with its SHA-256, size and
each image's byte range in OUT/index.json. Tar headers carry no time or owner, so the same
folder gives byte-identical shards. Writing resumes: shards already listed (and whose hash
still matches) are kept, the rest written, each whole or not at all.

Training reads whole shards per process: each epoch the shards are dealt to the processes in an
order drawn from (seed, epoch), each process shuffles the images of its own shards with (seed,
epoch, rank), and every process runs the same number of steps. The order is a pure function of
those numbers, so resume stays exact. Images are read by their byte range (a seek, no
extraction); nothing from a shard is ever written to disk.

Written with the standard library's `tarfile`, not the `webdataset` package: its readers stream
each shard through a shuffle buffer, so which image comes when depends on the buffer and the
number of workers, and a resumed run cannot replay an epoch exactly; reading by byte range from
an index gives that order for free. The format is WebDataset's, so its package reads these
shards too (and streams them from object storage, which this reader does not).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..files import replacing, sha256_of, write_text
from .download import DataError
from .folder import FolderDataset, FolderLoader, scan_folder
from .images import MAX_PIXELS, ImageReadError, load_rgb
from .loader import derive_seed

log = logging.getLogger(__name__)

INDEX = "index.json"
FORMAT = "resattn-shards/1"
SPLIT_NAMES = ("train", "val", "test")


def _member(name: str, size: int) -> tarfile.TarInfo:
    """A tar header without time, owner or permissions of this machine."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _write_shard(path: Path, items: list[tuple[str, Path, int]], root: Path) -> dict[str, Any]:
    """One shard from (key, image file, label) items, written whole or not at all; returns its
    index entry (the byte range of every image, read back from the written tar)."""
    with replacing(path, what="shard", advice="free some space or choose another folder") as tmp:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for key, image, label in items:
                data = image.read_bytes()
                tar.addfile(_member(f"{key}{image.suffix.lower()}", len(data)), io.BytesIO(data))
                cls = str(label).encode()
                tar.addfile(_member(f"{key}.cls", len(cls)), io.BytesIO(cls))
        with tarfile.open(tmp) as tar:
            images = [m for m in tar.getmembers() if not m.name.endswith(".cls")]
        entry = {"file": path.name, "sha256": sha256_of(tmp), "bytes": tmp.stat().st_size,
                 "count": len(items), "offsets": [m.offset_data for m in images],
                 "sizes": [m.size for m in images], "labels": [label for _, _, label in items],
                 "names": [image.relative_to(root).as_posix() for _, image, _ in items]}
    return entry


def _plan(root: Path, shard_size: int, seed: int):
    """{split: [(key, file, label)] in the shuffled order they are written}, the classes and a
    digest of it all (an OUT written from another folder or with another size is refused)."""
    splits = scan_folder(root)
    plan, listing = {}, []
    for split_index, (name, split) in enumerate(splits.items()):
        order = torch.randperm(len(split), generator=torch.Generator().manual_seed(
            derive_seed(seed, split_index)))
        items = [(f"{name}{n:08d}", split.paths[i], int(split.labels[i]))
                 for n, i in enumerate(order.tolist())]
        plan[name] = [items[i:i + shard_size] for i in range(0, len(items), shard_size)]
        listing.append([name, [[str(p.relative_to(root)), label] for _, p, label in items]])
    classes = next(iter(splits.values())).classes
    text = json.dumps({"listing": listing, "classes": classes, "shard_size": shard_size})
    return plan, classes, hashlib.sha256(text.encode()).hexdigest()


def _read_index(out: Path) -> dict[str, Any] | None:
    path = out / INDEX
    if not path.exists():
        return None
    try:
        index = json.loads(path.read_text())
        if index.get("format") != FORMAT:
            raise ValueError(f"format {index.get('format')!r}")
        for split in index["splits"].values():
            for shard in split:
                _ = (shard["file"], shard["sha256"], shard["bytes"], shard["offsets"],
                     shard["sizes"], shard["labels"], shard["names"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path} is not a resattn shard index ({exc}); write the shards "
                        "again into an empty folder") from None
    return index


def write_shards(root: str | Path, out: str | Path, shard_size: int = 1000, seed: int = 0,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Pack the image folder `root` into shards of `shard_size` images in `out`; returns the
    index. `progress(done, total)` is called after each shard. An interrupted run resumes:
    run it again with the same arguments."""
    root, out = Path(root).expanduser(), Path(out).expanduser()
    if shard_size < 1:
        raise DataError(f"--shard-size {shard_size} is not valid; it must be >= 1")
    plan, classes, digest = _plan(root, shard_size, seed)
    old = _read_index(out) if out.is_dir() else None
    if old is None and out.is_dir() and any(out.iterdir()):
        raise DataError(f"{out} is not empty and holds no shard index; choose an empty or new "
                        "folder (nothing in it is overwritten)")
    if old is not None and old.get("plan") != digest:
        raise DataError(f"{out} holds shards of another folder, shard size or seed; choose an "
                        "empty or new folder (nothing in it is overwritten)")
    done = {s["file"]: s for split in (old or {}).get("splits", {}).values() for s in split}
    index: dict[str, Any] = {"format": FORMAT, "plan": digest, "classes": classes,
                             "shard_size": shard_size, "seed": seed, "complete": False,
                             "splits": {name: [] for name in plan}}
    total, count = sum(len(chunks) for chunks in plan.values()), 0
    out.mkdir(parents=True, exist_ok=True)
    for name, chunks in plan.items():
        for i, items in enumerate(chunks):
            path = out / f"{name}-{i:06d}.tar"
            entry = done.get(path.name)
            if entry is None or not path.is_file() or sha256_of(path) != entry["sha256"]:
                entry = _write_shard(path, items, root)
            index["splits"][name].append(entry)
            write_text(out / INDEX, json.dumps(index), what="shard index")
            count += 1
            if progress is not None:
                progress(count, total)
    index["complete"] = True
    write_text(out / INDEX, json.dumps(index), what="shard index")
    return index


@dataclass
class ShardSplit:
    """The images of one split: which shard each is in, its byte range and label."""

    root: Path
    files: list[str]
    shard: torch.Tensor  # (N,) index into files
    offsets: torch.Tensor
    sizes: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    names: list[str]  # each image's path in the folder the shards were written from

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> ShardSplit:
        return ShardSplit(self.root, self.files, self.shard[index], self.offsets[index],
                          self.sizes[index], self.labels[index], self.classes,
                          [self.names[i] for i in index.tolist()])

    @property
    def paths(self) -> list[str]:
        """A name for each image (in messages and predictions): its shard and its path in the
        folder the shards were written from."""
        return [f"{self.root / self.files[s]}:{name}"
                for s, name in zip(self.shard.tolist(), self.names)]


def scan_shards(root: str | Path) -> dict[str, ShardSplit]:
    """The splits of a shard folder, every listed shard checked to exist with its listed size
    (hashes are checked by writing again: `resattn data shard`)."""
    root = Path(root).expanduser()
    index = _read_index(root) if root.is_dir() else None
    if index is None:
        raise DataError(f"{root}/{INDEX} not found; write shards with "
                        f"`resattn data shard IMAGE_FOLDER {root}`")
    if not index.get("complete"):
        raise DataError(f"the shards in {root} are incomplete (writing them was interrupted); "
                        "run the same `resattn data shard` command again to finish them")
    splits = {}
    for name, shards in index["splits"].items():
        if name not in SPLIT_NAMES or not shards:
            continue
        for s in shards:
            path = root / s["file"]
            if not path.is_file():
                raise DataError(f"shard {path} is missing; restore it or write the shards "
                                "again with `resattn data shard`")
            if path.stat().st_size != s["bytes"]:
                raise DataError(f"shard {path} is {path.stat().st_size} bytes, the index says "
                                f"{s['bytes']}: it is damaged or was changed; write the shards "
                                "again with `resattn data shard`")
        ids = [i for i, s in enumerate(shards) for _ in s["offsets"]]
        offsets, sizes, labels = (torch.tensor([v for s in shards for v in s[key]],
                                               dtype=torch.long)
                                  for key in ("offsets", "sizes", "labels"))
        splits[name] = ShardSplit(root, [s["file"] for s in shards],
                                  torch.tensor(ids, dtype=torch.long), offsets, sizes, labels,
                                  list(index["classes"]), [n for s in shards for n in s["names"]])
    if "train" not in splits:
        raise DataError(f"{root}/{INDEX} lists no training shards; write them from a folder "
                        "with train/<class>/ images")
    return splits


class ShardDataset(FolderDataset):
    """A `FolderDataset` whose images are byte ranges of tar shards."""

    def __init__(self, split: ShardSplit, size: int, train: bool, seed: int = 0,
                 max_pixels: int = MAX_PIXELS):
        super().__init__(split, size, train, seed, max_pixels)  # type: ignore[arg-type]
        self._files: dict[int, Any] = {}
        self._pid = -1

    def _read(self, i: int) -> bytes:
        split = self.split
        if self._pid != os.getpid():  # a forked worker opens its own files
            self._files, self._pid = {}, os.getpid()
        s = int(split.shard[i])  # type: ignore[attr-defined]
        if s not in self._files:
            self._files[s] = open(split.root / split.files[s], "rb")  # type: ignore[attr-defined]
        f = self._files[s]
        f.seek(int(split.offsets[i]))  # type: ignore[attr-defined]
        size = int(split.sizes[i])  # type: ignore[attr-defined]
        data = f.read(size)
        if len(data) != size:
            raise ImageReadError("the shard ends inside this image")
        return data

    def load(self, i: int) -> Image.Image:
        try:
            data = self._read(i)
        except OSError as exc:
            raise ImageReadError(f"cannot read the shard ({exc})") from None
        return load_rgb(io.BytesIO(data), self.max_pixels)

    def __getstate__(self) -> dict[str, Any]:  # open files stay with their process
        return {**self.__dict__, "_files": {}, "_pid": -1}


class ShardLoader(FolderLoader):
    """A `FolderLoader` that deals whole shards to the processes (training)."""

    def _batches(self) -> list[list[int]]:
        if not self.train:
            return super()._batches()
        split = self.dataset.split
        n_shards = len(split.files)  # type: ignore[attr-defined]
        if n_shards < self.world_size:
            raise DataError(f"{n_shards} training shards cannot be shared by "
                            f"{self.world_size} processes; write smaller shards (--shard-size)")
        g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, 0))
        order = torch.randperm(n_shards, generator=g)
        shard_of = split.shard  # type: ignore[attr-defined]
        counts = torch.bincount(shard_of, minlength=n_shards)
        # every process the same number of images, so every process runs the same steps
        take = min(int(counts[order[r::self.world_size]].sum()) for r in range(self.world_size))
        members = torch.isin(shard_of, order[self.rank::self.world_size]).nonzero().flatten()
        g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, 3, self.rank))
        mine: list[int] = members[torch.randperm(len(members), generator=g)][:take].tolist()
        count = len(mine) // self.batch_size
        return [mine[i * self.batch_size:(i + 1) * self.batch_size] for i in range(count)]
