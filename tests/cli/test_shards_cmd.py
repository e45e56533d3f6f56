"""`resattn data shard`, training from shards, and evaluation at another input size."""

from __future__ import annotations

import json

import pytest

from ..conftest import assert_user_error, cli
from ..data.test_folder import rgb, save

CLASSES = ("ant", "bee", "cat")


def tiny_tree(root, per_class=16, test_per_class=4, side=36):
    for c, name in enumerate(CLASSES):
        for i in range(per_class):
            save(root / "train" / name / f"{i}.jpg", rgb(side, side - 4, seed=c * 100 + i))
        for i in range(test_per_class):
            save(root / "test" / name / f"{i}.png", rgb(side, side, seed=5000 + c * 100 + i))
    return root


TRAIN = ["--model", "attention_test", "--input-size", "32", "--val-size", "6",
         "--batch-size", "8", "--iterations", "2", "--workers", "0", "--no-progress",
         "--amp", "off", "--normalization", "channel", "--lr", "0.01"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    base = tmp_path_factory.mktemp("shards")
    tree = tiny_tree(base / "images")
    proc = cli("data", "shard", str(tree), str(base / "shards"), "--shard-size", "10",
               "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("train 48 images in 5 shards, test 12 images in 2 "
                                        f"shards, 3 classes; train with --dataset shards "
                                        f"--data-dir {base / 'shards'}")
    return base


@pytest.fixture(scope="module")
def shard_run(shards):
    out = shards / "runs"
    proc = cli("train", "--dataset", "shards", "--data-dir", str(shards / "shards"), *TRAIN,
               "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    (run,) = out.iterdir()
    return run


def test_no_progress_before_the_subcommand_counts_too(shards, tmp_path):
    tree, options = str(shards / "images"), ("--shard-size", "10")
    shown = cli("data", "shard", tree, str(tmp_path / "a"), *options)
    before = cli("data", "--no-progress", "shard", tree, str(tmp_path / "b"), *options)
    after = cli("data", "shard", tree, str(tmp_path / "c"), *options, "--no-progress")
    assert shown.returncode == before.returncode == after.returncode == 0, before.stderr
    assert "shard:" in shown.stderr
    assert "shard:" not in before.stderr and "shard:" not in after.stderr


def test_writing_again_verifies_and_changes_nothing(shards):
    out = shards / "shards"
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    proc = cli("data", "shard", str(shards / "images"), str(out), "--shard-size", "10",
               "--no-progress")
    assert proc.returncode == 0, proc.stderr
    tars = {name: t for name, t in before.items() if name.endswith(".tar")}
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")} == tars


@pytest.mark.parametrize("args, message", [
    (["--shard-size", "0"], "--shard-size 0 is not valid"),
    (["--shard-size", "7"], "holds shards of another folder, shard size or seed"),
])
def test_shard_mistakes_are_one_line_errors(shards, args, message):
    proc = cli("data", "shard", str(shards / "images"), str(shards / "shards"), *args,
               "--no-progress")
    assert_user_error(proc, message)


def test_a_missing_image_folder_is_a_one_line_error(tmp_path):
    assert_user_error(cli("data", "shard", str(tmp_path / "nowhere"), str(tmp_path / "out")),
                      "train not found")
    assert not (tmp_path / "out").exists()


def test_train_from_shards_and_data_summary(shard_run, shards):
    summary = json.loads((shard_run / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["test_images"] == 12
    assert summary["val_images"] == 6
    proc = cli("data", "--dataset", "shards", "--data-dir", str(shards / "shards"),
               "--val-size", "6", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert (info["train_size"], info["val_size"], info["test_size"]) == (42, 6, 12)
    assert info["classes"] == list(CLASSES)


def test_a_damaged_shard_stops_training_with_its_name(shards, tmp_path):
    import shutil

    copy = tmp_path / "shards"
    shutil.copytree(shards / "shards", copy)
    victim = copy / "train-000001.tar"
    victim.write_bytes(victim.read_bytes()[:-1024])
    proc = cli("train", "--dataset", "shards", "--data-dir", str(copy), *TRAIN,
               "--out", str(tmp_path / "runs"))
    assert_user_error(proc, f"shard {victim} is")


def test_evaluate_at_another_input_size(shard_run, shards):
    data = ["--data-dir", str(shards / "shards"), "--amp", "off", "--json"]
    at_32 = json.loads(cli("evaluate", str(shard_run), *data).stdout)
    proc = cli("evaluate", str(shard_run), *data, "--input-size", "48")
    assert proc.returncode == 0, proc.stderr
    at_48 = json.loads(proc.stdout)
    assert (at_32["input_size"], at_48["input_size"]) == (32, 48)
    assert at_48["images"] == at_32["images"] == 12
    assert at_48["loss"] != at_32["loss"]  # other pixels went through the network


def test_another_input_size_needs_image_folders_and_channel_statistics(small_run, shards,
                                                                       synthetic_cifar10):
    proc = cli("evaluate", str(small_run), "--data-dir", str(synthetic_cifar10),
               "--input-size", "48")
    assert_user_error(proc, "cifar10 images are 32 px; another size applies to image folders")
    out = shards / "pixel"
    train = [a if a != "channel" else "pixel" for a in TRAIN]
    proc = cli("train", "--dataset", "shards", "--data-dir", str(shards / "shards"), *train,
               "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    (run,) = out.iterdir()
    proc = cli("evaluate", str(run), "--data-dir", str(shards / "shards"), "--input-size", "48")
    assert_user_error(proc, "per-pixel mean image of 32 px")
