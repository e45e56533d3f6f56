"""Splits, label noise, augmentation functions and the on-device loader."""

from __future__ import annotations

import pytest
import torch

from resattn.data import AugmentConfig, BatchTransform, DataConfig, build_data, load_cifar
from resattn.data import augment as A
from resattn.data.dataset import ImageSet
from resattn.data.loader import DeviceLoader, image_stats
from resattn.data.splits import add_label_noise, stratified_indices


def toy_set(n: int = 64, classes: int = 4, size: int = 8) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    return ImageSet(images, torch.arange(n) % classes, [f"c{i}" for i in range(classes)])


def test_stratified_indices_quota_disjoint_deterministic():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    rest, chosen = stratified_indices(labels, 10, seed=3)
    assert torch.bincount(labels[chosen]).tolist() == [5, 3, 2]
    assert set(rest.tolist()).isdisjoint(chosen.tolist())
    assert len(rest) + len(chosen) == 100
    again = stratified_indices(labels, 10, seed=3)
    assert torch.equal(again[1], chosen)
    assert not torch.equal(stratified_indices(labels, 10, seed=4)[1], chosen)


def test_label_noise_exact_fraction_and_always_another_class():
    labels = torch.arange(1000) % 10
    noisy, changed = add_label_noise(labels, 0.3, 10, seed=1)
    assert len(changed) == 300
    assert (noisy[changed] != labels[changed]).all()
    untouched = torch.ones(1000, dtype=torch.bool)
    untouched[changed] = False
    assert torch.equal(noisy[untouched], labels[untouched])
    # the new classes are spread over all the others, not one
    assert len(torch.unique(noisy[changed])) == 10


@pytest.mark.slow
def test_real_split_disjoint_and_reproducible(cifar10_dir):
    cfg = DataConfig(data_dir=str(cifar10_dir), val_size=5000)
    a = build_data(cfg, batch_size=128, device="cpu", seed=7)
    assert a.info == {"train_size": 45000, "val_size": 5000, "test_size": 10000,
                      "noisy_labels": 0}
    assert torch.bincount(a.val.data.labels).tolist() == [500] * 10
    # disjoint: no validation image is byte-identical to a training image with the same index
    train_keys = {hash(img.numpy().tobytes()) for img in a.train.data.images}
    val_keys = [hash(img.numpy().tobytes()) for img in a.val.data.images]
    # CIFAR-10 has a handful of exact duplicate images; a leaky split would share thousands
    assert sum(k in train_keys for k in val_keys) < 10
    b = build_data(cfg, batch_size=128, device="cpu", seed=7)
    assert torch.equal(a.val.data.labels, b.val.data.labels)
    xa, ya = next(iter(a.train))
    xb, yb = next(iter(b.train))
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    c = build_data(cfg, batch_size=128, device="cpu", seed=8)
    assert not torch.equal(next(iter(c.train))[1], ya)
    # another training seed validates on the same images; another split seed on others
    assert torch.equal(c.val.data.index, a.val.data.index)
    d = build_data(cfg, batch_size=128, device="cpu", seed=7, split_seed=1)
    assert not torch.equal(d.val.data.index.sort().values, a.val.data.index.sort().values)


def test_subset_streams_are_independent_of_the_seed(synthetic_cifar10):
    """The training and test subsets are drawn from the split seed alone: another training
    seed keeps them, and no training image is a validation image."""
    cfg = DataConfig(data_dir=str(synthetic_cifar10), val_size=100, train_subset=300,
                     test_subset=50)
    a = build_data(cfg, batch_size=128, device="cpu", seed=0)
    b = build_data(cfg, batch_size=128, device="cpu", seed=1)
    assert torch.equal(a.train.data.index, b.train.data.index)
    assert torch.equal(a.test.data.index, b.test.data.index)
    held = set(a.val.data.index.tolist())
    assert not held & set(a.train.data.index.tolist())


def test_val_size_zero_trains_on_everything(synthetic_cifar10):
    bundle = build_data(DataConfig(data_dir=str(synthetic_cifar10), val_size=0), batch_size=256,
                        device="cpu")
    assert bundle.val is None and bundle.info["train_size"] == 1000


