"""The ImageNet recipe's dry runs on a synthetic 1000-class tree of ImageNet-sized JPEGs (one
process from the folder; two torchrun processes from shards), and exact resume of a 2-process
run from shards."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from ..conftest import spawn
from ..synthetic_data import imagenet_like_tree
from .test_shards_cmd import tiny_tree

pytestmark = pytest.mark.slow  # spawns processes, 224 px networks of 30-50M parameters


def torchrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", "-m", "resattn", *args],
                          capture_output=True, text=True, timeout=1800)


def summary(out):
    (run,) = out.iterdir()
    return run, json.loads((run / "summary.json").read_text())


@pytest.fixture(scope="module")
def synthetic_imagenet(tmp_path_factory):
    return imagenet_like_tree(tmp_path_factory.mktemp("imagenet"), classes=1000, per_class=2)


DRY = ["--recipe", "imagenet", "--model", "attention92_imagenet", "--val-size", "100",
       "--no-progress"]


def test_dry_run_of_the_imagenet_recipe(synthetic_imagenet, tmp_path):
    proc = spawn("train", *DRY, "--data-dir", str(synthetic_imagenet), "--iterations", "5",
                 "--batch-size", "8", "--workers", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run, s = summary(tmp_path)
    assert (s["model"], s["dataset"], s["steps"], s["world_size"]) == \
        ("attention92_imagenet", "folder", 5, 1)
    assert s["lr"] == pytest.approx(0.0125) and s["val_images"] == 100
    ckpt = torch.load(run / "last.pt", weights_only=False, map_location="cpu")
    assert ckpt["input_size"] == 224 and ckpt["mean"].shape == (3, 1, 1)
    # tested at 320 px as the paper tests Attention-92
    proc = spawn("evaluate", str(run), "--split", "val", "--input-size", "320", "--json",
                 "--amp", "off")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert (result["input_size"], result["images"]) == (320, 100)


def test_dry_run_from_shards_on_two_processes(synthetic_imagenet, tmp_path):
    shards = tmp_path / "shards"
    proc = spawn("data", "shard", str(synthetic_imagenet), str(shards), "--shard-size", "200",
                 "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train 2000 images in 10 shards, 1000 classes" in proc.stdout
    proc = torchrun("train", *DRY, "--dataset", "shards", "--data-dir", str(shards),
                    "--iterations", "3", "--batch-size", "4", "--workers", "1",
                    "--out", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, s = summary(tmp_path / "runs")
    assert (s["dataset"], s["steps"], s["world_size"], s["global_batch_size"]) == \
        ("shards", 3, 2, 8)
    assert s["lr"] == pytest.approx(0.025)  # linear scaling: 0.0125 per process


SMALL = ["--model", "attention_test", "--input-size", "32", "--val-size", "12",
         "--batch-size", "8", "--workers", "1", "--no-progress", "--amp", "off",
         "--normalization", "channel", "--lr", "0.01", "--schedule", "step", "--seed", "2",
         "--device", "cpu"]


def test_two_process_run_from_shards_resumes_exactly(tmp_path):
    tree = tiny_tree(tmp_path / "images", per_class=40)
    shards = tmp_path / "shards"
    proc = spawn("data", "shard", str(tree), str(shards), "--shard-size", "12", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    data = ["--dataset", "shards", "--data-dir", str(shards)]
    whole = torchrun("train", *SMALL, *data, "--epochs", "2", "--out", str(tmp_path / "a"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    first = torchrun("train", *SMALL, *data, "--epochs", "1", "--out", str(tmp_path / "b"))
    assert first.returncode == 0, first.stderr[-3000:]
    run_b, _ = summary(tmp_path / "b")
    resumed = torchrun("train", "--resume", str(run_b), "--epochs", "2", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run_a, s = summary(tmp_path / "a")
    # 108 training images in 10 shards, dealt to 2 processes: about 54 each, batches of 8
    assert s["world_size"] == 2 and s["steps"] in (10, 12)
    a = torch.load(run_a / "last.pt", weights_only=True)["model"]
    b = torch.load(run_b / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
