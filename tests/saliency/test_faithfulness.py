"""`resattn.faithfulness` and `resattn explain` end to end on a trained checkpoint of the
synthetic CIFAR-10: every method's curves, a reproducible report, the files it writes, and
one-line errors for a missing Captum and an --out that is a file."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from conftest import assert_user_error, cli

import resattn
from resattn.errors import UserError


def test_every_method_gets_curves_and_the_report_is_reproducible(small_run, synthetic_cifar10):
    pytest.importorskip("captum")
    options = dict(images=12, steps=4, batch_size=5, data_dir=str(synthetic_cifar10))
    report = resattn.faithfulness(small_run, **options)
    stages = {n.split(".")[0] for n, _ in resattn.load_model(small_run).attention_modules()}
    assert list(report.deletion) == ["mask", *sorted(f"mask.{s}" for s in stages), "gradcam",
                                     "occlusion", "random"]
    for curves in (*report.deletion.values(), *report.insertion.values()):
        assert curves.shape == (12, 5) and bool(((curves >= 0) & (curves <= 1)).all())
    # the three batches (5, 5, 2) were joined in order: one image's curves start at its own
    # probability of the predicted class, the same for every method
    start = report.deletion["random"][:, 0]
    assert all(torch.equal(c[:, 0], start) for c in report.deletion.values())
    assert report.images == 12 and 0 <= report.top1 <= 1

    again = resattn.faithfulness(small_run, **options)
    assert again.scores() == report.scores()
    rows = {r["method"]: r for r in report.scores()}
    assert "deletion_vs_random" not in rows["random"]
    low, mean, high = (rows["mask"]["deletion"][i] for i in (1, 0, 2))
    assert low <= mean <= high


def test_explain_writes_the_report_and_prints_the_table(small_run, synthetic_cifar10, tmp_path):
    out = tmp_path / "report"
    proc = cli("explain", str(small_run), "--images", "6", "--steps", "3", "--methods", "mask",
               "--data-dir", str(synthetic_cifar10), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "| method | deletion AUC" in proc.stdout and "| random |" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "faithfulness.json", "faithfulness.md", "faithfulness_curves.png", "saliency_maps.png"]
    saved = json.loads((out / "faithfulness.json").read_text())
    assert saved["images"] == 6 and {r["method"] for r in saved["scores"]} >= {"mask", "random"}
    assert len(saved["mean_curves"]["deletion"]["mask"]) == 4

    as_json = cli("explain", str(small_run), "--images", "6", "--steps", "3", "--methods",
                  "mask", "--data-dir", str(synthetic_cifar10), "--json")
    assert json.loads(as_json.stdout)["scores"] == saved["scores"]


def test_no_progress_hides_the_bar_and_changes_nothing_else(small_run, synthetic_cifar10):
    args = ("explain", str(small_run), "--images", "4", "--steps", "2", "--methods", "mask",
            "--data-dir", str(synthetic_cifar10))
    shown, hidden = cli(*args), cli(*args, "--no-progress")
    assert shown.returncode == hidden.returncode == 0, hidden.stderr
    assert "explain:" in shown.stderr and "explain:" not in hidden.stderr
    assert hidden.stdout == shown.stdout


def test_an_out_that_is_a_file_is_refused_and_left_alone(small_run, synthetic_cifar10,
                                                         tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    proc = cli("explain", str(small_run), "--images", "2", "--methods", "mask",
               "--data-dir", str(synthetic_cifar10), "--out", str(target))
    assert_user_error(proc, "is a file")
    assert target.read_text() == "keep me"


def test_without_captum_gradcam_says_how_to_install_it(small_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "captum", None)  # `import captum` now fails
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    with pytest.raises(UserError, match=r"pip install 'resattn\[explain\]'"):
        resattn.faithfulness(small_run, images=2, methods=["mask", "gradcam"])
