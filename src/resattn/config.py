"""One configuration for a run: recipe TOML, then the user's TOML, then command-line flags.

The TOML has sections only for readability; every key lives in exactly one section and unknown
keys are errors. The resolved configuration goes into the run directory (config.toml) and into
every checkpoint as a plain dict, so a model can be rebuilt from a checkpoint alone.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .data import DATASETS
from .errors import InvalidOption, UserError
from .models import list_models
from .models.activations import ATTENTION_TYPES
from .models.attention import RESIDUAL_TYPES
from .models.soft_mask import MASK_TYPES

MODEL_NAMES = tuple(list_models())


_SECTION = [""]  # the section `option` files new keys under, set by `section` in Config


def section(name: str) -> None:
    """Opens a TOML section in the body of Config: the options below it belong to it."""
    _SECTION[0] = name


def option(default: Any, help: str, choices: tuple[str, ...] | None = None,
           metavar: str | None = None, *, architecture: bool = False, neutral: bool = False,
           resumable: bool = False) -> Any:
    """One option, declared once: its default, help text, choices and TOML section, and its
    role: `architecture` (decides the network's weights: --init must match it), `neutral`
    (does not change what a run computes: suites count two runs differing only here as one)
    and `resumable` (may differ from the run's own value on --resume). Flags (`resattn train
    --help`), TOML keys, type checks, choices and the ARCHITECTURE, NEUTRAL and RESUMABLE sets
    are generated from it."""
    meta = {"help": help, "choices": choices, "metavar": metavar, "section": _SECTION[0],
            "architecture": architecture, "neutral": neutral, "resumable": resumable}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Config:
    section("model")
    model: str = option("attention56", "architecture", MODEL_NAMES, architecture=True)
    attention: str = option("mixed", "soft-mask activation (paper Sec. 3.3)", ATTENTION_TYPES,
                            architecture=True)
    residual: str = option("arl", "attention residual learning (arl, paper Eq. 3), naive "
                           "masking (nal) or none", RESIDUAL_TYPES, architecture=True)
    mask: str = option("encoder_decoder", "soft-mask branch: bottom-up top-down "
                       "(encoder_decoder) or local convolutions", MASK_TYPES, architecture=True)
    drop_rate: float | None = option(None, "dropout before the classifier (default: the "
                                     "model's own)")
    upsample_align_corners: bool = option(False, "bilinear mask upsampling with corners "
                                          "aligned, as Caffe's Interp layer in the authors' "
                                          "prototxts", architecture=True)
    mask_head_bias: bool = option(True, "a bias on the mask head's last 1x1 conv (the "
                                  "authors' prototxts have none)", architecture=True)
    init: str | None = option(None, "start from these weights (fine-tuning): a published tag "
                              "such as attention56.cifar10, a run, a checkpoint or a weights "
                              "folder; another class count gets a fresh classifier",
                              metavar="WEIGHTS")
    freeze_body: bool = option(False, "with --init: train only the classifier")
    body_lr_scale: float = option(1.0, "with --init: the body's learning rate relative to the "
                                  "classifier's (e.g. 0.1)", metavar="FACTOR")
    section("data")
    dataset: str = option("cifar10", "cifar10, cifar100, folder (your own images) or "
                          "shards (tar shards of them, `resattn data shard`)", DATASETS)
    data_dir: str | None = option(None, "where the data is (default: $RESATTN_DATA_DIR, else "
                                  "~/.cache/resattn)", metavar="PATH", neutral=True, resumable=True)
    label_type: str = option("fine", "CIFAR-100 labels: 100 fine or 20 coarse classes",
                             ("fine", "coarse"))
    val_size: int = option(5000, "training images held out for validation, stratified; "
                           "0 = train on all", metavar="N")
    split_seed: int = option(0, "seed of the validation split, subsets and label noise (not "
                             "of training): runs with different --seed validate on the same "
                             "images")
    label_noise: float = option(0.0, "fraction of training labels replaced by another class "
                                "(paper Table 5)")
    train_subset: int = option(0, "train on a stratified subset of N images; 0 = all",
                               metavar="N")
    test_subset: int = option(0, "evaluate on a stratified subset of N test images; 0 = all",
                              metavar="N")
    download: bool = option(True, "download a missing dataset (CIFAR)", neutral=True,
                            resumable=True)
    input_size: int = option(0, "image folders and shards: side of the network input; 0 = "
                             "the model's own", metavar="PIXELS")
    workers: int = option(4, "image folders: decoding processes (at most one per usable "
                          "CPU); 0 = in this process", neutral=True, resumable=True)
    section("augment")
    crop_padding: int = option(4, "random-crop padding in pixels; 0 = no crop",
                               metavar="PIXELS")
    crop_mode: str = option("constant", "padding of the random crop", ("constant", "reflect"))
    flip: bool = option(True, "random horizontal flips")
    rotation: float = option(0.0, "random rotation, max degrees", metavar="DEGREES")
    cutout: int = option(0, "cutout square side in pixels; 0 = off", metavar="PIXELS")
    mixup: float = option(0.0, "mixup Beta alpha; 0 = off", metavar="ALPHA")
    cutmix: float = option(0.0, "cutmix Beta alpha; 0 = off", metavar="ALPHA")
    normalization: str = option("pixel", "subtract the per-pixel mean (paper) or standardise "
                                "per channel", ("pixel", "channel"))
    low_res_scale: float = option(1.0, "progressive resizing: train on batches scaled to this "
                                  "fraction of their side (0.75: 24 px on CIFAR) until "
                                  "--low-res-until, then at full size; 1 = off",
                                  metavar="FRACTION")
    low_res_until: float = option(0.5, "progressive resizing: the fraction of training (the "
                                  "schedule's progress) spent at --low-res-scale",
                                  metavar="FRACTION")
    section("optim")
    optimizer: str = option("sgd", "sgd (Nesterov momentum), adam or adamw",
                            ("sgd", "adam", "adamw"))
    lr: float = option(0.1, "peak learning rate")
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(1e-4, "L2 weight decay")
    decay_norm_and_bias: bool = option(False, "apply weight decay to BN and bias parameters too")
    batch_size: int = option(64, "training batch size (per process under torchrun)")
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy")
    grad_clip: float = option(0.0, "max global gradient norm; 0 = off")
    ema: bool = option(False, "keep an exponential moving average of the weights")
    ema_decay: float = option(0.999, "EMA decay per step")
    sync_bn: bool = option(False, "torchrun: BatchNorm statistics over all processes (CUDA)",
                           resumable=True)
    lr_scaling: str = option("none", "torchrun: 'linear' multiplies --lr by the number of "
                             "processes", ("none", "linear"), resumable=True)
    section("schedule")
    schedule: str = option("step", "learning-rate schedule; step without --milestones keeps "
                           "the lr constant", ("step", "cosine", "onecycle"))
    epochs: int = option(30, "epochs (setting only one of --epochs / --iterations resets the "
                         "other)", resumable=True)
    iterations: int = option(0, "optimizer steps instead of epochs; wins when both are set",
                             resumable=True)
    warmup: float = option(0.0, "epochs of linear warm-up (fractions allowed)", metavar="EPOCHS")
    milestones: list[float] = option([], "step schedule: where the lr drops, in "
                                     "--milestone-unit")
    milestone_unit: str = option("epoch", "unit of --milestones", ("epoch", "iter"))
    gamma: float = option(0.1, "step schedule: lr factor at each milestone")
    section("train")
    seed: int = option(0, "seed of weights, augmentation and data order")
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps", neutral=True, resumable=True)
    amp: str = option("auto", "autocast: auto = bf16 on CUDA and on CPUs with native bf16 "
                      "(AVX512-BF16 or AMX), else off (fp32)", ("auto", "bf16", "fp16", "off"))
    channels_last: bool = option(True, "NHWC memory format (faster convolutions)")
    compile: bool = option(False, "torch.compile the training step (on a GPU with SGD: the "
                                      "whole step as one graph)", neutral=True, resumable=True)
    grad_checkpointing: bool = option(False, "activation checkpointing per block: less memory "
                                      "for one more forward pass, the same numbers",
                                      neutral=True, resumable=True)
    out: str = option("runs", "parent folder of the run directory", metavar="DIR", neutral=True)
    time_budget: float = option(0.0, "seconds of training, then a clean stop and the final "
                                "evaluation; the schedule is stretched to it; 0 = no limit",
                                metavar="SECONDS", resumable=True)
    eval_batch_size: int = option(0, "evaluation batch size; 0 = the training batch size",
                                  neutral=True, resumable=True)
    val_every: int = option(1, "validate after every N-th epoch and after the last one; a "
                            "larger N leaves more of a --time-budget to training",
                            metavar="N", resumable=True)
    tta: bool = option(False, "flip test-time augmentation in the final evaluation")
    log_every: int = option(20, "steps between logged steps (steps.jsonl and TensorBoard: "
                            "the curves), non-finite-loss checks and progress-bar refreshes",
                            metavar="STEPS", neutral=True, resumable=True)
    viz_every: int = option(0, "attention masks of 8 fixed validation images to TensorBoard "
                            "every N epochs; 0 = off", metavar="N", neutral=True, resumable=True)
    monitor_test: bool = option(False, "evaluate the test set after every epoch (off the "
                                "training clock) for time-to-accuracy curves; never used to "
                                "pick weights", resumable=True)


FIELDS = {f.name: f for f in fields(Config)}
SECTIONS: dict[str, tuple[str, ...]] = {}
for _f in fields(Config):
    SECTIONS[_f.metadata["section"]] = (*SECTIONS.get(_f.metadata["section"], ()), _f.name)
assert sorted(k for keys in SECTIONS.values() for k in keys) == sorted(FIELDS)
SECTION_OF = {key: section for section, keys in SECTIONS.items() for key in keys}
CHOICES = {name: f.metadata["choices"] for name, f in FIELDS.items() if f.metadata["choices"]}
DEFAULTS = {name: getattr(Config(), name) for name in FIELDS}


def _with(role: str) -> tuple[str, ...]:
    return tuple(name for name, f in FIELDS.items() if f.metadata[role])


ARCHITECTURE = _with("architecture")  # the network's shape and computation: --init must match
NEUTRAL = _with("neutral")  # what a run computes does not depend on these
RESUMABLE = _with("resumable")  # may differ from the run's own value on --resume


def _coerce(key: str, value: Any) -> Any:
    """Type-check one value against the Config field; ints are accepted for floats."""
    default = DEFAULTS[key]
    if value is None:
        if key in ("drop_rate", "data_dir", "init"):
            return None
        raise UserError(f"{key} needs a value")
    kind = type(default) if default is not None else (float if key == "drop_rate" else str)
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is list:
        ok = isinstance(value, list) and all(isinstance(v, (int, float)) for v in value)
        value = [float(v) for v in value] if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise UserError(f"{key}={value!r} has the wrong type; expected {kind.__name__}")
    if key in CHOICES and value not in CHOICES[key]:
        raise InvalidOption(key, value, f"choose one of {', '.join(CHOICES[key])}")
    return value


def from_toml_dict(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Flatten a sectioned TOML document, rejecting unknown sections and keys."""
    flat = {}
    for section, body in data.items():
        if section not in SECTIONS or not isinstance(body, dict):
            raise UserError(f"{source}: unknown section [{section}]; valid sections: "
                            f"{', '.join(SECTIONS)}")
        for key, value in body.items():
            if key not in SECTIONS[section]:
                raise UserError(f"{source}: unknown key {key!r} in [{section}]; valid keys: "
                                f"{', '.join(SECTIONS[section])}")
            try:
                flat[key] = _coerce(key, value)
            except UserError as exc:  # named by its key in the file, not by a flag
                raise UserError(f"{source}: {exc}") from None
    return flat


def load_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise UserError(f"config file {path} not found") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"config file {path} is not valid TOML ({exc})") from None
    return from_toml_dict(data, str(path))


def recipe_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("resattn.recipes").iterdir()
                  if p.name.endswith(".toml"))


def load_recipe(name: str) -> dict[str, Any]:
    if name not in recipe_names():
        raise UserError(f"unknown recipe {name!r}; valid recipes: {', '.join(recipe_names())}")
    with resources.as_file(resources.files("resattn.recipes") / f"{name}.toml") as path:
        return load_toml(path)


def _apply(values: dict[str, Any], layer: dict[str, Any]) -> None:
    """Merge one layer; a layer that sets the length one way clears the other way."""
    for one, other in (("epochs", "iterations"), ("iterations", "epochs")):
        if one in layer and other not in layer:
            values[other] = 0
    values.update(layer)


def resolve(recipe: str | None = None, config_file: str | None = None,
            overrides: dict[str, Any] | None = None) -> Config:
    """Defaults < recipe < config file < flags, then checked."""
    values: dict[str, Any] = {}
    if recipe:
        _apply(values, load_recipe(recipe))
    if config_file:
        _apply(values, load_toml(config_file))
    flags = {}
    for key, value in (overrides or {}).items():
        if key not in FIELDS:
            raise UserError(f"unknown configuration key {key!r}")
        flags[key] = _coerce(key, value)
    _apply(values, flags)
    cfg = Config(**values)
    check(cfg)
    return cfg


def check(cfg: Config) -> None:
    """Values that parse but make no sense: one line naming the flag."""
    def need(ok: bool, key: str, rule: str) -> None:
        if not ok:
            raise InvalidOption(key, getattr(cfg, key), f"it must be {rule}")

    for f in fields(cfg):  # inf or nan trains to NaN weights and a summary full of NaN
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            need(False, f.name, "a finite number")
    need(cfg.lr > 0, "lr", "> 0")
    need(cfg.batch_size >= 1, "batch_size", ">= 1")
    need(cfg.eval_batch_size >= 0, "eval_batch_size", ">= 0 (0: the training batch size)")
    need(cfg.epochs >= 0, "epochs", ">= 1")
    need(cfg.iterations >= 0, "iterations", ">= 1")
    if cfg.epochs == 0 and cfg.iterations == 0:
        raise InvalidOption("epochs", 0, "set epochs or iterations to >= 1")
    need(cfg.weight_decay >= 0, "weight_decay", ">= 0")
    need(0 <= cfg.momentum < 1, "momentum", "in [0, 1)")
    need(0 <= cfg.label_smoothing < 1, "label_smoothing", "in [0, 1)")
    need(cfg.grad_clip >= 0, "grad_clip", ">= 0")
    need(0 < cfg.ema_decay < 1, "ema_decay", "in (0, 1)")
    need(cfg.warmup >= 0, "warmup", ">= 0")
    need(0 < cfg.low_res_scale <= 1, "low_res_scale", "in (0, 1] (1: off)")
    need(0 <= cfg.low_res_until <= 1, "low_res_until", "in [0, 1]")
    need(cfg.time_budget >= 0, "time_budget", ">= 0")
    need(cfg.workers >= 0, "workers", ">= 0")
    need(cfg.log_every >= 1, "log_every", ">= 1")
    need(cfg.val_every >= 1, "val_every", ">= 1")
    need(cfg.viz_every >= 0, "viz_every", ">= 0")
    need(0 <= cfg.label_noise <= 1, "label_noise", "in [0, 1]")
    need(cfg.val_size >= 0, "val_size", ">= 0")
    need(0 <= cfg.seed < 2**63, "seed", "in [0, 2**63)")
    need(0 < cfg.gamma <= 1, "gamma", "in (0, 1] (the factor the learning rate is multiplied by "
                                      "at each milestone)")
    need(cfg.input_size >= 0, "input_size", ">= 1 (or 0: the model's own)")
    need(cfg.body_lr_scale > 0, "body_lr_scale", "> 0")
    if (cfg.freeze_body or cfg.body_lr_scale != 1) and not cfg.init:
        raise InvalidOption("freeze_body" if cfg.freeze_body else "body_lr_scale",
                            cfg.freeze_body if cfg.freeze_body else cfg.body_lr_scale,
                            "it needs --init (the weights to fine-tune)")
    need(0 <= cfg.split_seed < 2**63, "split_seed", "in [0, 2**63)")
    need(cfg.train_subset >= 0, "train_subset", ">= 0")
    need(cfg.test_subset >= 0, "test_subset", ">= 0")


def from_dict(data: dict[str, Any]) -> Config:
    """A Config from its plain-dict form (checkpoints), every key checked."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise UserError(f"unknown configuration keys {', '.join(unknown)}")
    cfg = Config(**{k: _coerce(k, v) for k, v in data.items()})
    check(cfg)
    return cfg


def to_dict(cfg: Config) -> dict[str, Any]:
    return asdict(cfg)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    # a TOML basic string: JSON's escapes (quote, backslash, \n, \t, other control characters as
    # \uXXXX) are TOML's too, but for DEL, which TOML wants escaped as well
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def to_toml(cfg: Config) -> str:
    """The resolved configuration as TOML that `--config` reads back (None values omitted)."""
    data = to_dict(cfg)
    out = []
    for section, keys in SECTIONS.items():
        out.append(f"[{section}]")
        out += [f"{k} = {_toml_value(data[k])}" for k in keys if data[k] is not None]
        out.append("")
    return "\n".join(out)


def suite_value(item: str) -> tuple[str, Any]:
    """'key=value' from the command line, the value read as TOML ('5000', '"x"', 'true')."""
    key, sep, raw = item.partition("=")
    if not sep or key not in FIELDS:
        raise UserError(f"--set {item!r} is not valid; use KEY=VALUE with a configuration key")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word: a string
    return key, _coerce(key, value)
