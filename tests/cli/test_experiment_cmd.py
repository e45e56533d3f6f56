"""`resattn experiment`: suites as data, planning, a tiny suite end to end with interruption."""

from __future__ import annotations

import json
import os
import re

import pytest
import torch
from conftest import assert_user_error, cli, spawn
from PIL import Image

from resattn.engine.stop_hook import ENV, StepSignal
from resattn.errors import UserError
from resattn.experiment import load_suite, parse_budget, plan, suite_names

TINY = """
description = "tiny test suite"
source = "made-up references"

[base]
model = "{model}"
train_subset = 64
val_size = 100
test_subset = 100
batch_size = 32
eval_batch_size = 100
epochs = 2
warmup = 0.5
amp = "off"

[[runs]]
name = "arl"
residual = "arl"
reference = 50.0

[[runs]]
name = "nal"
residual = "nal"
reference = 55.0
"""


def test_shipped_suites_parse_and_plan(tmp_path):
    assert {"arl-vs-nal", "attention-type", "mask-type", "label-noise", "depth",
            "seed-table"} <= set(suite_names())
    for name in suite_names():
        suite = load_suite(name)
        planned = plan(suite, tmp_path, "fast", parse_budget("epochs:1"), 1, {})
        assert len(planned) == len(suite.runs)
        assert all(p.cfg.epochs == 1 and p.cfg.iterations == 0 for p in planned)
    arl = load_suite("arl-vs-nal")
    refs = {r["name"]: r["reference"] for r in arl.runs}
    assert refs["attention164-nal"] == 7.18 and refs["attention56-arl"] == 5.52
    # the same configuration in two suites is one run directory
    mixed = plan(load_suite("attention-type"), tmp_path, "fast", {}, 1, {})[0]
    arl56 = plan(arl, tmp_path, "fast", {}, 1, {})[0]
    assert mixed.run_dir == arl56.run_dir
    depth = plan(load_suite("depth"), tmp_path, "fast", {}, 2, {})
    assert len(depth) == 16 and {p.cfg.dataset for p in depth} == {"cifar10", "cifar100"}


@pytest.mark.parametrize("budget", ["minutes:3", "seconds:-1", "epochs:1.5", "epochs"])
def test_bad_budget(budget):
    with pytest.raises(UserError, match="--budget"):
        parse_budget(budget)


def test_bad_suite_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[runs]]\nname = 'x'\nlearning_rate = 1\n")
    with pytest.raises(UserError, match="unknown keys learning_rate"):
        load_suite(str(bad))
    with pytest.raises(UserError, match="unknown suite 'nope'"):
        load_suite("nope")


