"""`evaluate` and `predict` of trained models, and the int8 CPU path they share."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from ..config import Config, from_dict
from ..data import FOLDER_DATASETS, BatchTransform
from ..data.images import load_rgb
from ..engine.loop import evaluation_model, log_probs, score
from ..engine.predict import predict_probs, preprocess
from ..errors import InvalidOption, UserError
from ..runtime import resolve_amp, resolve_device
from .build import checkpoint_of, load_data, load_source, model_from_checkpoint

CALIBRATION_IMAGES = 512
SPLITS = ("test", "val")


def model_and_checkpoint(model_or_path: nn.Module | str | Path, weights: str
                          ) -> tuple[nn.Module, dict[str, Any]]:
    """The model to run, in eval mode. A model the caller passes is copied, never changed:
    evaluating in the middle of a training loop must not leave it in eval mode, on another
    device or in another memory format."""
    if isinstance(model_or_path, nn.Module):
        return copy.deepcopy(model_or_path).eval(), checkpoint_of(model_or_path)
    ckpt = load_source(model_or_path)
    model, _ = model_from_checkpoint(ckpt, weights)
    return model, ckpt


def int8_model(model: nn.Module, cfg: Config, ckpt: dict, images: int = CALIBRATION_IMAGES,
               device: torch.device | None = None, data=None, seed: int = 0,
               micro_batch: int | None = 64) -> tuple[nn.Module, dict[str, Any]]:
    """The int8 CPU inference model of a checkpoint, calibrated on `images` training images of
    the checkpoint's own dataset (seeded draw, the evaluation geometry, the checkpoint's
    normalisation). `data`: the dataset already loaded on the CPU, if the caller has it.
    Returns (model, a record of the calibration for the output)."""
    from ..data.augment import normalize
    from ..data.build import draw_images
    from ..models import QuantizationError, quantize_int8
    from ..models.quantize import MIN_CALIBRATION

    if device is not None and device.type != "cpu":
        raise InvalidOption("device", str(device), "int8 runs on the CPU; use cpu")
    if images < MIN_CALIBRATION:
        raise InvalidOption("calibration_images", images, f"int8 calibration needs at least "
                            f"{MIN_CALIBRATION} images (default {CALIBRATION_IMAGES})")
    if data is None:
        try:
            data = load_data(cfg, torch.device("cpu"), progress=False, splits=("train",),
                             stats=(ckpt["mean"], ckpt["std"]))
        except UserError as exc:
            raise UserError(f"int8 calibrates on the training images of {cfg.dataset}, which "
                            f"could not be loaded ({exc}); give the data folder (--data-dir)"
                            ) from None
    assert data.train is not None  # loaded above, or by the caller with the training split
    batch, _ = draw_images(data.train, data.input_size, images, seed)
    calibration = normalize(batch, ckpt["mean"], ckpt["std"])
    try:
        quantized = quantize_int8(model, calibration, micro_batch=micro_batch)
    except QuantizationError as exc:
        raise UserError(f"int8: {exc}") from None
    record = {"precision": "int8", "calibration_images": len(calibration),
              "calibration_source": f"{cfg.dataset} training split", "calibration_seed": seed,
              "backend": "x86 (FX graph mode, static)"}
    return quantized, record


def evaluate(model_or_path: nn.Module | str | Path, split: str = "test", *,
             data_dir: str | None = None, weights: str = "auto", tta: bool = False,
             batch_size: int | None = None, test_subset: int = 0, device: str = "auto",
             amp: str = "auto", int8: bool = False,
             calibration_images: int = CALIBRATION_IMAGES, return_predictions: bool = False,
             input_size: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Loss, top-1, top-5, per-class accuracy and the confusion matrix of a trained model (a
    checkpoint, a run directory or a `load_model` model) on its dataset's test split, or on
    the validation images its run held out. The data splits are rebuilt from the checkpoint's
    own configuration and normalised with its own statistics. `input_size`: image folders
    only, evaluate at another side than the model was trained at (the paper tests Attention-92
    at 320 px), with the same crop fraction; needs per-channel normalisation."""
    if split not in SPLITS:
        raise InvalidOption("split", split, "choose test or val")
    model, ckpt = model_and_checkpoint(model_or_path, weights)
    cfg = _evaluation_config(ckpt, data_dir, batch_size, test_subset, input_size)
    device_ = resolve_device(device)
    amp_ = resolve_amp(amp, device_)
    # only the split evaluated (and the training images int8 calibrates on), normalised with
    # the checkpoint's own statistics: nothing else is read, moved or summarised
    data = load_data(cfg, device_, progress=progress,
                     splits=(split, "train") if int8 else (split,),
                     stats=(ckpt["mean"], ckpt["std"]))
    loader = data.test if split == "test" else data.val
    if loader is None:
        raise UserError(f"this run has no {split} split (it was trained with val_size 0); "
                        "evaluate the test split")
    # the checkpoint's own normalisation, exactly as in training
    loader.transform = BatchTransform(loader.transform.cfg, ckpt["mean"], ckpt["std"],
                                      len(ckpt["classes"])).to(device_)
    precision: dict[str, Any] = {"precision": amp_ if amp_ != "off" else "fp32"}
    channels_last = cfg.channels_last
    if int8:  # calibrates on the training split just loaded (on the CPU)
        model, precision = int8_model(model, cfg, ckpt, calibration_images, device_, data=data)
        amp_, channels_last = "off", False
    else:  # as training evaluated it: the same module, the same kernels, the same numbers
        model = evaluation_model(model.to(device_), device_, channels_last)
    probs, labels = log_probs(model, loader, device_, amp_, channels_last,
                              "tta" if tta else "plain")
    metrics = score(probs, labels, len(ckpt["classes"]), return_predictions)
    result = {"model": cfg.model, "dataset": cfg.dataset, "split": split,
              "input_size": data.input_size,
              "images": metrics["count"], "loss": metrics["loss"], "top1": metrics["top1"],
              "top5": metrics["top5"], "tta": tta, **precision,
              "per_class": dict(zip(ckpt["classes"], metrics["per_class"])),
              "confusion": metrics["confusion"], "classes": list(ckpt["classes"])}
    if return_predictions:
        result["predictions"] = metrics["predictions"]
        result["image_ids"] = _image_ids(loader, len(metrics["predictions"]))
    return result


