"""Image folders: every image kind Pillow gives us, bad files, the 1% rule, loaders."""

from __future__ import annotations

import logging
import random
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from resattn.data import DataConfig, DataError, build_data
from resattn.data.folder import scan_folder
from resattn.data.images import (
    ImageReadError,
    load_rgb,
    random_resized_crop,
    resize_center_crop,
)
from resattn.errors import InvalidOption


def save(path, img, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def rgb(w=20, h=14, seed=0):
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(arr)


def make_folder(root, per_class=60, bad=(), classes=("dog", "cat", "ant")):
    for c, name in enumerate(classes):
        for i in range(per_class):
            save(root / "train" / name / f"{i}.png", rgb(seed=c * 1000 + i))
    for name in classes:
        save(root / "test" / name / "t.png", rgb(seed=7))
    for rel, data in bad:
        (root / rel).write_bytes(data)
    return root


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "I;16", "1"])
def test_modes_convert_to_rgb(tmp_path, mode):
    base = rgb()
    if mode == "I;16":
        img = Image.fromarray(np.full((14, 20), 65535, dtype=np.uint16))
    else:
        img = base.convert(mode)
    suffix = ".jpg" if mode == "CMYK" else ".tiff" if mode == "LA" else ".png"
    out = load_rgb(save(tmp_path / f"x{suffix}", img))
    assert out.mode == "RGB" and out.size == (20, 14)
    if mode == "I;16":
        assert np.asarray(out).min() == 255  # full-scale 16-bit is full-scale 8-bit


def test_sixteen_bit_scaling(tmp_path):
    arr = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    out = np.asarray(load_rgb(save(tmp_path / "g.png", Image.fromarray(arr))))
    assert out[0, :, 0].tolist() == [0, 128, 255]


def test_rgba_transparency_composited_on_white(tmp_path):
    img = Image.new("RGBA", (4, 4), (10, 20, 30, 0))
    assert np.asarray(load_rgb(save(tmp_path / "t.png", img))).min() == 255


@pytest.mark.parametrize("fmt", ["bmp", "webp", "tiff", "jpeg"])
def test_formats(tmp_path, fmt):
    assert load_rgb(save(tmp_path / f"a.{fmt}", rgb())).size == (20, 14)


