"""Deployable files of a trained model. ONNX and TorchScript hold the fast inference model (BN
folded; fp32, or int8 in TorchScript) with a dynamic batch size and, in the file's metadata, its
classes, normalisation and geometry; each file is checked against PyTorch once written.
safetensors is a weights folder in the Hugging Face layout (`save_pretrained`)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import from_dict
from ..errors import InvalidOption, UserError
from ..files import replacing, write_text
from ..models import inference_model
from ..weights import sha256_of
from .build import weights_meta
from .inference import CALIBRATION_IMAGES, int8_model, model_and_checkpoint
from .sharing import check_export_target, save_pretrained

FORMATS = ("onnx", "torchscript", "safetensors")
METADATA_KEY = "resattn"  # the metadata entry of ONNX and TorchScript files
# the TorchScript-based ONNX exporter's range; the soft mask's bilinear upsampling needs 11
OPSETS = range(11, 21)
DEFAULT_OPSET = 18
MAX_DIFF = 1e-3  # the largest logit difference from PyTorch an export may show


def export(source: nn.Module | str | Path, out: str | Path, format: str = "onnx", *,
           weights: str = "auto", opset: int = DEFAULT_OPSET, int8: bool = False,
           data_dir: str | None = None, calibration_images: int = CALIBRATION_IMAGES,
           force: bool = False) -> dict[str, Any]:
    """Write `source` (a run, checkpoint, weights folder, published tag or `load_model` model)
    to `out` as `format` (onnx, torchscript: a file; safetensors: a folder). The file appears
    whole or not at all, with `OUT.sha256` beside it (`sha256sum -c`). `int8`: TorchScript
    only, calibrated on training images as `evaluate(..., int8=True)` is.

    Returns {"path", "format", "precision"} and, for files, "bytes", "sha256" and
    "max_abs_diff": the largest logit difference from PyTorch on a batch of 5 random inputs
    (another batch size than the one traced, which checks the dynamic batch axis too).

    What is not ours is never written over: an existing file without the `OUT.sha256` our
    exports write beside it, or a folder holding other files, needs `force`."""
    if format not in FORMATS:
        raise InvalidOption("format", format, f"choose one of {', '.join(FORMATS)}")
    if int8 and format != "torchscript":
        raise InvalidOption("format", format, "int8 exports to TorchScript only; use "
                            "torchscript")
    if format == "onnx":
        if opset not in OPSETS:
            raise InvalidOption("opset", opset, f"use {OPSETS.start} to {OPSETS.stop - 1} "
                                f"(default {DEFAULT_OPSET})")
        _onnx_modules()  # missing packages: say so before anything is read or made
    out = Path(out).expanduser()
    if format == "safetensors":
        return {"path": str(save_pretrained(source, out, weights, force)), "format": format,
                "precision": "fp32"}
    if out.is_dir():
        suffix = "onnx" if format == "onnx" else "pt"
        raise UserError(f"{out} is a directory; give a file name, e.g. {out}/model.{suffix}")
    check_export_target(out, force)
    model, ckpt = model_and_checkpoint(source, weights)  # a copy of a model passed in
    meta = export_metadata(ckpt)
    if int8:
        cfg = from_dict(ckpt["config"])
        if data_dir is not None:
            cfg.data_dir = data_dir
        model, record = int8_model(model, cfg, ckpt, calibration_images, micro_batch=None)
        meta.update(record)
    else:
        model = inference_model(model.cpu(), channels_last=False)
        meta["precision"] = "fp32"
    size = int(ckpt["input_size"])
    g = torch.Generator().manual_seed(0)  # the caller's random stream is left alone
    writer = _write_torchscript if format == "torchscript" else _write_onnx
    with replacing(out, what="the export") as tmp:  # whole and checked, or not at all
        exported = writer(model, torch.randn(2, 3, size, size, generator=g), meta, tmp, opset)
        check = torch.randn(5, 3, size, size, generator=g)
        with torch.inference_mode():
            diff = (exported(check) - model(check)).abs().max().item()
        if not diff < MAX_DIFF:  # the exporter's bug, not the user's: keep its traceback
            raise RuntimeError(f"the {format} export disagrees with PyTorch (max |logit diff| "
                               f"{diff:.2e}); nothing was written")
    digest = sha256_of(out)
    write_text(f"{out}.sha256", f"{digest}  {out.name}\n", what="the checksum")
    return {"path": str(out), "format": format, "precision": meta["precision"],
            "bytes": out.stat().st_size, "sha256": digest, "max_abs_diff": diff}


# what of a weights folder's config.json a deployed file carries: no training configuration
DEPLOYED_KEYS = ("model", "classes", "input_size", "crop_pct", "normalization", "mean",
                 "mean_shape", "std", "std_shape")


def export_metadata(ckpt: dict) -> dict:
    """What a deployed file needs beside the graph: classes, geometry and normalisation."""
    meta = weights_meta(ckpt)
    return {**{key: meta[key] for key in DEPLOYED_KEYS},
            "input": "float32 (N, 3, S, S) RGB, x = (pixels / 255 - mean) / std",
            "output": "logits (N, classes)"}


def _write_torchscript(model: nn.Module, example: torch.Tensor, meta: dict, path: Path,
                       opset: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Trace `model` into `path` with `meta` inside; returns the file loaded back."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={f"{METADATA_KEY}.json":
                                                        json.dumps(meta)})
        return torch.jit.load(str(path))


def _onnx_modules():
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise UserError("ONNX export needs the onnx, onnxscript and onnxruntime packages: "
                        "pip install 'resattn[export]'") from None
    return onnx, onnxruntime


def _write_onnx(model: nn.Module, example: torch.Tensor, meta: dict, path: Path,
                opset: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Export `model` into `path` at `opset` with `meta` in its metadata, checked by onnx;
    returns an onnxruntime session of the file as a function of torch tensors."""
    onnx, ort = _onnx_modules()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (example,), str(path), input_names=["images"],
                              output_names=["logits"], opset_version=opset, dynamo=False,
                              dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
        except torch.onnx.errors.OnnxExporterError as exc:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise UserError(f"ONNX export at opset {opset} failed ({first}); use the default "
                            f"opset {DEFAULT_OPSET}") from None
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
