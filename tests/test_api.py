"""The public Python API on a trained run: load_model, evaluate, predict; options and --help
generated from the one declaration."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import assert_same_state
from PIL import Image

import resattn
from resattn.cli import build_parser
from resattn.config import DEFAULTS, FIELDS, SECTIONS, Config
from resattn.errors import InvalidOption, UserError


def test_load_model_carries_what_inference_needs(small_run):
    model = resattn.load_model(small_run)
    meta = model.pretrained_cfg
    assert not model.training and meta["num_classes"] == 10 == len(meta["classes"])
    assert meta["classes"][3] == "cat" and meta["input_size"] == 32
    assert meta["mean"].shape == (3, 32, 32)  # the paper's per-pixel mean
    assert meta["config"]["model"] == "attention_test" and meta["weights"] in ("raw", "ema")
    raw = resattn.load_model(small_run / "last.pt", weights="raw")
    state = torch.load(small_run / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(v, state[k]) for k, v in raw.state_dict().items())
    with pytest.raises(InvalidOption, match="weights='best' is not valid"):
        resattn.load_model(small_run, weights="best")


def test_evaluate_a_model_or_a_path_alike(small_run, synthetic_cifar10):
    """Both reproduce the run's own final test score: the same test images, weights, precision
    (the run's fp32) and batch size."""
    summary = json.loads((small_run / "summary.json").read_text())
    model = resattn.load_model(small_run)
    a = resattn.evaluate(model, data_dir=str(synthetic_cifar10), amp="off", batch_size=100)
    b = resattn.evaluate(small_run, data_dir=str(synthetic_cifar10), amp="off")
    assert a["images"] == b["images"] == summary["test_images"] == 200
    assert a["top1"] == b["top1"] == summary["test_acc"]
    assert a["loss"] == pytest.approx(summary["test_loss"], rel=1e-5)
    assert sum(map(sum, a["confusion"])) == 200
    with pytest.raises(InvalidOption, match="split='train'"):
        resattn.evaluate(model, split="train")


def test_evaluate_and_predict_leave_the_callers_model_as_it_was(small_run, synthetic_cifar10):
    """Called from a training loop, they must not switch the model to eval mode, move it or
    change its memory format: they run on a copy."""
    model = resattn.load_model(small_run).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    resattn.evaluate(model, test_subset=100, data_dir=str(synthetic_cifar10))
    resattn.predict(model, [Image.new("RGB", (32, 32))], amp="off")
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) and after[k].is_contiguous() and
               after[k].device == v.device for k, v in before.items())