def test_bad_files(tmp_path):
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ImageReadError, match="not an image"):
        load_rgb(tmp_path / "text.jpg")
    png = save(tmp_path / "ok.png", rgb(200, 200)).read_bytes()
    (tmp_path / "cut.png").write_bytes(png[: len(png) // 2])
    with pytest.raises(ImageReadError, match="unreadable"):
        load_rgb(tmp_path / "cut.png")
    with pytest.raises(ImageReadError, match="decompression-bomb limit"):
        load_rgb(tmp_path / "ok.png", max_pixels=100)


def test_geometry():
    img = rgb(100, 60)
    assert resize_center_crop(img, 32).size == (32, 32)
    assert random_resized_crop(img, 24, random.Random(0)).size == (24, 24)
    a = np.asarray(random_resized_crop(img, 24, random.Random(1)))
    b = np.asarray(random_resized_crop(img, 24, random.Random(1)))
    assert np.array_equal(a, b)


def test_center_crop_resamples_only_the_crop():
    """The crop's box is resampled, not the whole image: the same pixels as scaling the whole
    image and cropping it (to rounding), and a 1 x 1,000,000 image costs no more than a square
    one (scaled whole, its short side to 256 px, it took gigabytes)."""
    img = rgb(301, 199)
    short = round(64 / 0.875)
    whole = img.resize((round(301 * short / 199), short), Image.Resampling.BILINEAR,
                       reducing_gap=None)
    left = (whole.width - 64) // 2
    reference = np.asarray(whole.crop((left, (short - 64) // 2, left + 64,
                                       (short - 64) // 2 + 64))).astype(int)
    assert np.abs(np.asarray(resize_center_crop(img, 64)).astype(int) - reference).max() <= 1
    thin = Image.new("RGB", (1, 1_000_000), (10, 200, 30))
    crop = np.asarray(resize_center_crop(thin, 224))
    assert crop.shape == (224, 224, 3) and (crop == (10, 200, 30)).all()


def test_scan_sorted_classes_and_skip_bad(tmp_path, caplog):
    root = make_folder(tmp_path, bad=[("train/cat/broken.jpg", b"garbage")])
    with caplog.at_level(logging.WARNING):
        splits = scan_folder(root)
    assert splits["train"].classes == ["ant", "cat", "dog"]
    assert len(splits["train"]) == 180 and set(splits) == {"train", "test"}
    assert "broken.jpg" in caplog.text
    assert torch.bincount(splits["train"].labels).tolist() == [60, 60, 60]


def test_too_many_bad_files_stop(tmp_path):
    bad = [(f"train/cat/bad{i}.png", b"x") for i in range(3)]
    root = make_folder(tmp_path, per_class=20, bad=bad)
    with pytest.raises(DataError, match=r"3 of 63 files .* unreadable"):
        scan_folder(root)


def test_missing_train_and_foreign_classes(tmp_path):
    with pytest.raises(DataError, match="train not found"):
        scan_folder(tmp_path)
    root = make_folder(tmp_path / "d", per_class=2)
    save(root / "val" / "zebra" / "z.png", rgb())
    with pytest.raises(DataError, match="zebra"):
        scan_folder(root)


def test_one_class_is_refused(tmp_path):
    root = make_folder(tmp_path, per_class=2, classes=("cat",))
    with pytest.raises(DataError, match=r"one class folder \(cat\); a classifier needs at least"):
        scan_folder(root)


def test_hidden_folders_are_not_classes_nor_images(tmp_path):
    """A notebook's .ipynb_checkpoints and an archiver's __MACOSX are neither classes nor
    images of a class."""
    root = make_folder(tmp_path, per_class=2, classes=("cat", "dog"))
    (root / "train" / ".ipynb_checkpoints").mkdir()
    save(root / "train" / "__MACOSX" / "cat" / "x.png", rgb())
    save(root / "train" / "cat" / ".ipynb_checkpoints" / "copy.png", rgb())
    save(root / "test" / ".cache" / "y.png", rgb())
    splits = scan_folder(root)
    assert splits["train"].classes == ["cat", "dog"] and len(splits["train"]) == 4
    assert all(".ipynb" not in str(p) for p in splits["train"].paths)


def test_a_training_class_without_images_and_a_class_that_is_a_file_are_refused(tmp_path):
    root = make_folder(tmp_path, per_class=2, classes=("cat", "dog"))
    (root / "train" / "emu").mkdir()
    with pytest.raises(DataError, match=r"train/emu holds no images; every training class"):
        scan_folder(root)
    (root / "train" / "emu").rmdir()
    (root / "val").mkdir()
    (root / "val" / "cat").write_text("not a folder")
    save(root / "val" / "dog" / "d.png", rgb())
    with pytest.raises(DataError, match=r"val/cat is a file, not a folder of cat images"):
        scan_folder(root)


def test_workers_beyond_the_cpus_are_clamped(tmp_path, monkeypatch):
    """More workers than usable CPUs only oversubscribe them (and make torch warn): the loader
    starts one per CPU and yields the same batches as decoding in this process."""
    import resattn.data.folder as folder

    started = []

    class Spy(folder.DataLoader):
        def __init__(self, *args, num_workers=0, **kw):
            started.append(num_workers)
            super().__init__(*args, num_workers=num_workers, **kw)

    monkeypatch.setattr(folder, "DataLoader", Spy)
    monkeypatch.setattr(folder, "usable_cpus", lambda: 1)
    cfg = DataConfig(dataset="folder", data_dir=str(make_folder(tmp_path, per_class=8)),
                     val_size=0)
    batches = {}
    for workers in (0, 16):
        bundle = build_data(cfg, batch_size=8, device="cpu", input_size=16, workers=workers)
        with warnings.catch_warnings():
            # torch's "This DataLoader will create N worker processes in total" warning
            warnings.filterwarnings("error", message=".*worker processes in total")
            batches[workers] = list(bundle.train)
    assert started == [0, 1]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
               for a, b in zip(batches[0], batches[16], strict=True))


def test_build_folder_end_to_end(tmp_path, caplog):
    root = make_folder(tmp_path)
    png = save(tmp_path / "big.png", rgb(64, 64)).read_bytes()
    (root / "train" / "ant" / "cut.png").write_bytes(png[:200])  # header fine, data cut
    cfg = DataConfig(dataset="folder", data_dir=str(root), val_size=30)
    bundle = build_data(cfg, batch_size=16, device="cpu", input_size=24, workers=0)
    assert bundle.classes == ["ant", "cat", "dog"]
    assert bundle.info["val_size"] == 30 and bundle.info["test_size"] == 3
    with caplog.at_level(logging.WARNING):
        batches = list(bundle.train)
    assert all(x.shape[1:] == (3, 24, 24) and x.dtype == torch.float32 for x, _ in batches)
    seen = sum(len(y) for _, y in batches)
    assert seen in (len(batches) * 16, len(batches) * 16 - 1)  # the cut file, if drawn, dropped
    val_labels = torch.cat([y for _, y in bundle.val])
    assert len(val_labels) == 30 and torch.bincount(val_labels).tolist() == [10, 10, 10]
    x, _ = next(iter(bundle.test))
    assert x.shape == (3, 3, 24, 24)


def test_folder_needs_data_dir():
    with pytest.raises(InvalidOption, match="data_dir=None is not valid; the folder dataset"):
        build_data(DataConfig(dataset="folder"), batch_size=8, device="cpu")
