"""Schedules, parameter groups, EMA, configuration layering and checkpoint I/O."""

from __future__ import annotations

import math

import pytest
import torch

from resattn import create_model
from resattn.api.plan import make_plan, make_schedule
from resattn.config import Config, from_dict, load_recipe, recipe_names, resolve, to_toml
from resattn.engine.checkpoint import load_checkpoint, save_checkpoint
from resattn.engine.ema import ModelEMA
from resattn.engine.optim import Schedule, build_optimizer, param_groups
from resattn.errors import UserError


def test_step_schedule_with_paper_milestones():
    cfg = resolve("paper")
    plan = make_plan(cfg, steps_per_epoch=703)
    assert plan.total_steps == 160000 and plan.epochs == math.ceil(160000 / 703)
    sched = make_schedule(cfg, plan)
    assert sched(63999 / 160000) == 1.0
    assert sched(64000 / 160000) == pytest.approx(0.1)
    assert sched(96000 / 160000) == pytest.approx(0.01)


def test_warmup_longer_than_the_run_is_clamped():
    """The fast recipe's 2 warm-up epochs in a 1-epoch run: half the run warms up, then decays."""
    cfg = resolve("fast", overrides={"epochs": 1})
    assert cfg.warmup == 2
    sched = make_schedule(cfg, make_plan(cfg, steps_per_epoch=100))
    assert sched(0.25) == pytest.approx(0.5) and sched(0.5) == 1.0
    assert sched(0.75) == pytest.approx(0.5) and sched(1.0) == 0.0
    short = resolve("fast", overrides={"epochs": 30})  # a warm-up shorter than the run stays
    assert make_schedule(short, make_plan(short, 100))(1 / 30) == pytest.approx(0.5)


def test_cosine_onecycle_warmup_shapes():
    cos = Schedule("cosine", warmup=0.1)
    assert cos(0.0) == 0.0 and cos(0.05) == pytest.approx(0.5) and cos(0.1) == 1.0
    assert cos(0.55) == pytest.approx(0.5) and cos(1.0) == pytest.approx(0.0)
    one = Schedule("onecycle", warmup=0.25)
    assert one(0.125) == pytest.approx(0.5) and one(0.25) == 1.0
    assert one(0.625) == pytest.approx(0.5) and one(1.0) == 0.0
    with pytest.raises(ValueError, match="schedule"):
        Schedule("linear")


def test_weight_decay_skips_norm_and_bias():
    model = create_model("attention56")
    decay, no_decay = param_groups(model, 1e-4)
    assert all(p.ndim > 1 for p in decay["params"])
    assert all(p.ndim <= 1 for p in no_decay["params"]) and no_decay["weight_decay"] == 0
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert len(param_groups(model, 1e-4, decay_norm_and_bias=True)) == 1
    opt = build_optimizer(model, "sgd", 0.1, 1e-4)
    assert opt.defaults["nesterov"] is True


@pytest.mark.parametrize("name,kind", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                       ("adamw", torch.optim.AdamW)])
def test_each_optimizer_gets_the_groups_rates_and_momentum(name, kind):
    """Every group carries its learning rate (the body's scaled when fine-tuning) and its decay;
    SGD is Nesterov with the given momentum, plain without momentum."""
    model = create_model("attention_test")
    opt = build_optimizer(model, name, 0.2, 5e-4, momentum=0.8, body_lr_scale=0.25)
    assert type(opt) is kind
    head = {id(p) for p in model.get_classifier().parameters()}
    for group in opt.param_groups:
        is_head = all(id(p) in head for p in group["params"])
        assert is_head or not any(id(p) in head for p in group["params"])
        assert group["lr_scale"] == (1.0 if is_head else 0.25)
        assert group["lr"] == pytest.approx(0.2 * group["lr_scale"])
        decayed = all(p.ndim > 1 for p in group["params"])
        assert group["weight_decay"] == (5e-4 if decayed else 0.0)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    if name == "sgd":
        assert opt.defaults["momentum"] == 0.8 and opt.defaults["nesterov"] is True
        plain = build_optimizer(model, "sgd", 0.2, 5e-4, momentum=0.0)
        assert plain.defaults["momentum"] == 0.0 and plain.defaults["nesterov"] is False
    with pytest.raises(UserError, match="optimizer='lion' is not valid"):
        build_optimizer(model, "lion", 0.2, 5e-4)


def test_groups_without_fine_tuning_and_frozen_parameters():
    """body_lr_scale 1: no head group of its own; frozen parameters are left out."""
    model = create_model("attention_test")
    groups = param_groups(model, 1e-4)
    assert [g["lr_scale"] for g in groups] == [1.0, 1.0]
    assert [g["weight_decay"] for g in groups] == [1e-4, 0.0]  # decayed first
    model.stem.requires_grad_(False)
    frozen = {id(p) for p in model.stem.parameters()}
    kept = [p for g in param_groups(model, 1e-4) for p in g["params"]]
    assert kept and not frozen & {id(p) for p in kept}


def test_step_schedule_counts_milestones_and_gamma():
    sched = Schedule("step", warmup=0.1, milestones=(0.8, 0.5), gamma=0.5)
    assert sched(0.05) == pytest.approx(0.5)  # half-way through the warm-up
    assert [sched(t) for t in (0.2, 0.5, 0.79, 0.8, 1.0)] == [1.0, 0.5, 0.5, 0.25, 0.25]
    assert sched(-1.0) == 0.0 and sched(2.0) == 0.25  # clamped to [0, 1]
    with pytest.raises(UserError, match="schedule='linear' is not valid"):
        Schedule("linear")
    with pytest.raises(ValueError, match="warm-up of 100% of training is not valid"):
        Schedule("cosine", warmup=1.0)