@pytest.mark.parametrize("text,message", [
    ("[[runs]]\nname = 'a'\n[[runs]]\nname = 'a'\n", "two runs are named 'a'"),
    ("[[runs]]\nname = 'a'\nreference = 'five'\n", "reference 'five' must be a number"),
    ("runs = [1, 2]\n", "runs must be tables"),
    ("base = 5\n[[runs]]\nname = 'a'\n", "base must be a table"),
])
def test_malformed_suites_are_refused_before_training(tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(UserError, match=message):
        load_suite(str(bad))
    proc = cli("experiment", str(bad), "--dry-run", "--out", str(tmp_path / "exp"))
    assert_user_error(proc)
    assert not (tmp_path / "exp").exists()



@pytest.mark.parametrize("where", ["this process", pytest.param("a fresh process",
                                                                  marks=pytest.mark.slow)])
def test_tiny_suite_end_to_end_with_interruption(where, tmp_path, monkeypatch, request):
    """Ctrl-C in the second of two runs, then the same command again: the finished run is
    reused, the interrupted one resumed, and the suite's tables, chart and run directories are
    written. In this process on the synthetic CIFAR-10; in a fresh process on the real one."""
    here = where == "this process"
    data = request.getfixturevalue("synthetic_cifar10" if here else "cifar10_dir")
    model = "attention_test" if here else "attention56"
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace("{model}", model))
    out = tmp_path / "exp"
    common = ["experiment", str(suite), "--out", str(out), "--data-dir", str(data),
              "--recipe", "fast", "--no-progress", "--set", "log_every=1"]
    dry = cli(*common, "--dry-run")
    assert dry.returncode == 0 and dry.stdout.count("todo") == 2
    # Ctrl-C after the first step of the second run (each run: 2 epochs of 64 // 32 steps)
    signal_at = f"{2 * 64 // 32 + 1}:SIGINT"
    if here:
        monkeypatch.setattr(StepSignal, "steps", 0)  # the hook counts the process's steps
        monkeypatch.setenv(ENV, signal_at)
        proc = cli(*common)
        monkeypatch.delenv(ENV)
    else:
        proc = spawn(*common, env={**os.environ, ENV: signal_at})
    assert proc.returncode == 130, proc.stderr
    assert "rerun the same command" in proc.stdout
    status = cli(*common, "--dry-run").stdout
    assert status.count("done") == 1 and status.count("partial") == 1
    again = cli(*common)
    assert again.returncode == 0, again.stderr
    assert ": done (" in again.stdout and ": partial (" in again.stdout
    results = (out / "tiny" / "results.md").read_text()
    assert f"| arl | {model} | 50.00 |" in results and f"| nal | {model} | 55.00 |" in results
    assert f"torch {torch.__version__}" in results  # provenance: versions, and the threads
    assert re.search(r" \d+ threads?\b", results), results  # "1 thread" on a one-core machine
    hardware = next(line for line in results.splitlines() if line.startswith("- **hardware**"))
    assert len(re.findall(r" \d+ threads?\b", hardware)) == 1, hardware
    rows = json.loads((out / "tiny" / "results.json").read_text())["rows"]
    assert all(r["seeds"] == 1 and r["test_error"] is not None for r in rows)
    with Image.open(out / "tiny" / "chart.png") as img:
        assert img.format == "PNG" and img.size[0] >= 600
    # every run is a normal run directory that evaluate accepts
    run_dir = json.loads((out / "tiny" / "results.json").read_text())["runs"]["nal/seed0"]
    ev = cli("evaluate", run_dir, "--data-dir", str(data), "--json", "--test-subset", "100")
    assert ev.returncode == 0 and json.loads(ev.stdout)["images"] == 100

    # the saliency maps of every finished run, one table; kept and reused when asked again
    explained = cli(*common, "--explain", "4", "--methods", "mask")
    assert explained.returncode == 0, explained.stderr
    assert explained.stdout.count("explaining 4 images") == 2
    table = (out / "tiny" / "faithfulness.md").read_text()
    for run in ("arl", "nal"):
        assert f"| {run} | 0 | " in table and " | mask.stage1 | " in table
    assert table.count(" | random | ") == 2 and "Not trained yet" not in table
    reused = cli(*common, "--explain", "4", "--methods", "mask")
    assert reused.returncode == 0 and "explaining" not in reused.stdout
    assert (out / "tiny" / "faithfulness.md").read_text() == table


def test_explaining_a_suite_before_training_it_names_the_missing_runs(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace("{model}", "attention_test"))
    proc = cli("experiment", str(suite), "--out", str(tmp_path / "exp"), "--explain", "4")
    assert proc.returncode == 0, proc.stderr
    assert "Not trained yet" in proc.stdout and "arl (seed 0), nal (seed 0)" in proc.stdout


def test_set_seed_is_the_first_seed_and_seeds_share_the_split(tmp_path):
    suite = load_suite("arl-vs-nal")
    planned = plan(suite, tmp_path, "fast", {}, 2, {"seed": 5})
    first = [p for p in planned if p.suite_run == suite.runs[0]["name"]]
    assert [p.seed for p in first] == [5, 6] and [p.cfg.seed for p in first] == [5, 6]
    assert {p.cfg.split_seed for p in planned} == {0}  # every seed validates on the same images


def test_differences_within_the_seed_spread_are_marked():
    from resattn.experiment import compare

    base = {"name": "arl", "test_error": (5.0, 0.3), "seeds": 3}
    assert compare({"test_error": (5.2, 0.2), "seeds": 3}, base) == "+0.20 (within noise)"
    assert compare({"test_error": (6.0, 0.2), "seeds": 3}, base) == "+1.00"
    assert compare({"test_error": (6.0, 0.0), "seeds": 1}, base) == "+1.00 (one seed)"
    assert compare({"test_error": None, "seeds": 0}, base) == "-"


@pytest.mark.parametrize("seeds", ["0", "100000000"])
def test_a_seed_count_out_of_bounds_is_refused_at_once(seeds, tmp_path):
    proc = cli("experiment", "arl-vs-nal", "--dry-run", "--seeds", seeds, "--out",
               str(tmp_path / "exp"))
    assert_user_error(proc, f"--seeds {seeds} is not valid; it must be in [1, 1000]")
    assert not (tmp_path / "exp").exists()
