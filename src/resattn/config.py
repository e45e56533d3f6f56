"""One configuration for a run: recipe TOML, then the user's TOML, then command-line flags.

The TOML has sections only for readability; every key lives in exactly one section and unknown
keys are errors. The resolved configuration goes into the run directory (config.toml) and into
every checkpoint as a plain dict, so a model can be rebuilt from a checkpoint alone.
"""

from __future__ import annotations

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

from .errors import UserError


@dataclass
class Config:
    # [model]
    model: str = "attention56"
    attention: str = "mixed"
    residual: str = "arl"
    mask: str = "encoder_decoder"
    drop_rate: float | None = None  # None: the model's own default
    # [data]
    dataset: str = "cifar10"
    data_dir: str | None = None
    label_type: str = "fine"
    val_size: int = 5000
    label_noise: float = 0.0
    train_subset: int = 0
    test_subset: int = 0  # evaluate on a stratified subset of the test set; 0 = all (quick looks)
    download: bool = True
    input_size: int = 0  # image folders: 0 = the model's default input size
    workers: int = 4
    # [augment]
    crop_padding: int = 4
    crop_mode: str = "constant"
    flip: bool = True
    rotation: float = 0.0
    cutout: int = 0
    mixup: float = 0.0
    cutmix: float = 0.0
    normalization: str = "pixel"
    # [optim]
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    decay_norm_and_bias: bool = False  # weight decay on BN and bias parameters too
    batch_size: int = 64
    label_smoothing: float = 0.0
    grad_clip: float = 0.0  # max global gradient norm; 0 = off
    ema: bool = False
    ema_decay: float = 0.999
    sync_bn: bool = False  # torchrun: BatchNorm statistics over all processes (CUDA)
    lr_scaling: str = "none"  # torchrun: "linear" multiplies lr by the number of processes
    # [schedule]
    schedule: str = "step"
    epochs: int = 30  # a layer (recipe, file, flags) that sets only one of epochs / iterations
    iterations: int = 0  # resets the other to 0; when both are set, iterations wins
    warmup: float = 0.0  # epochs of linear warm-up (fractions allowed)
    milestones: list[float] = field(default_factory=list)  # step schedule, in milestone_unit
    milestone_unit: str = "epoch"  # or "iter"
    gamma: float = 0.1
    # [train]
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # auto: bf16 on CUDA and on CPUs with native bf16, else off
    channels_last: bool = True
    compile: bool = False
    out: str = "runs"
    time_budget: float = 0.0  # seconds of training; 0 = no limit
    eval_batch_size: int = 0  # 0: the training batch size
    tta: bool = False  # flip test-time augmentation in the final evaluation
    log_every: int = 50  # steps between TensorBoard step scalars and progress-bar refreshes
    viz_every: int = 0  # epochs between attention-mask grids in TensorBoard; 0 = off
    monitor_test: bool = False  # test accuracy after every epoch, off the clock, for
    # time-to-accuracy curves; never used to choose weights


SECTIONS: dict[str, tuple[str, ...]] = {
    "model": ("model", "attention", "residual", "mask", "drop_rate"),
    "data": ("dataset", "data_dir", "label_type", "val_size", "label_noise", "train_subset",
             "test_subset", "download", "input_size", "workers"),
    "augment": ("crop_padding", "crop_mode", "flip", "rotation", "cutout", "mixup", "cutmix",
                "normalization"),
    "optim": ("optimizer", "lr", "momentum", "weight_decay", "decay_norm_and_bias",
              "batch_size", "label_smoothing", "grad_clip", "ema", "ema_decay", "sync_bn",
              "lr_scaling"),
    "schedule": ("schedule", "epochs", "iterations", "warmup", "milestones", "milestone_unit",
                 "gamma"),
    "train": ("seed", "device", "amp", "channels_last", "compile", "out", "time_budget",
              "eval_batch_size", "tta", "log_every", "viz_every", "monitor_test"),
}
FIELDS = {f.name: f for f in fields(Config)}
assert sorted(k for keys in SECTIONS.values() for k in keys) == sorted(FIELDS)

CHOICES = {
    "optimizer": ("sgd", "adam", "adamw"),
    "schedule": ("step", "cosine", "onecycle"),
    "milestone_unit": ("epoch", "iter"),
    "lr_scaling": ("none", "linear"),
    "amp": ("auto", "bf16", "fp16", "off"),
    "device": ("auto", "cuda", "cpu", "mps"),
}


def _coerce(key: str, value: Any) -> Any:
    """Type-check one value against the Config field; ints are accepted for floats."""
    default = getattr(Config(), key)
    if value is None:
        if key in ("drop_rate", "data_dir"):
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
    if key in CHOICES and value not in CHOICES[key] and not (
            key == "device" and value.startswith("cuda:") and value[5:].isdigit()):
        raise UserError(f"{key}={value!r} is not valid; choose one of {', '.join(CHOICES[key])}")
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
            flat[key] = _coerce(key, value)
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
            flag = "--" + key.replace("_", "-")
            raise UserError(f"{flag} {getattr(cfg, key)!r} is not valid; it must be {rule}")

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
        raise UserError("--epochs 0 is not valid; set --epochs or --iterations to >= 1")
    need(cfg.weight_decay >= 0, "weight_decay", ">= 0")
    need(0 <= cfg.momentum < 1, "momentum", "in [0, 1)")
    need(0 <= cfg.label_smoothing < 1, "label_smoothing", "in [0, 1)")
    need(cfg.grad_clip >= 0, "grad_clip", ">= 0")
    need(0 < cfg.ema_decay < 1, "ema_decay", "in (0, 1)")
    need(cfg.warmup >= 0, "warmup", ">= 0")
    need(cfg.time_budget >= 0, "time_budget", ">= 0")
    need(cfg.workers >= 0, "workers", ">= 0")
    need(cfg.log_every >= 1, "log_every", ">= 1")
    need(cfg.viz_every >= 0, "viz_every", ">= 0")
    need(0 <= cfg.label_noise <= 1, "label_noise", "in [0, 1]")
    need(cfg.val_size >= 0, "val_size", ">= 0")
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
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


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