def test_export_a_model_from_python(small_run, tmp_path):
    """resattn.export takes a load_model model as the command takes a run (the files each
    format writes are checked through the command, test_export_matches_pytorch_on_data_images):
    a safetensors folder that load_model reads back, and the format's limits refused before
    anything is written."""
    model = resattn.load_model(small_run).train()
    done = resattn.export(model, tmp_path / "w", "safetensors")
    assert done == {"path": str(tmp_path / "w"), "format": "safetensors", "precision": "fp32"}
    back = resattn.load_model(done["path"])
    assert_same_state(back, model)
    assert back.pretrained_cfg["classes"] == model.pretrained_cfg["classes"]
    assert model.training  # the caller's model is left as it was
    with pytest.raises(InvalidOption, match="format='onnx' is not valid; int8 exports to "
                                            "TorchScript only"):
        resattn.export(model, tmp_path / "m.onnx", "onnx", int8=True)
    with pytest.raises(InvalidOption, match="opset=7 is not valid; use 11 to 20"):
        resattn.export(model, tmp_path / "m.onnx", "onnx", opset=7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


def test_predict_images_and_paths(small_run, tmp_path):
    model = resattn.load_model(small_run)
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8))
    img.save(tmp_path / "x.png")
    out = resattn.predict(model, [img, tmp_path / "x.png"], topk=3, amp="off")
    assert len(out) == 2 and [c for c, _ in out[0]] == [c for c, _ in out[1]]
    probs = [p for _, p in out[0]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6
    with pytest.raises(UserError, match="cannot identify|not an image"):
        (tmp_path / "bad.png").write_bytes(b"not a png")
        resattn.predict(model, [tmp_path / "bad.png"])


def test_train_refuses_mixed_arguments():
    with pytest.raises(UserError, match="either a Config"):
        resattn.train(Config(), epochs=1)


def test_every_option_has_a_flag_with_its_real_default():
    sub = build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {a.dest: a for a in sub._actions}
    assert set(FIELDS) <= set(flags)  # generated: none forgotten
    for key, action in flags.items():
        if key in FIELDS:
            assert action.default is None  # only typed flags override recipe and file
            if DEFAULTS[key] is not None and not isinstance(DEFAULTS[key], list):
                assert "[default " in action.help, key
    assert "[default 0.1; recipe fast: 0.2; recipe imagenet: 0.0125]" in flags["lr"].help
    assert flags["model"].choices == tuple(resattn.list_models())
    assert sorted(k for keys in SECTIONS.values() for k in keys) == sorted(FIELDS)


def test_progressive_resizing_trains_small_then_at_full_size(synthetic_cifar10, tmp_path,
                                                             monkeypatch, capsys):
    """--low-res-scale 0.75 --low-res-until 0.5: the first half of the steps see 24x24 batches,
    the rest 32x32; evaluation stays at full size."""
    from resattn.engine import loop

    real, sides = loop.resize, []

    def recording(x, scale):
        out = real(x, scale)
        sides.append(out.shape[-1])
        return out

    monkeypatch.setattr(loop, "resize", recording)
    summary, _ = resattn.train(model="attention_test", data_dir=str(synthetic_cifar10),
                               train_subset=64, val_size=100, test_subset=100, batch_size=16,
                               iterations=4, schedule="cosine", low_res_scale=0.75,
                               low_res_until=0.5, out=str(tmp_path), progress=False)
    assert sides == [24, 24, 32, 32]
    out = capsys.readouterr().out
    assert "training at 24x24 for the first 50% of the run, then at 32x32" in out
    assert summary["steps"] == 4 and 0 <= summary["test_acc"] <= 1


@pytest.mark.parametrize("tta", [False, True])
def test_the_final_evaluation_reuses_the_last_validation_and_shows_its_progress(
        synthetic_cifar10, tmp_path, monkeypatch, capsys, tta):
    """The last epoch's validation saw the final weights: the final evaluation chooses raw or
    EMA on it and reuses it; with flip TTA only the mirror images of the chosen weights are
    new, and the stitched result equals a whole TTA evaluation. Every evaluation has a bar."""
    from resattn.engine import trainer

    views = []

    def recording(model, loader, device, amp, channels_last, view, **kw):
        views.append(view)
        return log_probs(model, loader, device, amp, channels_last, view, **kw)

    log_probs, fold = trainer.log_probs, trainer.evaluation_model
    folds = []
    monkeypatch.setattr(trainer, "log_probs", recording)
    monkeypatch.setattr(trainer, "evaluation_model",
                        lambda *a: folds.append(1) or fold(*a))
    summary, run = resattn.train(model="attention_test", data_dir=str(synthetic_cifar10),
                                 train_subset=64, val_size=100, test_subset=100, batch_size=32,
                                 epochs=1, ema=True, tta=tta, amp="off", out=str(tmp_path))
    row = json.loads((run / "metrics.jsonl").read_text())
    # the epoch's raw and EMA validation, (with TTA) the chosen weights' mirror images, the test
    assert views == (["plain", "plain", "flip", "tta"] if tta else ["plain"] * 3)
    assert len(folds) == 3  # raw and EMA validated, then the chosen weights folded once
    chosen = summary["eval_weights"]
    other = "ema" if chosen == "raw" else "raw"
    key = {"raw": "val_acc", "ema": "ema_val_acc"}
    assert row[key[chosen]] >= row[key[other]]
    for split in ("val", "test"):
        again = resattn.evaluate(run, split, weights=chosen, tta=tta, test_subset=100)
        assert again["top1"] == summary[f"{split}_acc"]
        assert again["loss"] == pytest.approx(summary[f"{split}_loss"], rel=1e-5)
    if not tta:
        assert summary["val_acc"] == row[key[chosen]]
    bars = capsys.readouterr().err
    for what in ("validation", "validation (EMA)", f"final test ({chosen} weights)"):
        assert what in bars, bars[-2000:]
    assert (f"final validation, mirror images ({chosen} weights)" in bars) == tta


def test_val_every_skips_validation_but_never_after_the_last_epoch(synthetic_cifar10,
                                                                   tmp_path):
    """--val-every 2 over 3 epochs: validation after epochs 2 and 3 (the last), not after 1;
    best.pt and the final choice of weights still rest on validation."""
    summary, run = resattn.train(model="attention_test", data_dir=str(synthetic_cifar10),
                                 train_subset=64, val_size=100, test_subset=100, batch_size=32,
                                 epochs=3, schedule="cosine", ema=True, val_every=2,
                                 out=str(tmp_path), progress=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_acc"] is not None for r in rows] == [False, True, True]
    assert [r.get("ema_val_acc") is not None for r in rows] == [False, True, True]
    assert summary["best_epoch"] in (2, 3) and (run / "best.pt").exists()
    assert summary["eval_weights"] in ("raw", "ema") and summary["val_acc"] is not None


def trainer_on_cpu(cfg: Config, model, data, run_dir):
    """A Trainer wired as `resattn.train` wires it, on the CPU, without a logger."""
    from resattn.api.plan import optimization, settings
    from resattn.config import to_dict
    from resattn.engine.trainer import Records, Trainer, place_model

    device = torch.device("cpu")
    model = place_model(model, device, cfg.channels_last)
    return Trainer(model, data, optimization(cfg, model, len(data.train)),
                   settings(cfg, device, "off"), Records(run_dir, None, to_dict(cfg), {}))


@pytest.mark.parametrize("ema_tta, images", [(False, 200), (True, 500)])
def test_a_budget_says_what_evaluation_adds_and_outlasting_the_epochs_says_so(
        synthetic_cifar10, tmp_path, capsys, monkeypatch, ema_tta, images):
    """At the start, a time budget says it is training time and how much evaluation follows
    (100 val and 100 test images: raw and EMA on val, the chosen ones' mirror images, the test
    set twice under TTA); the run ends with its steps, long before a one-hour budget, and says
    how to use the rest."""
    from resattn.engine.trainer import Trainer

    monkeypatch.setattr(Trainer, "eval_speed", lambda self: images / 90.0)
    summary, _ = resattn.train(model="attention_test", data_dir=str(synthetic_cifar10),
                               train_subset=32, val_size=100, test_subset=100, batch_size=16,
                               iterations=2, time_budget=3600, ema=ema_tta, tta=ema_tta,
                               out=str(tmp_path), progress=False)
    assert summary["steps"] == 2 and summary["train_time_s"] < 3600
    out = capsys.readouterr().out
    assert (f"time budget: 3600 s of training, then about 1m 30s of evaluation ({images} "
            "images through the network)") in out
    assert "note: the run did all its 2 steps (1 epoch) in" in out
    assert "of its 3600 s budget; more epochs (or iterations)" in out


def test_the_evaluation_speed_probe_leaves_training_untouched(synthetic_cifar10, tmp_path):
    """eval_speed times the evaluation copy on a constant batch: a positive rate, the training
    model still in train mode with the same weights, the random state not drawn from."""
    cfg = Config(model="attention_test", data_dir=str(synthetic_cifar10),
                 train_subset=32, val_size=100, test_subset=100, batch_size=16)
    data = resattn.api.load_data(cfg, torch.device("cpu"), progress=False)
    model = resattn.create_model("attention_test", num_classes=10).train()
    trainer = trainer_on_cpu(cfg, model, data, tmp_path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    assert trainer.eval_speed(size=4) > 0
    assert model.training and torch.equal(torch.get_rng_state(), rng)
    assert_same_state(model.state_dict(), before)


def test_model_info_reads_the_shipped_table_and_counts_other_shapes_live():
    """A registered architecture at its own input size is looked up; another mask branch or
    input size is counted on the meta device. Both agree with a live count."""
    from resattn.api.build import model_info
    from resattn.models import count_flops, count_params, create_model

    def live(name: str, size: int, **options) -> dict[str, int]:
        with torch.device("meta"):
            model = create_model(name, num_classes=10, **options)
        return {"params": count_params(model), "flops": count_flops(model, size)}

    registered = live("attention_test", 32)
    assert model_info(Config(model="attention_test"), 10, 32) == registered
    other = model_info(Config(model="attention_test", mask="local"), 10, 32)
    assert other == live("attention_test", 32, mask="local") != registered
    assert model_info(Config(model="attention_test"), 10, 48) == live("attention_test", 48)


def test_plot_draws_the_curves_of_a_run_as_the_command_does(small_run, tmp_path):
    out = resattn.plot(small_run, tmp_path / "minutes.png", x="time")
    assert out == tmp_path / "minutes.png" and out.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(InvalidOption, match="choose one of epoch, time"):
        resattn.plot(small_run, tmp_path / "x.png", x="steps")
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(UserError, match="not found; pass a run directory"):
        resattn.plot(tmp_path)


def test_one_collective_per_step_under_torchrun_with_a_budget(synthetic_cifar10, tmp_path,
                                                               monkeypatch):
    """With a time budget under torchrun, a step's learning rate, batch side and stop read one
    clock, agreed in the step's one all-reduce (the slowest rank's time): here a fake second
    rank 45 s into a 60 s budget sets the schedule, and at 61 s stops every rank."""
    from resattn.engine import trainer as trainer_module
    from resattn.engine.distributed import DistInfo

    cfg = Config(model="attention_test", data_dir=str(synthetic_cifar10), train_subset=32,
                 val_size=100, test_subset=100, batch_size=16, time_budget=60.0,
                 low_res_scale=0.5, low_res_until=0.7, schedule="cosine", epochs=100)
    data = resattn.api.load_data(cfg, torch.device("cpu"), progress=False)
    model = resattn.create_model("attention_test", num_classes=10)
    trainer = trainer_on_cpu(cfg, model, data, tmp_path)
    trainer.dist = DistInfo(rank=0, world_size=2)
    calls, other_rank = [], [45.0]

    def fake_all_reduce(tensor, op="sum"):
        calls.append(op)
        if tensor.numel() == 3:  # [stop requested, steps done, seconds]
            tensor[2] = max(float(tensor[2]), other_rank[0])
        return tensor

    monkeypatch.setattr(trainer_module, "all_reduce", fake_all_reduce)
    step = 1
    lr, side = trainer.lr_at(step), trainer.scale_at(step)
    assert not trainer.should_stop(steps_left=10_000, first_step=0)
    assert calls == ["max"]  # one collective for the whole step
    assert trainer.clock == 45.0
    assert trainer.scale_at(step + 1) == 1.0  # 75% of the budget: past low_res_until
    assert trainer.lr_at(step + 1) == pytest.approx(trainer.base_lr *
                                                    trainer.schedule(45.0 / 60.0))
    assert (lr, side) != (trainer.lr_at(step + 1), trainer.scale_at(step + 1))
    other_rank[0] = 61.0
    assert trainer.should_stop(steps_left=10_000, first_step=0) and len(calls) == 2


def test_evaluate_reads_only_the_split_it_evaluates(small_run, synthetic_cifar10, monkeypatch):
    """The test split is one CIFAR file of six: evaluate reads that one, builds no training
    loader and summarises no training images (the checkpoint's mean and std are used); the
    validation split reads the training files it was held out of. Same numbers as before."""
    from resattn.data import build, cifar

    read, summarised = [], []
    real_read, real_stats = cifar.read_records, build.image_stats
    monkeypatch.setattr(cifar, "read_records",
                        lambda path, *a, **k: read.append(path.name) or real_read(path, *a, **k))
    monkeypatch.setattr(build, "image_stats",
                        lambda *a, **k: summarised.append(1) or real_stats(*a, **k))
    summary = json.loads((small_run / "summary.json").read_text())
    test = resattn.evaluate(small_run, "test", weights=summary["eval_weights"])
    assert read == ["test_batch.bin"] and not summarised
    assert test["top1"] == summary["test_acc"]
    read.clear()
    val = resattn.evaluate(small_run, "val", weights=summary["eval_weights"])
    assert "test_batch.bin" not in read and len(read) == 5 and not summarised
    assert val["top1"] == summary["val_acc"]


def test_build_data_builds_only_the_asked_splits(synthetic_cifar10):
    from resattn.data import DataConfig, build_data

    cfg = DataConfig(data_dir=str(synthetic_cifar10), val_size=100)
    full = build_data(cfg, batch_size=50, device="cpu", progress=False)
    only = build_data(cfg, batch_size=50, device="cpu", progress=False, splits=("test",),
                      stats=(full.mean, full.std))
    assert only.train is None and only.val is None and only.test is not None
    assert only.info["test_size"] == full.info["test_size"] and only.classes == full.classes
    for (a, la), (b, lb) in zip(full.test, only.test):
        assert torch.equal(a, b) and torch.equal(la, lb)
    alone = build_data(cfg, batch_size=50, device="cpu", progress=False, splits=("test",))
    assert torch.equal(alone.mean, full.mean)  # no statistics given: the training images'
    with pytest.raises(InvalidOption, match="choose from train, val, test"):
        build_data(cfg, batch_size=50, device="cpu", progress=False, splits=("holdout",))


def test_each_option_role_is_declared_once_on_the_config():
    """The architecture, neutral and resumable sets come from the options' declarations: the
    model is built from exactly the architecture options (and dropout), every neutral option
    but the output folder may change on resume, and no architecture option may."""
    from resattn.api.build import model_options
    from resattn.config import ARCHITECTURE, NEUTRAL, RESUMABLE

    assert set(model_options(Config(drop_rate=0.1))) == {*ARCHITECTURE, "drop_rate"} - {"model"}
    assert set(NEUTRAL) - set(RESUMABLE) == {"out"}
    assert not set(ARCHITECTURE) & (set(RESUMABLE) | set(NEUTRAL))
    assert {"epochs", "time_budget", "device"} <= set(RESUMABLE) and "lr" not in RESUMABLE


def test_grad_checkpointing_trains_the_same_run(synthetic_cifar10, tmp_path):
    """--grad-checkpointing changes memory, not numbers: the same seed gives the same losses."""
    runs = []
    for checkpointing in (False, True):
        summary, run = resattn.train(model="attention_test", data_dir=str(synthetic_cifar10),
                                     train_subset=64, val_size=100, test_subset=100,
                                     batch_size=16, iterations=3, seed=5, amp="off",
                                     grad_checkpointing=checkpointing,
                                     out=str(tmp_path / str(checkpointing)), progress=False)
        runs.append(summary)
        assert f"grad_checkpointing = {str(checkpointing).lower()}" in \
            (run / "config.toml").read_text()
    assert runs[1]["train_loss"] == pytest.approx(runs[0]["train_loss"], rel=1e-5)
    assert runs[1]["val_loss"] == pytest.approx(runs[0]["val_loss"], rel=1e-4)