def test_ema_update_rule():
    model = torch.nn.Linear(2, 1)
    ema = ModelEMA(model, decay=0.5)
    before = ema.module.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    d = min(0.5, 2 / 11)
    assert torch.allclose(ema.module.weight, d * before + (1 - d) * model.weight)


def test_recipes_and_layering(tmp_path):
    assert {"paper", "fast"} <= set(recipe_names())
    paper = resolve("paper")
    assert (paper.optimizer, paper.lr, paper.batch_size, paper.iterations) == ("sgd", 0.1, 64,
                                                                                160000)
    assert paper.milestones == [64000.0, 96000.0] and paper.normalization == "pixel"
    # a flag setting epochs clears the recipe's iterations
    short = resolve("paper", overrides={"epochs": 2})
    assert short.epochs == 2 and short.iterations == 0
    user = tmp_path / "mine.toml"
    user.write_text("[optim]\nlr = 0.05\n[model]\nmodel = 'attention92'\n")
    cfg = resolve("fast", str(user), {"batch_size": 32})
    assert (cfg.lr, cfg.model, cfg.batch_size, cfg.ema) == (0.05, "attention92", 32, True)


def test_imagenet_recipe_is_the_papers_protocol_on_8_processes():
    cfg = resolve("imagenet")
    assert (cfg.dataset, cfg.model, cfg.optimizer, cfg.momentum, cfg.weight_decay) == \
        ("folder", "attention56_imagenet", "sgd", 0.9, 1e-4)
    assert cfg.lr_scaling == "linear" and cfg.lr * 8 == pytest.approx(0.1)
    assert cfg.batch_size * 8 == 256 and cfg.normalization == "channel"
    # the paper's iterations at batch 256, in epochs of ImageNet-1k's training set
    epochs_at = lambda iterations: iterations * 256 / 1_281_167  # noqa: E731
    assert cfg.milestone_unit == "epoch" and cfg.schedule == "step" and cfg.gamma == 0.1
    for ours, theirs in zip(cfg.milestones, (200_000, 400_000, 500_000), strict=True):
        assert abs(ours - epochs_at(theirs)) < 0.2
    assert abs(cfg.epochs - epochs_at(530_000)) < 0.2


def test_config_toml_round_trip(tmp_path):
    cfg = resolve("fast", overrides={"data_dir": "/some/where", "milestones": [3, 4]})
    path = tmp_path / "config.toml"
    path.write_text(to_toml(cfg))
    assert resolve(None, str(path)) == cfg
    assert from_dict(cfg.__dict__) == cfg


def test_config_toml_round_trip_of_odd_paths(tmp_path):
    """A newline, tab, quote, backslash, DEL or other control character in a path (--out from a
    script, say) is written as a TOML escape and read back as it was."""
    odd = 'runs/a\nb\tc"d\\e\x7ff\x01g'
    cfg = resolve("fast", overrides={"out": odd, "data_dir": "/data/ümlaut"})
    path = tmp_path / "config.toml"
    path.write_text(to_toml(cfg))
    back = resolve(None, str(path))
    assert back.out == odd and back == cfg


@pytest.mark.parametrize("text,match", [
    ("[optim]\nlearning_rate = 0.1\n", "unknown key 'learning_rate'"),
    ("[optimizer]\nlr = 0.1\n", r"unknown section \[optimizer\]"),
    ("[optim]\nlr = 'fast'\n", "lr='fast' has the wrong type"),
    ("[optim]\nlr = 0\n", "lr=0.0 is not valid; it must be > 0"),
    ("[train]\namp = 'fp8'\n", "bad.toml: amp='fp8' is not valid"),
    ("[model]\nmodel = 'attention57'\n", "bad.toml: model='attention57' is not valid"),
    ("[optim\n", "not valid TOML"),
    ("[augment]\nlow_res_scale = 0\n", r"low_res_scale=0.0 is not valid; it must be in \(0, 1\]"),
    ("[train]\nval_every = 0\n", "val_every=0 is not valid; it must be >= 1"),
    ("[augment]\nlow_res_until = 1.5\n", r"low_res_until=1.5 is not valid; it must be in \[0, 1\]"),
])
def test_bad_config_files(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=match):
        resolve(None, str(path))


def test_unknown_recipe():
    with pytest.raises(UserError, match="unknown recipe 'slow'.*fast"):
        load_recipe("slow")


def test_default_config_is_valid():
    assert resolve() == Config()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign"])
def test_bad_checkpoints(tmp_path, damage):
    path = tmp_path / "c.pt"
    save_checkpoint({"model": {"w": torch.ones(100)}}, path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    else:
        torch.save({"weights": torch.ones(2)}, path)
    with pytest.raises(UserError, match="not a readable checkpoint|not a resattn checkpoint"):
        load_checkpoint(path)


def test_paper_recipe_trains_on_all_images_and_decays_every_parameter():
    """Sec. 4.1: all 50,000 training images, test error of the final weights; Caffe's weight
    decay reaches BN and bias parameters too."""
    cfg = resolve("paper")
    assert cfg.val_size == 0 and cfg.decay_norm_and_bias
    assert (cfg.iterations, cfg.milestones, cfg.batch_size) == (160000, [64000.0, 96000.0], 64)
