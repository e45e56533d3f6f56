"""Wiring shared by subcommands: device and precision choice, model and data from a Config."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from ..config import CHOICES, Config
from ..data import AugmentConfig, DataConfig, build_data
from ..errors import UserError
from ..models import count_flops, count_params, create_model, get_spec


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {name!r} is not valid; use auto, cpu, cuda, cuda:N or mps"
                        ) from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"--device {name!r} is not supported; use auto, cpu, cuda, cuda:N or "
                        "mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps: MPS is not available; use --device cpu")
    return device


def cpu_has_native_bf16() -> bool:
    """True only where the CPU computes bf16 in hardware: AVX512-BF16 or AMX tiles.
    oneDNN's own "bf16 supported" is true on any AVX512 CPU and then emulates bf16, slower than
    fp32 (measured on a 2-core Xeon with AVX512-VNNI but no AVX512-BF16), so it is not used.
    RESATTN_CPU_BF16=1 or 0 overrides the detection (e.g. a VM that hides CPU flags)."""
    forced = os.environ.get("RESATTN_CPU_BF16", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(bool(getattr(torch.cpu, name)()) for name in checks
                   if hasattr(torch.cpu, name))
    except RuntimeError:
        return False


def resolve_amp(amp: str, device: torch.device) -> str:
    """auto: bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16 / AMX), else off."""
    if amp not in CHOICES["amp"]:
        raise UserError(f"--amp {amp!r} is not valid; choose one of {', '.join(CHOICES['amp'])} "
                        "(off = fp32)")
    if amp != "auto":
        if amp == "fp16" and device.type == "cpu":
            raise UserError("--amp fp16 is for GPUs; use --amp bf16 or off on the CPU")
        return amp
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "off"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def model_options(cfg: Config) -> dict:
    opts = {"attention": cfg.attention, "residual": cfg.residual, "mask": cfg.mask}
    if cfg.drop_rate is not None:
        opts["drop_rate"] = cfg.drop_rate
    return opts


def build_model(cfg: Config, num_classes: int) -> torch.nn.Module:
    return create_model(cfg.model, num_classes=num_classes, **model_options(cfg))


def model_info(cfg: Config, num_classes: int, input_size: int) -> dict:
    with torch.device("meta"):
        model = build_model(cfg, num_classes)
    return {"params": count_params(model), "flops": count_flops(model, input_size)}


def input_size_for(cfg: Config) -> int:
    if cfg.dataset != "folder":
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
              batch_size: int | None = None, progress: bool = True):
    return build_data(data_config(cfg), batch_size or cfg.batch_size, device, seed=cfg.seed,
                      input_size=input_size_for(cfg), eval_batch_size=cfg.eval_batch_size,
                      workers=cfg.workers, rank=rank, world_size=world_size, progress=progress)


def model_from_checkpoint(ckpt: dict, weights: str = "auto") -> tuple[torch.nn.Module, Config]:
    """Rebuild the model from the checkpoint alone (its config and classes) and load the weights:
    raw, EMA, or `auto` (what the run chose on validation)."""
    from ..config import from_dict

    cfg = from_dict(ckpt["config"])
    model = build_model(cfg, len(ckpt["classes"]))
    if weights == "auto":
        weights = ckpt.get("eval_weights", "raw")
    if weights == "ema":
        if ckpt.get("ema") is None:
            raise UserError("this checkpoint holds no EMA weights; use --weights raw")
        state = ckpt["ema"]["module"]
    else:
        state = ckpt["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise UserError(f"the checkpoint's weights do not fit {cfg.model}; "
                        "the file is damaged or from another version") from None
    return model.eval(), cfg


CALIBRATION_IMAGES = 512


def add_int8_args(p) -> None:
    """--int8 and its calibration flags, shared by predict, evaluate and export."""
    g = p.add_argument_group("int8 (CPU)")
    g.add_argument("--int8", action="store_true",
                   help="post-training static int8 quantization (x86 CPUs; fastest where bf16 "
                        "is not native), calibrated on training images of the run's dataset")
    g.add_argument("--calibration-images", type=int, default=CALIBRATION_IMAGES,
                   help="training images observed for the int8 activation ranges")


def int8_model(model: torch.nn.Module, cfg: Config, ckpt: dict, images: int = CALIBRATION_IMAGES,
               device: torch.device | None = None, data_dir: str | None = None, data=None,
               seed: int = 0, micro_batch: int | None = 64) -> tuple[torch.nn.Module, dict]:
    """The int8 CPU inference model of a checkpoint, calibrated on `images` training images of
    the checkpoint's own dataset (seeded draw, the evaluation geometry, the checkpoint's
    normalisation), read from `data_dir` when given. `data`: the dataset already loaded on the
    CPU, if the caller has it. Returns (model, a record of the calibration for the output)."""
    from ..data.augment import normalize
    from ..data.folder import FolderDataset
    from ..models import QuantizationError, quantize_int8
    from ..models.quantize import MIN_CALIBRATION

    if device is not None and device.type != "cpu":
        raise UserError("--int8 runs on the CPU; add --device cpu")
    if images < MIN_CALIBRATION:
        raise UserError(f"--calibration-images {images} is not valid; int8 calibration needs at "
                        f"least {MIN_CALIBRATION} images (default {CALIBRATION_IMAGES})")
    if data_dir is not None:
        cfg.data_dir = data_dir
    if data is None:
        try:
            data = load_data(cfg, torch.device("cpu"), progress=False)
        except UserError as exc:
            raise UserError(f"--int8 calibrates on the training images of {cfg.dataset}, which "
                            f"could not be loaded ({exc}); pass --data-dir") from None
    g = torch.Generator().manual_seed(seed)
    train = data.train
    if hasattr(train, "data"):  # CIFAR: the split is one uint8 tensor
        index = torch.randperm(len(train.data), generator=g)[:images]
        batch = train.data.images[index]
    else:  # image folder: decoded with the evaluation geometry, no augmentation
        ds = FolderDataset(train.dataset.split, data.input_size, train=False)
        index = torch.randperm(len(ds), generator=g)[:images]
        batch = torch.stack([ds[int(i)][0] for i in index])
    calibration = normalize(batch, ckpt["mean"], ckpt["std"])
    try:
        quantized = quantize_int8(model, calibration, micro_batch=micro_batch)
    except QuantizationError as exc:
        raise UserError(f"--int8: {exc}") from None
    record = {"precision": "int8", "calibration_images": len(calibration),
              "calibration_source": f"{cfg.dataset} training split", "calibration_seed": seed,
              "backend": "x86 (FX graph mode, static)"}
    return quantized, record
