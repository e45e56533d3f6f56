"""Tar shards: written byte-exact and resumable, read by byte range, dealt to processes by
(seed, epoch), damaged or missing shards refused by name."""

from __future__ import annotations

import json
import logging
import tarfile

import pytest
import torch

from resattn.data import DataConfig, DataError, build_data, write_shards
from resattn.data import shards as S
from resattn.data.folder import FolderDataset, scan_folder
from resattn.data.loader import AugmentConfig

from .test_folder import rgb, save

CLASSES = ("ant", "bee", "cat")


def make_tree(root, per_class=12, test_per_class=4):
    """JPEGs and PNGs of several sizes (the shards keep each file's own bytes)."""
    for c, name in enumerate(CLASSES):
        for i in range(per_class):
            ext = ".jpg" if i % 2 else ".png"
            save(root / "train" / name / f"{i}{ext}", rgb(20 + i, 14 + c, seed=c * 100 + i))
        for i in range(test_per_class):
            save(root / "test" / name / f"t{i}.jpg", rgb(18, 18, seed=9000 + c * 100 + i))
    return root


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "images")


def shard_files(out):
    return sorted(p.name for p in out.glob("*.tar"))


def test_shards_hold_every_image_byte_for_byte_with_its_label(tree, tmp_path):
    out = tmp_path / "shards"
    index = write_shards(tree, out, shard_size=5)
    assert index["complete"] and index["classes"] == list(CLASSES)
    assert shard_files(out) == [f"test-{i:06d}.tar" for i in range(3)] + \
        [f"train-{i:06d}.tar" for i in range(8)]  # 12 test and 36 training images
    splits = S.scan_shards(out)
    assert len(splits["train"]) == 36 and len(splits["test"]) == 12
    seen = set()
    for split in splits.values():
        for i in range(len(split)):
            source = tree / split.names[i]
            with open(out / split.files[int(split.shard[i])], "rb") as f:
                f.seek(int(split.offsets[i]))
                assert f.read(int(split.sizes[i])) == source.read_bytes()
            assert split.classes[int(split.labels[i])] == source.parent.name
            seen.add(split.names[i])
    assert len(seen) == 48
    # WebDataset's layout: <key>.<ext> and <key>.cls, the class index as text
    with tarfile.open(out / "train-000000.tar") as tar:
        names = tar.getnames()
        cls = tar.extractfile(names[1]).read()
    assert names[0].split(".")[0] == names[1].split(".")[0] and names[1].endswith(".cls")
    assert int(cls) in range(3)


def test_images_are_shuffled_across_shards_and_writing_is_reproducible(tree, tmp_path):
    write_shards(tree, tmp_path / "a", shard_size=6)
    write_shards(tree, tmp_path / "b", shard_size=6)
    write_shards(tree, tmp_path / "c", shard_size=6, seed=1)
    a, b = tmp_path / "a", tmp_path / "b"
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in shard_files(a))
    first = S.scan_shards(a)["train"]
    classes_in_first = set(first.labels[first.shard == 0].tolist())
    assert len(classes_in_first) > 1  # not written class after class
    other = S.scan_shards(tmp_path / "c")["train"]
    assert first.names != other.names


def test_an_interrupted_write_resumes_keeping_the_shards_already_written(tree, tmp_path,
                                                                          monkeypatch):
    out = tmp_path / "shards"
    real = S._write_shard
    calls = []

    def fail_after_three(path, items, root):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(path.name)
        return real(path, items, root)

    monkeypatch.setattr(S, "_write_shard", fail_after_three)
    with pytest.raises(KeyboardInterrupt):
        write_shards(tree, out, shard_size=5)
    assert not json.loads((out / S.INDEX).read_text())["complete"]
    assert not list(out.glob("*.tmp"))  # the shard being written is not left behind torn
    with pytest.raises(DataError, match="incomplete"):
        S.scan_shards(out)
    before = {name: (out / name).stat().st_mtime_ns for name in calls}
    monkeypatch.setattr(S, "_write_shard", real)
    written = []
    monkeypatch.setattr(S, "_write_shard",
                        lambda path, items, root: written.append(path.name) or
                        real(path, items, root))
    write_shards(tree, out, shard_size=5)
    assert set(written).isdisjoint(calls) and len(written) == 11 - 3
    assert {name: (out / name).stat().st_mtime_ns for name in calls} == before
    fresh = tmp_path / "fresh"
    write_shards(tree, fresh, shard_size=5)
    assert (out / S.INDEX).read_text() == (fresh / S.INDEX).read_text()


def test_a_damaged_listed_shard_is_rewritten_when_writing_again(tree, tmp_path):
    out = tmp_path / "shards"
    write_shards(tree, out, shard_size=5)
    good = (out / "train-000002.tar").read_bytes()
    (out / "train-000002.tar").write_bytes(b"\0" * len(good))
    write_shards(tree, out, shard_size=5)  # every hash checked again
    assert (out / "train-000002.tar").read_bytes() == good