def test_random_crop_is_a_window_of_the_padded_image():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6)
    g = torch.Generator().manual_seed(0)
    out = A.random_crop(x, 2, g)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        windows = [padded[i, :, dy:dy + 6, dx:dx + 6] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    reflect = A.random_crop(x.to(torch.uint8), 2, torch.Generator().manual_seed(0), "reflect")
    assert reflect.dtype == torch.uint8 and reflect.shape == (2, 3, 6, 6)


def test_flip_and_generator_reproducibility():
    x = torch.rand(1000, 1, 2, 3)
    out = A.flip_lr(x, torch.Generator().manual_seed(5))
    flipped = (out != x).flatten(1).any(1)
    assert 400 < int(flipped.sum()) < 600
    assert torch.equal(out[flipped], x[flipped].flip(3))
    assert torch.equal(out, A.flip_lr(x, torch.Generator().manual_seed(5)))


def test_rotation():
    x = torch.rand(4, 3, 16, 16)
    assert torch.equal(A.rotate(x, 0, torch.Generator()), x)
    out = A.rotate(x, 30, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.allclose(out, x)
    # a tiny angle barely changes the image
    small = A.rotate(x, 0.01, torch.Generator().manual_seed(0))
    assert torch.allclose(small[:, :, 4:12, 4:12], x[:, :, 4:12, 4:12], atol=0.02)


def test_cutout_zeroes_a_square():
    x = torch.ones(200, 1, 32, 32)
    out = A.cutout(x, 8, torch.Generator().manual_seed(0))
    zeros = (out == 0).flatten(1).sum(1)
    assert zeros.max() == 64 and zeros.min() > 0


def test_mixup_and_cutmix_targets():
    x = torch.rand(16, 3, 8, 8)
    t = A.one_hot(torch.arange(16) % 4, 4)
    mx, mt = A.mixup(x, t, 1.0, torch.Generator().manual_seed(0))
    assert torch.allclose(mt.sum(1), torch.ones(16))
    distinct = A.one_hot(torch.arange(16), 16)  # every image its own class
    cx, ct = A.cutmix(x, distinct, 1.0, torch.Generator().manual_seed(0))
    assert torch.allclose(ct.sum(1), torch.ones(16))
    # the pasted fraction of pixels equals the target weight moved to the partner
    changed = (cx != x).any(1).flatten(1).float().mean(1)
    own = (ct * distinct).sum(1)
    assert torch.allclose(changed, 1 - own) and changed.max() > 0
    assert torch.allclose(A.one_hot(torch.tensor([1]), 4, smoothing=0.1),
                          torch.tensor([[0.025, 0.925, 0.025, 0.025]]))


def test_normalization_stats():
    data = toy_set()
    mean, std = image_stats(data.images, "pixel")
    assert mean.shape == (3, 8, 8) and torch.equal(std, torch.ones(3, 1, 1))
    assert torch.allclose(mean, data.images.double().mean(0).float() / 255, atol=1e-6)
    mean, std = image_stats(data.images, "channel", chunk=10)
    ref = data.images.double() / 255
    assert torch.allclose(mean.flatten(), ref.mean((0, 2, 3)).float(), atol=1e-6)
    assert torch.allclose(std.flatten(), ref.std((0, 2, 3), unbiased=False).float(), atol=1e-5)


def make_loader(data, batch, train, seed=0, cfg=None, **kw):
    mean, std = image_stats(data.images, "channel")
    transform = BatchTransform(cfg or AugmentConfig(), mean, std, data.num_classes)
    return DeviceLoader(data, batch, transform, train, seed, **kw)


def test_loader_epochs_and_eval_order():
    data = toy_set(70)
    train = make_loader(data, 16, train=True)
    assert len(train) == 4  # the partial batch is dropped
    batches = list(train)
    assert all(x.shape == (16, 3, 8, 8) and x.dtype == torch.float32 for x, _ in batches)
    ev = make_loader(data, 16, train=False)
    labels = torch.cat([y for _, y in ev])
    assert len(ev) == 5 and torch.equal(labels, data.labels)  # every image once, in order
    first = torch.cat([y for _, y in train])
    train.set_epoch(1)
    second = torch.cat([y for _, y in train])
    assert not torch.equal(first, second)
    train.set_epoch(0)
    assert torch.equal(torch.cat([y for _, y in train]), first)


def test_loader_shards_cover_the_global_order():
    data = toy_set(64)
    full = make_loader(data, 8, train=True, seed=3)
    order = full._order()
    shards = [make_loader(data, 4, train=True, seed=3, rank=r, world_size=2) for r in range(2)]
    merged = torch.stack([s._order() for s in shards], 1).flatten()
    assert torch.equal(merged, order)


def test_soft_targets_with_mixup():
    data = toy_set(32)
    cfg = AugmentConfig(mixup=0.2, cutmix=1.0, rotation=10, cutout=4)
    x, t = next(iter(make_loader(data, 16, train=True, cfg=cfg)))
    assert t.shape == (16, 4) and torch.allclose(t.sum(1), torch.ones(16))
    assert torch.isfinite(x).all()


@pytest.mark.parametrize("field,value", [("normalization", "none"), ("crop_mode", "wrap"),
                                         ("cutout", -1)])
def test_bad_augment_config(field, value):
    with pytest.raises(ValueError, match=field):
        AugmentConfig(**{field: value})


def test_label_noise_and_subset_through_build(synthetic_cifar10):
    cfg = DataConfig(data_dir=str(synthetic_cifar10), val_size=100, train_subset=500,
                     label_noise=0.3)
    bundle = build_data(cfg, batch_size=64, device="cpu", seed=0)
    assert bundle.info["train_size"] == 500 and bundle.info["noisy_labels"] == 150
    assert torch.bincount(bundle.val.data.labels).tolist() == [10] * 10  # stratified
    # the noise is in the training labels, and only there
    clean, _ = load_cifar("cifar10", synthetic_cifar10)
    train = bundle.train.data
    assert int((train.labels != clean.labels[train.index]).sum()) == 150
    assert torch.equal(bundle.val.data.labels, clean.labels[bundle.val.data.index])
