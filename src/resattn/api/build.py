"""From a Config (or a checkpoint) to the objects the engine takes: model, data, weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import ARCHITECTURE, Config, from_dict
from ..data import FOLDER_DATASETS, AugmentConfig, DataBundle, DataConfig, build_data
from ..data.build import Loading
from ..engine.checkpoint import load_checkpoint
from ..errors import InvalidOption, UserError
from ..models import ResidualAttentionNet, count_flops, count_params, create_model, get_spec
from ..models.stats import model_stats


def model_options(cfg: Config) -> dict[str, Any]:
    """What `create_model` takes beside the name: the architecture options, and dropout."""
    opts = {k: getattr(cfg, k) for k in ARCHITECTURE if k != "model"}
    if cfg.drop_rate is not None:  # None: the architecture's own dropout
        opts["drop_rate"] = cfg.drop_rate
    return opts


def build_model(cfg: Config, num_classes: int) -> ResidualAttentionNet:
    return create_model(cfg.model, num_classes=num_classes, **model_options(cfg))


def check_model_options(cfg: Config) -> None:
    """Build the model on the meta device (no memory, milliseconds): a bad model, attention,
    residual or mask name in a config file fails here, before any data is read."""
    with torch.device("meta"):
        build_model(cfg, 10)


def model_info(cfg: Config, num_classes: int, input_size: int) -> dict[str, int]:
    """Parameters and forward MACs of the configured model: from the shipped table when the
    architecture is the registered one at its own input size (instant), else counted on the meta
    device (a forward pass of shapes, seconds on a CPU)."""
    shape_options = {k: v for k, v in model_options(cfg).items() if k != "drop_rate"}
    registered = {k: v for k, v in model_options(Config(model=cfg.model)).items()
                  if k != "drop_rate"}
    if shape_options == registered and input_size == get_spec(cfg.model).input_size:
        stats = model_stats(cfg.model, num_classes)
        return {"params": stats["params"], "flops": stats["flops"]}
    with torch.device("meta"):
        model = build_model(cfg, num_classes)
    return {"params": count_params(model), "flops": count_flops(model, input_size)}


def input_size_for(cfg: Config) -> int:
    if cfg.dataset not in FOLDER_DATASETS:
        return 32
    return cfg.input_size or get_spec(cfg.model).input_size


def data_config(cfg: Config) -> DataConfig:
    augment = AugmentConfig(crop_padding=cfg.crop_padding, crop_mode=cfg.crop_mode,
                            flip=cfg.flip, rotation=cfg.rotation, cutout=cfg.cutout,
                            mixup=cfg.mixup, cutmix=cfg.cutmix, normalization=cfg.normalization)
    return DataConfig(dataset=cfg.dataset, data_dir=cfg.data_dir, label_type=cfg.label_type,
                      val_size=cfg.val_size, label_noise=cfg.label_noise,
                      train_subset=cfg.train_subset, test_subset=cfg.test_subset,
                      download=cfg.download, augment=augment)


def load_data(cfg: Config, device: torch.device, rank: int = 0, world_size: int = 1,
              batch_size: int | None = None, progress: bool = True,
              **only: Any) -> DataBundle:
    """The run's train / val / test loaders. The validation split and subsets are drawn with
    `split_seed`, independent of the training seed: every seed of a suite validates on the same
    images; augmentation and data order follow `seed`. `only`: `splits` (the loaders to build)
    and `stats` (a checkpoint's mean and std), to read no more than an evaluation uses."""
    return build_data(data_config(cfg), Loading(
        batch_size=batch_size or cfg.batch_size, device=device, seed=cfg.seed,
        split_seed=cfg.split_seed, input_size=input_size_for(cfg),
        eval_batch_size=cfg.eval_batch_size, workers=cfg.workers, rank=rank,
        world_size=world_size, progress=progress), **only)


WEIGHTS = ("auto", "raw", "ema")


def model_from_checkpoint(ckpt: dict[str, Any], weights: str = "auto"
                          ) -> tuple[ResidualAttentionNet, Config]:
    """Rebuild the model from the checkpoint alone (its config and classes) and load the weights:
    raw, EMA, or `auto` (what the run chose on validation)."""
    if weights not in WEIGHTS:
        raise InvalidOption("weights", weights, f"choose one of {', '.join(WEIGHTS)}")
    try:
        cfg = from_dict(ckpt["config"])
        model = build_model(cfg, len(ckpt["classes"]))
    except (KeyError, TypeError) as exc:
        raise UserError(f"the checkpoint lacks a valid {exc} entry; the file is damaged or "
                        "from another program") from None
    except UserError as exc:
        raise UserError(f"the checkpoint's configuration is not valid ({exc}); the file is "
                        "damaged or from another version") from None
    if weights == "auto":
        weights = ckpt.get("eval_weights", "raw")
    if weights == "ema":
        if not isinstance(ckpt.get("ema"), dict) or "module" not in ckpt["ema"]:
            raise UserError("this checkpoint holds no EMA weights; use weights raw")
        state = ckpt["ema"]["module"]
    else:
        state = ckpt.get("model")
    load_weights(model, state, cfg.model)
    return model.eval(), cfg


def load_weights(model: nn.Module, state: Any, name: str) -> None:
    """load_state_dict, with a one-line error for a state that does not fit the model."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in
                                              state.values()):
        raise UserError(f"the checkpoint holds no weights for {name}; the file is damaged or "
                        "from another program")
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise UserError(f"the checkpoint's weights do not fit {name}; the file is damaged or "
                        "from another version") from None


def pretrained_cfg(ckpt: dict[str, Any], source: str, weights: str) -> dict[str, Any]:
    """What a user needs beside the weights to use them (timm's `pretrained_cfg`): classes,
    input size, the evaluation crop and the normalisation the model was trained with."""
    return {"source": source, "weights": weights, "classes": list(ckpt["classes"]),
            "num_classes": len(ckpt["classes"]), "input_size": int(ckpt["input_size"]),
            "crop_pct": float(ckpt.get("crop_pct", 1.0)),
            # (3, 1, 1) per channel, or (3, H, W) per pixel (the paper's normalisation)
            "mean": ckpt["mean"].clone(), "std": ckpt["std"].clone(),
            "config": dict(ckpt["config"])}


def weights_meta(ckpt: dict[str, Any]) -> dict[str, Any]:
    """What a weights folder's config.json (and a registry entry) holds beside the tensors:
    everything `load_model` needs to rebuild and use the model."""
    cfg = ckpt["config"]
    return {"model": cfg["model"], "classes": list(ckpt["classes"]),
            "num_classes": len(ckpt["classes"]), "input_size": int(ckpt["input_size"]),
            "crop_pct": float(ckpt.get("crop_pct", 1.0)), "normalization": cfg["normalization"],
            "mean": ckpt["mean"].flatten().tolist(), "mean_shape": list(ckpt["mean"].shape),
            "std": ckpt["std"].flatten().tolist(), "std_shape": list(ckpt["std"].shape),
            # no paths of the machine that trained it: users' data is found the usual way
            "config": {**cfg, "data_dir": None, "out": "runs"}}


def description_digest(meta: dict[str, Any]) -> str | None:
    """SHA-256 of what, beside the tensors, decides a weights folder's predictions: the
    architecture (the model and every option `model_options` passes to it), the classes, the
    input size, crop and normalisation. An export records it in config.json
    (`config_sha256`), so that an edit which changes the numbers without changing a tensor's
    shape (another `attention`, `upsample_align_corners`) is caught. None when `meta` is not a
    weights description at all."""
    try:
        config = meta["config"]
        keys = ["model", *model_options(Config(drop_rate=0.0))]
        payload = {"architecture": {k: config.get(k) for k in keys},
                   **{k: meta[k] for k in ("classes", "input_size", "crop_pct", "normalization",
                                           "mean", "mean_shape", "std", "std_shape")}}
        text = json.dumps(payload, sort_keys=True)
    except (KeyError, TypeError, AttributeError, ValueError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def _checkpoint_from_meta(meta: dict[str, Any], state: dict[str, torch.Tensor],
                          source: str) -> dict[str, Any]:
    from ..weights import tensor_of

    try:
        ckpt = {"config": meta["config"], "classes": meta["classes"],
                "input_size": meta["input_size"], "crop_pct": meta.get("crop_pct", 1.0),
                "mean": tensor_of(meta["mean"], meta["mean_shape"]),
                "std": tensor_of(meta["std"], meta["std_shape"]), "model": state,
                "eval_weights": "raw",  # the one set of weights: under the "model" key
                # which of the run's weights they are (an export says; a tag's record too)
                "source_weights": meta.get("weights")
                or (meta.get("training") or {}).get("weights") or "raw"}
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise UserError(f"{source}: config.json lacks what the model needs (model, config, "
                        "classes, mean/std, input_size); export the weights again") from None
    problem = _meta_problem(ckpt)
    if problem:
        raise UserError(f"{source}: {problem}; export the weights again")
    return ckpt


def _meta_problem(ckpt: dict[str, Any]) -> str | None:
    """What makes a weights folder's config.json (edited by hand, say) or its tensors unusable:
    checked here rather than found as NaN probabilities or a division by zero later."""
    classes, size, crop = ckpt["classes"], ckpt["input_size"], ckpt["crop_pct"]
    head = ckpt["model"].get("fc.weight")
    if not isinstance(ckpt["config"], dict):
        return "config.json's config is not an object"
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        return "config.json's classes must be a list of class names"
    if head is not None and head.shape[0] != len(classes):
        return (f"config.json names {len(classes)} classes but the weights have "
                f"{head.shape[0]} outputs")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        return f"config.json's input_size {size!r} must be an integer >= 1"
    if not isinstance(crop, (int, float)) or isinstance(crop, bool) or not 0 < crop <= 1:
        return f"config.json's crop_pct {crop!r} must be in (0, 1]"
    mean, std = ckpt["mean"], ckpt["std"]
    if not (torch.isfinite(mean).all() and torch.isfinite(std).all() and (std > 0).all()):
        return "config.json's mean and std must be finite, and std > 0"
    for name, tensor in ckpt["model"].items():
        if name.endswith("num_batches_tracked"):
            continue
        if not tensor.is_floating_point():
            return f"tensor {name} is {tensor.dtype}, not floating point"
        if not torch.isfinite(tensor).all():
            return f"tensor {name} holds NaN or infinite values"
    return None


def load_source(source: str | Path) -> dict[str, Any]:
    """A checkpoint-like dict from a published tag (`attention56.cifar10`), a weights folder
    (model.safetensors + config.json, as `resattn export --format safetensors` writes), a
    checkpoint file or a run directory. Hashes are checked in every case."""
    from ..weights import is_tag, load_state, sha256_of
    from ..weights.safetensors import load_file

    if isinstance(source, str) and is_tag(source):
        state, entry = load_state(source)
        return _checkpoint_from_meta(entry, state, source)
    path = Path(source).expanduser()
    if not path.exists() and "/" not in str(source) and not str(source).endswith(".pt"):
        from ..weights import list_weights

        raise UserError(f"{source} is neither a file, a folder nor a published tag; published "
                        f"tags: {', '.join(list_weights()) or 'none'}")
    folder = path if path.is_dir() else path.parent
    if (path.is_dir() and (path / "model.safetensors").is_file()) or path.suffix == ".safetensors":
        weights = path / "model.safetensors" if path.is_dir() else path
        try:
            meta = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            raise UserError(f"{folder / 'config.json'} is missing or not JSON; a weights folder "
                            "holds model.safetensors and config.json") from None
        if not isinstance(meta, dict):
            raise UserError(f"{folder / 'config.json'} is not a JSON object")
        if meta.get("sha256") and sha256_of(weights) != meta["sha256"]:
            raise UserError(f"{weights} does not match the SHA-256 in config.json; the file is "
                            "damaged: export it again")
        state, _ = load_file(weights)
        ckpt = _checkpoint_from_meta(meta, state, str(folder))
        if "config_sha256" in meta and description_digest(meta) != meta["config_sha256"]:
            raise UserError(f"{folder / 'config.json'} was edited after export: the model it "
                            "describes (architecture, classes, input size, crop, "
                            "normalisation) no longer matches its config_sha256; export the "
                            "weights again")
        return ckpt
    return load_checkpoint(path)


def load_model(path: str | Path, weights: str = "auto", device: str | torch.device = "cpu"
               ) -> ResidualAttentionNet:
    """A trained model, in eval mode, with `model.pretrained_cfg` holding its classes, input
    size, crop and mean/std. `path`: a published tag (`resattn.list_models(pretrained=True)`),
    a weights folder, a checkpoint file or a run directory.

    `weights`: 'auto' (raw or EMA, what the run chose on validation), 'raw' or 'ema'.
    """
    ckpt = load_source(path)
    model, _ = model_from_checkpoint(ckpt, weights)
    model.pretrained_cfg = pretrained_cfg(ckpt, str(path), weights_of(ckpt, weights))
    return model.to(device)


def weights_of(ckpt: dict[str, Any], weights: str = "auto") -> str:
    """Which of a run's weights `model_from_checkpoint(ckpt, weights)` loads: raw or ema (the
    run's validation choice for `auto`; for a weights folder or tag, the set it holds)."""
    if "source_weights" in ckpt:
        return ckpt["source_weights"]
    return ckpt.get("eval_weights", "raw") if weights == "auto" else weights


def checkpoint_of(model: nn.Module) -> dict[str, Any]:
    """The parts of a checkpoint evaluation and prediction need, from a `load_model` model."""
    meta = getattr(model, "pretrained_cfg", None)
    if not isinstance(meta, dict) or "config" not in meta:
        raise UserError("this model carries no pretrained_cfg; load it with resattn.load_model "
                        "or pass the checkpoint path")
    return {key: meta[key] for key in ("classes", "config", "input_size", "crop_pct", "mean",
                                       "std")}
