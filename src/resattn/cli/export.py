"""`resattn export CKPT --format onnx|torchscript --out FILE`: a deployable model with its class
names and normalisation in the file's metadata; the export is checked against PyTorch."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import warnings
from pathlib import Path

import torch

from ..api import int8_model, load_source, model_from_checkpoint
from ..api.sharing import save_pretrained
from ..engine.checkpoint import follow_umask
from ..errors import UserError
from ..models import inference_model
from ..weights import sha256_of
from .common import add_int8_args, add_source_arg, add_weights_arg

METADATA_KEY = "resattn"
# the TorchScript exporter's range; the soft mask's bilinear upsampling needs opset 11
OPSETS = range(11, 21)


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="export to ONNX, TorchScript or safetensors",
                       description="ONNX / TorchScript: the fast inference model (BN folded, "
                                   "fp32) with a dynamic batch size. Input: float (N, 3, S, S) "
                                   "RGB, (x / 255 - mean) / std; output: logits (N, classes). The "
                                   "metadata carries classes, mean, std and geometry. "
                                   "safetensors: a folder in the Hugging Face layout "
                                   "(model.safetensors, config.json, a model card README.md) "
                                   "that resattn.load_model and every command read back.")
    add_source_arg(p)
    p.add_argument("--format", choices=("onnx", "torchscript", "safetensors"), required=True)
    p.add_argument("--out", required=True,
                   help="output file (.onnx / .pt), or a folder for safetensors")
    add_weights_arg(p)
    p.add_argument("--opset", type=int, default=18,
                   help=f"ONNX opset, {OPSETS.start} to {OPSETS.stop - 1} (default 18)")
    p.add_argument("--data-dir", default=None, help="the run's dataset, for --int8 calibration")
    add_int8_args(p)
    p.set_defaults(command=name)


def export_metadata(ckpt: dict) -> dict:
    cfg = ckpt["config"]
    return {
        "model": cfg["model"], "classes": list(ckpt["classes"]),
        "input_size": int(ckpt["input_size"]), "crop_pct": float(ckpt.get("crop_pct", 1.0)),
        "normalization": cfg["normalization"],
        "mean": ckpt["mean"].flatten().tolist(), "mean_shape": list(ckpt["mean"].shape),
        "std": ckpt["std"].flatten().tolist(), "std_shape": list(ckpt["std"].shape),
        "input": "float32 (N, 3, S, S) RGB, x = (pixels / 255 - mean) / std",
        "output": "logits (N, classes)",
    }


def _atomic_target(out: Path):
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise UserError(f"cannot write {out} ({exc.strerror or exc}); choose another --out"
                        ) from None
    os.close(fd)
    follow_umask(tmp)
    return Path(tmp)


def write_sha256(out: Path) -> str:
    """OUT.sha256 beside the export, in `sha256sum -c` format: a copy can be checked."""
    digest = sha256_of(out)
    Path(f"{out}.sha256").write_text(f"{digest}  {out.name}\n")
    return digest


def export_torchscript(model: torch.nn.Module, example: torch.Tensor, meta: dict,
                       out: Path) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice
        traced = torch.jit.trace(model, example, check_trace=False)
        tmp = _atomic_target(out)
        try:
            torch.jit.save(traced, str(tmp), _extra_files={f"{METADATA_KEY}.json":
                                                           json.dumps(meta)})
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return torch.jit.load(str(out))


def export_onnx(model: torch.nn.Module, example: torch.Tensor, meta: dict, out: Path,
                opset: int):
    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        raise UserError("ONNX export needs the onnx, onnxscript and onnxruntime packages: "
                        "pip install 'resattn[export]'") from None
    tmp = _atomic_target(out)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(model, (example,), str(tmp), input_names=["images"],
                                  output_names=["logits"], opset_version=opset, dynamo=False,
                                  dynamic_axes={"images": {0: "batch"},
                                                "logits": {0: "batch"}})
            except torch.onnx.errors.OnnxExporterError as exc:
                first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
                raise UserError(f"ONNX export at opset {opset} failed ({first}); use the "
                                "default --opset 18") from None
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"images": x.numpy()})[0])


def run(args: argparse.Namespace) -> int:
    if args.int8 and args.format != "torchscript":
        raise UserError("--int8 exports to TorchScript only; use --format torchscript")
    if args.opset not in OPSETS:
        raise UserError(f"--opset {args.opset} is not valid; use {OPSETS.start} to "
                        f"{OPSETS.stop - 1} (default 18)")
    out = Path(args.out)
    if args.format == "safetensors":
        if args.int8:
            raise UserError("--int8 exports to TorchScript only; use --format torchscript")
        folder = save_pretrained(args.checkpoint, out, args.weights)
        print(f"{folder}: model.safetensors, config.json, README.md (load with "
              f"resattn.load_model({str(folder)!r}))")
        return 0
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file name, e.g. {out}/model.onnx")
    ckpt = load_source(args.checkpoint)
    model, cfg = model_from_checkpoint(ckpt, args.weights)
    meta = export_metadata(ckpt)
    if args.int8:
        if args.data_dir is not None:
            cfg.data_dir = args.data_dir
        model, record = int8_model(model, cfg, ckpt, args.calibration_images, micro_batch=None)
        meta.update(record)
    else:
        model = inference_model(model, channels_last=False)
        meta["precision"] = "fp32"
    size = int(ckpt["input_size"])
    example = torch.randn(2, 3, size, size)
    if args.format == "torchscript":
        exported = export_torchscript(model, example, meta, out)
    else:
        exported = export_onnx(model, example, meta, out, args.opset)
    # another batch size than the one traced: checks the dynamic batch axis and the numbers
    check = torch.randn(5, 3, size, size)
    with torch.inference_mode():
        diff = (exported(check) - model(check)).abs().max().item()
    if not diff < 1e-3:
        raise UserError(f"the exported model disagrees with PyTorch (max |diff| {diff:.2e}); "
                        "report this with the checkpoint")
    digest = write_sha256(out)
    print(f"{out} ({args.format}, {meta['precision']}, {out.stat().st_size / 1e6:.1f} MB, "
          f"sha256 {digest[:12]}): max |logit diff| {diff:.1e} vs PyTorch at batch 5")
    return 0
