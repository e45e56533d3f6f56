"""`resattn train` / `resattn evaluate` end to end: on the synthetic CIFAR-10 in this process,
and on the real one in fresh processes that are killed and resumed (the slow tier)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import HANG, SYNTHETIC_RUN, assert_same_state, assert_user_error, cli, spawn
from conftest import SMALL_RUN as SMALL

import resattn
from resattn.cli import main
from resattn.models.stats import model_stats


def only_run_dir(out: Path) -> Path:
    runs = list(out.iterdir())
    assert len(runs) == 1
    return runs[0]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def assert_same_weights(a: Path, b: Path) -> None:
    assert_same_state(weights(a), weights(b))


@pytest.mark.slow
def test_short_run_learns_and_writes_its_run_directory(cifar10_dir, tmp_path, capsys):
    # no wall-clock limit here: benchmarks/cpu_short_run.py measures speed
    out = tmp_path / "runs"
    code = main(["train", "--model", "attention56", "--data-dir", str(cifar10_dir),
                 "--train-subset", "2000", "--val-size", "500", "--test-subset", "1000",
                 "--epochs", "3", "--batch-size", "64", "--schedule", "onecycle", "--lr", "0.2",
                 "--warmup", "0.5", "--label-smoothing", "0.1", "--out", str(out),
                 "--no-progress", "--amp", "off"])
    assert code == 0
    run = only_run_dir(out)
    assert run.name.endswith("_attention56_cifar10")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["val_acc"] >= 0.25, summary  # chance is 0.10 (+-1.3% over 500 images)
    for key in ("model", "dataset", "params", "flops", "epochs", "steps", "train_time_s",
                "train_acc", "train_loss", "val_acc", "val_loss", "test_acc", "test_loss"):
        assert summary[key] is not None, key
    assert summary["steps"] == 3 * (2000 // 64)
    assert summary["params"] == model_stats("attention56")["params"]
    assert summary["test_images"] == 1000 and summary["val_images"] == 500
    assert summary["amp"] == "off"
    env = summary["environment"]  # what made the figures: versions, device, threads, date
    assert env["resattn"] == resattn.__version__ and env["torch"] == torch.__version__
    assert env["threads"] == torch.get_num_threads() and "threads" in env["device_name"]
    assert env["date"].startswith("20") and env["python"].count(".") == 2
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert {"epoch", "step", "lr", "train_loss", "train_acc", "val_loss", "val_acc",
            "images_per_s", "epoch_s"} <= set(rows[0])
    assert (run / "config.toml").read_text().count("[optim]") == 1
    assert {"last.pt", "best.pt"} <= {p.name for p in run.iterdir()}
    printed = capsys.readouterr().out
    assert "| val error " in printed and "| train time " in printed

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "val/val_acc" in tags and "step/lr" in tags
    assert [e.value for e in events.Scalars("val/val_acc")] == pytest.approx(
        [r["val_acc"] for r in rows])

    # evaluate rebuilds the model from the checkpoint alone and agrees with the run
    assert main(["evaluate", str(run / "last.pt"), "--data-dir", str(cifar10_dir), "--amp",
                 "off", "--json", "--test-subset", "1000"]) == 0  # the run's own subset
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 1000
    assert result["top1"] == pytest.approx(summary["test_acc"], abs=1e-9)
    assert len(result["per_class"]) == 10 and result["top5"] >= result["top1"]
    assert main(["evaluate", str(run), "--split", "val", "--data-dir", str(cifar10_dir),
                 "--json", "--tta"]) == 0
    val = json.loads(capsys.readouterr().out)
    assert val["images"] == 500 and val["tta"] is True


def interrupted_at(step: int, signal_name: str, args: list[str]) -> subprocess.CompletedProcess:
    """`resattn ARGS` sent SIGNAL right after its `step`-th training step, on any machine."""
    env = {**os.environ, "RESATTN_SIGNAL_AT_STEP": f"{step}:{signal_name}"}
    return subprocess.run([sys.executable, "-m", "resattn", *args], capture_output=True,
                          text=True, env=env, timeout=HANG)


STEPS_PER_EPOCH = 384 // 64  # SMALL: --train-subset 384 --batch-size 64


@pytest.mark.slow
def test_sigkill_after_an_epoch_then_resume_is_exact(cifar10_dir, tmp_path, real_run):
    out = tmp_path / "runs"
    killed = interrupted_at(STEPS_PER_EPOCH + 2, "SIGKILL",
                            ["train", *SMALL, "--data-dir", str(cifar10_dir), "--out", str(out)])
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run = only_run_dir(out)
    state = torch.load(run / "last.pt", weights_only=True)  # the end of epoch 1
    assert (state["epoch"], state["batch"], state["step"]) == (1, 0, STEPS_PER_EPOCH)
    assert not (run / "summary.json").exists()
    resumed = spawn("train", "--resume", str(run), "--data-dir", str(cifar10_dir),
                    "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(run / "last.pt", real_run / "last.pt")
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]


@pytest.mark.slow
def test_ctrl_c_saves_mid_epoch_and_resume_is_exact(cifar10_dir, tmp_path, real_run):
    out = tmp_path / "runs"
    # Ctrl-C after the third step of the second epoch
    proc = interrupted_at(STEPS_PER_EPOCH + 3, "SIGINT",
                          ["train", *SMALL, "--data-dir", str(cifar10_dir), "--out", str(out)])
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and "--resume" in proc.stdout
    run = only_run_dir(out)
    state = torch.load(run / "last.pt", weights_only=True)
    assert (state["epoch"], state["batch"], state["step"]) == (1, 3, STEPS_PER_EPOCH + 3)
    resumed = spawn("train", "--resume", str(run), "--data-dir", str(cifar10_dir),
                    "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(run / "last.pt", real_run / "last.pt")


def test_ctrl_c_in_this_process_saves_mid_epoch_and_resume_is_exact(synthetic_cifar10,
                                                                    tmp_path, small_run,
                                                                    monkeypatch):
    """The shared run again, with Ctrl-C after step 2 of epoch 2 (4 steps an epoch): the run
    saves that step, exits 130, and the resumed run ends with the same weights."""
    from resattn.engine.stop_hook import ENV, StepSignal

    monkeypatch.setattr(StepSignal, "steps", 0)  # the hook counts the process's steps
    monkeypatch.setenv(ENV, "6:SIGINT")
    out = tmp_path / "runs"
    proc = cli("train", *SYNTHETIC_RUN, "--data-dir", str(synthetic_cifar10), "--out", str(out),
               "--log-every", "1")
    monkeypatch.delenv(ENV)
    assert proc.returncode == 130, proc.stderr
    assert "--resume" in proc.stdout
    run = only_run_dir(out)
    state = torch.load(run / "last.pt", weights_only=True)
    assert (state["epoch"], state["batch"], state["step"]) == (1, 2, 6)
    with open(run / "steps.jsonl", "a") as f:  # as if logged after the checkpoint, then killed
        f.write(json.dumps({"step": 7, "epoch": 1.75, "lr": 1.0, "loss": 9.0}) + "\n")
    resumed = cli("train", "--resume", str(run), "--data-dir", str(synthetic_cifar10))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(run / "last.pt", small_run / "last.pt")
    # every step logged once, the one after the checkpoint replaced by its rerun
    steps = [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps] == list(range(1, 9)) and steps[6]["loss"] != 9.0
    assert [r["epoch"] for r in steps] == [s / 4 for s in range(1, 9)]
    assert all(r["elapsed_s"] > 0 and r["lr"] >= 0 and 0 <= r["acc"] <= 1 for r in steps)


def test_resume_with_another_model_is_refused(small_run):
    before = (small_run / "last.pt").read_bytes()
    proc = cli("train", "--resume", str(small_run), "--model", "attention92")
    assert_user_error(proc, "resattn train: error: resume: the checkpoint's run has "
                      "model='attention_test', not 'attention92'; drop --model or start a new "
                      "run")
    assert (small_run / "last.pt").read_bytes() == before


@pytest.mark.parametrize("args,message", [
    (["--model", "attention57"], "invalid choice: 'attention57'"),
    (["--dataset", "mnist"], "invalid choice: 'mnist'"),
    (["--optimizer", "lion"], "invalid choice: 'lion'"),
    (["--schedule", "linear"], "invalid choice: 'linear'"),
    (["--lr", "0"], "--lr 0.0 is not valid"),
    (["--lr", "-1"], "--lr -1.0 is not valid"),
    (["--batch-size", "0"], "--batch-size 0 is not valid"),
    (["--epochs", "-2"], "--epochs -2 is not valid"),
    (["--epochs", "0"], "--epochs 0 is not valid"),
    (["--config", "/nonexistent/x.toml"], "config file /nonexistent/x.toml not found"),
    (["--recipe", "slow"], "invalid choice: 'slow'"),
    (["--data-dir", "/nonexistent/data"], "data folder /nonexistent/data does not exist"),
    (["--device", "cuda"], "no CUDA device is available"),
    (["--lr", "inf"], "--lr inf is not valid; it must be a finite number"),
    (["--weight-decay", "nan"], "--weight-decay nan is not valid; it must be a finite number"),
    (["--amp", "bf16:x"], "invalid choice: 'bf16:x'"),
    (["--split-seed", "-1"], "--split-seed -1 is not valid"),
    (["--gamma", "-1"], "--gamma -1.0 is not valid; it must be in (0, 1]"),
    (["--seed", "99999999999999999999"],
     "--seed 99999999999999999999 is not valid; it must be in [0, 2**63)"),
    (["--split-seed", str(2**63)], f"--split-seed {2**63} is not valid"),
    (["--dataset", "folder", "--input-size", "-1"], "--input-size -1 is not valid"),
])
def test_bad_input_is_one_line_error(tmp_path, args, message, capsys):
    with pytest.raises(SystemExit, match="^2$") if "invalid choice" in message else \
            contextlib.nullcontext():
        assert main(["train", "--out", str(tmp_path / "runs"), *args]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "runs").exists()


def test_no_network_and_no_data(tmp_path, monkeypatch):
    from resattn.data import cifar

    unreachable = "http://127.0.0.1:9/cifar-10-binary.tar.gz"  # a closed port: refused at once
    monkeypatch.setitem(cifar.SOURCES, "cifar10", cifar.CifarSource(
        **{**cifar.CIFAR10.__dict__, "url": unreachable}))
    monkeypatch.setenv("RESATTN_DATA_DIR", str(tmp_path))
    proc = cli("train", "--out", str(tmp_path / "runs"), "--no-progress")
    assert_user_error(proc, "put cifar-10-binary.tar.gz")
    assert "cannot be downloaded" in proc.stderr and not (tmp_path / "runs").exists()


def test_non_finite_loss_stops_with_a_message(synthetic_cifar10, tmp_path):
    proc = cli("train", *SYNTHETIC_RUN, "--data-dir", str(synthetic_cifar10), "--out",
               str(tmp_path), "--lr", "1e30", "--log-every", "1", "--epochs", "1")
    assert_user_error(proc, "non-finite")
    run = only_run_dir(tmp_path)
    assert not (run / "last.pt").exists() and not (run / "summary.json").exists()


@pytest.mark.parametrize("args,message", [
    (["--amp", "fp32"], "--amp 'fp32' is not valid; choose one of auto, bf16, fp16, off"),
])
def test_evaluate_bad_precision_or_device(small_run, args, message):
    proc = cli("evaluate", str(small_run), *args)
    assert_user_error(proc, message)


def test_checkpoints_follow_the_umask(small_run):
    mask = os.umask(0)
    os.umask(mask)
    for name in ("last.pt", "best.pt"):
        assert (small_run / name).stat().st_mode & 0o777 == 0o666 & ~mask


def test_stop_inside_an_epoch_records_where_it_stopped(synthetic_cifar10, tmp_path):
    """6 steps of 4 per epoch: the run stands at epoch 1, batch 2 (not "2 epochs done"), and a
    resume to 9 steps trains exactly the 3 missing ones, skipping no data."""
    proc = cli("train", *SYNTHETIC_RUN, "--iterations", "6", "--data-dir",
               str(synthetic_cifar10), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    run = only_run_dir(tmp_path)
    state = torch.load(run / "last.pt", weights_only=True)
    assert (state["epoch"], state["batch"], state["step"]) == (1, 2, 6)
    resumed = cli("train", "--resume", str(run), "--iterations", "9", "--data-dir",
                  str(synthetic_cifar10), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    state = torch.load(run / "last.pt", weights_only=True)
    assert (state["epoch"], state["batch"], state["step"]) == (2, 1, 9)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 9
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all(r["train_loss"] > 0 for r in rows)