def _evaluation_config(ckpt: dict[str, Any], data_dir: str | None, batch_size: int | None,
                       test_subset: int, input_size: int | None) -> Config:
    """The checkpoint's configuration with what `evaluate` changes: where the data is, the
    batch size, the test subset and the input side."""
    if batch_size is not None and batch_size < 1:
        raise InvalidOption("batch_size", batch_size, "it must be >= 1")
    if test_subset < 0:
        raise InvalidOption("test_subset", test_subset, "it must be >= 0")
    cfg = from_dict(ckpt["config"])
    if data_dir is not None:
        cfg.data_dir = data_dir
    if batch_size is not None:
        cfg.eval_batch_size = batch_size
    cfg.test_subset = test_subset
    if input_size is not None:
        cfg.input_size = check_input_size(input_size, cfg, ckpt)
    return cfg


def check_input_size(size: int, cfg: Config, ckpt: dict[str, Any]) -> int:
    """An evaluation side other than the training one: image folders only, and only with
    per-channel statistics (a per-pixel mean image has the training side)."""
    if size < 1:
        raise InvalidOption("input_size", size, "it must be >= 1")
    trained = int(ckpt["input_size"])
    if size == trained:
        return size
    if cfg.dataset not in FOLDER_DATASETS:
        raise InvalidOption("input_size", size, f"{cfg.dataset} images are {trained} px; "
                            "another size applies to image folders")
    if ckpt["mean"].shape[-1] != 1:
        raise InvalidOption("input_size", size, f"this model was trained with a per-pixel mean "
                            f"image of {trained} px, which fits no other size; train with "
                            "--normalization channel to evaluate at other sizes")
    return size


def _image_ids(loader, count: int) -> list | None:
    """Which image each prediction is: its position in the dataset's own files (CIFAR: the
    test batch, or the training batches for val), or its path (image folders)."""
    data_set = getattr(loader, "data", None)  # CIFAR: an ImageSet, which keeps its index
    if data_set is not None:
        images = data_set.index.tolist()
    else:
        split = getattr(getattr(loader, "dataset", None), "split", None)
        images = [str(p) for p in split.paths] if split is not None else []
    return images if len(images) == count else None  # unreadable files were dropped


class Predictor:
    """A model prepared once for prediction (BN folded, channels-last, CPU slices; or int8),
    called on batches of PIL images: returns class probabilities (N, K)."""

    def __init__(self, model_or_path: nn.Module | str | Path, *, weights: str = "auto",
                 device: str = "auto", amp: str = "auto", int8: bool = False,
                 calibration_images: int = CALIBRATION_IMAGES, data_dir: str | None = None):
        from ..models import inference_model

        model, ckpt = model_and_checkpoint(model_or_path, weights)
        self.device = resolve_device(device)
        self.amp = resolve_amp(amp, self.device)
        self.precision: dict[str, Any] = {"precision": self.amp if self.amp != "off" else "fp32"}
        if int8:
            cfg = from_dict(ckpt["config"])
            if data_dir is not None:
                cfg.data_dir = data_dir
            model, self.precision = int8_model(model, cfg, ckpt, calibration_images,
                                               self.device)
            self.amp, self.channels_last = "off", False
        else:
            model = inference_model(model.to(self.device), channels_last=True,
                                    micro_batch=64 if self.device.type == "cpu" else None)
            self.channels_last = True
        self.model, self.classes = model, list(ckpt["classes"])
        self.size, self.crop_pct = int(ckpt["input_size"]), float(ckpt.get("crop_pct", 1.0))
        self.mean, self.std = ckpt["mean"], ckpt["std"]

    def __call__(self, images: list[Image.Image]) -> torch.Tensor:
        return predict_probs(self.model, preprocess(images, self.size, self.crop_pct),
                             self.mean, self.std, self.device, self.amp,
                             channels_last=self.channels_last)


def predict(model_or_path: nn.Module | str | Path, images: list, *, topk: int = 5,
            batch_size: int = 64, **options: Any) -> list[list[tuple[str, float]]]:
    """Top-k (class, probability) of each image (PIL images or paths), with the checkpoint's
    own resize, crop and normalisation. `options`: weights, device, amp, int8, data_dir."""
    if topk < 1 or batch_size < 1:
        raise UserError("topk and batch_size must be >= 1")
    predictor = Predictor(model_or_path, **options)
    k = min(topk, len(predictor.classes))
    out = []
    for start in range(0, len(images), batch_size):
        batch = [img if isinstance(img, Image.Image) else load_rgb(img)
                 for img in images[start:start + batch_size]]
        top = predictor(batch).topk(k, dim=1)
        out += [[(predictor.classes[c], p) for c, p in zip(idx, probs)]
                for idx, probs in zip(top.indices.tolist(), top.values.tolist())]
    return out
