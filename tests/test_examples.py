"""The example scripts users run: `examples/after_training.py` (the second half of `make run`)."""

from __future__ import annotations

import json
import runpy
import shutil
import sys

from conftest import ROOT

import resattn


def test_after_training_draws_the_newest_finished_runs_curves_and_masks(
        small_run, synthetic_cifar10, tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    run = runs / small_run.name
    shutil.copytree(small_run, run)
    (runs / "20990101-000000_unfinished").mkdir()  # newer, but without a summary: not chosen
    example = runpy.run_path(str(ROOT / "examples" / "after_training.py"))
    monkeypatch.setattr(sys, "argv", ["after_training.py", str(runs)])
    assert example["main"]() == 0
    assert (run / "curves.png").stat().st_size > 0
    assert sorted(p.name for p in (run / "masks").glob("*.png")) == \
        [f"test{i:04d}_masks.png" for i in range(4)]
    # each input in a folder named after its true class, as the picture's title says
    classes = resattn.load_model(run).pretrained_cfg["classes"]
    inputs = sorted((run / "masks" / "inputs").rglob("*.png"), key=lambda p: p.name)
    assert [p.name for p in inputs] == [f"test{i:04d}.png" for i in range(4)]
    assert all(p.parent.name in classes for p in inputs)
    summary = json.loads((run / "summary.json").read_text())
    out = capsys.readouterr().out
    assert f"test accuracy {summary['test_acc']:.2%}" in out and f"run directory:   {run}" in out

    monkeypatch.setattr(sys, "argv", ["after_training.py", str(tmp_path / "nothing")])
    assert example["main"]() == 2
    assert "no finished run" in capsys.readouterr().err