def test_nothing_is_overwritten_in_a_folder_that_is_not_these_shards(tree, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        write_shards(tree, other)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    out = tmp_path / "shards"
    write_shards(tree, out, shard_size=5)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(DataError, match="another folder, shard size or seed"):
        write_shards(tree, out, shard_size=7)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with pytest.raises(DataError, match="shard-size"):
        write_shards(tree, tmp_path / "x", shard_size=0)


def test_missing_damaged_or_foreign_shards_are_one_line_errors_naming_them(tree, tmp_path):
    out = tmp_path / "shards"
    write_shards(tree, out, shard_size=5)
    with pytest.raises(DataError, match="index.json not found"):
        S.scan_shards(tree)
    victim = out / "train-000003.tar"
    data = victim.read_bytes()
    victim.write_bytes(data[:-700])
    with pytest.raises(DataError, match="train-000003.tar is .* bytes, the index says"):
        S.scan_shards(out)
    victim.unlink()
    with pytest.raises(DataError, match="train-000003.tar is missing"):
        S.scan_shards(out)
    victim.write_bytes(data)
    (out / S.INDEX).write_text("{not json")
    with pytest.raises(DataError, match="not a resattn shard index"):
        S.scan_shards(out)


def config(tmp_path, dataset="shards", val_size=6):
    return DataConfig(dataset=dataset, data_dir=str(tmp_path), val_size=val_size,
                      augment=AugmentConfig(normalization="channel"))


def test_evaluation_images_equal_the_folders(tree, tmp_path):
    out = tmp_path / "shards"
    write_shards(tree, out, shard_size=5)
    test = S.scan_shards(out)["test"]
    folder = scan_folder(tree)["test"]
    by_name = {p.relative_to(tree).as_posix(): i for i, p in enumerate(folder.paths)}
    a = S.ShardDataset(test, 16, train=False)
    b = FolderDataset(folder, 16, train=False)
    for i in range(len(test)):
        j = by_name[test.names[i]]
        assert torch.equal(a[i][0], b[j][0]) and a[i][1] == b[j][1]


def order(loader, epoch):
    loader.set_epoch(epoch)
    return loader._batches()


def test_processes_read_their_own_shards_in_a_seeded_order(tree, tmp_path):
    out = tmp_path / "shards"
    write_shards(tree, out, shard_size=4)  # 9 training shards
    cfg = config(out, val_size=0)
    ranks = [build_data(cfg, batch_size=4, input_size=16, rank=r, world_size=2, seed=3).train
             for r in range(2)]
    split = ranks[0].dataset.split
    for epoch in range(3):
        mine = [sum(order(loader, epoch), []) for loader in ranks]
        assert len(order(ranks[0], epoch)) == len(order(ranks[1], epoch)) >= 3
        shards = [set(split.shard[m].tolist()) for m in mine]
        assert shards[0].isdisjoint(shards[1])  # whole shards per process
        assert set(mine[0]).isdisjoint(mine[1])
        again = build_data(cfg, batch_size=4, input_size=16, rank=0, world_size=2,
                           seed=3).train
        assert order(again, epoch) == order(ranks[0], epoch)  # a resumed run: the same order
    assert order(ranks[0], 0) != order(ranks[0], 1)  # reshuffled every epoch
    other = build_data(cfg, batch_size=4, input_size=16, rank=0, world_size=2, seed=4).train
    assert order(other, 0) != order(ranks[0], 0)
    alone = build_data(cfg, batch_size=4, input_size=16, seed=3).train
    assert sorted(sum(order(alone, 0), [])) == list(range(36))  # one process: every image
    many = build_data(cfg, batch_size=1, input_size=16, rank=0, world_size=10, seed=3).train
    with pytest.raises(DataError, match="9 training shards cannot be shared by 10 processes"):
        order(many, 0)


def test_training_batches_from_shards_and_a_damaged_image_is_skipped(tree, tmp_path, caplog):
    out = tmp_path / "shards"
    write_shards(tree, out, shard_size=5)
    bundle = build_data(config(out), batch_size=6, input_size=16, seed=1)
    assert bundle.info["train_size"] == 30 and bundle.info["val_size"] == 6
    assert bundle.info["test_size"] == 12 and bundle.classes == list(CLASSES)
    split = bundle.train.dataset.split  # the 30 training images (6 held out for validation)
    victim = out / split.files[int(split.shard[0])]
    start, size = int(split.offsets[0]), int(split.sizes[0])
    data = bytearray(victim.read_bytes())
    data[start:start + size] = b"\x01" * size  # the same length: only decoding can tell
    victim.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        batches = list(bundle.train)
    assert sum(len(y) for _, y in batches) == 29
    assert split.names[0] in caplog.text and "could not be decoded" in caplog.text
    assert all(x.shape[1:] == (3, 16, 16) and x.dtype == torch.float32 for x, _ in batches)


def test_shards_need_a_data_dir():
    with pytest.raises(Exception, match="resattn data shard"):
        build_data(DataConfig(dataset="shards"))
