"""int8 inference on x86 CPUs: post-training static quantization of the BN-folded model.

FX graph mode (`torch.ao.quantization.quantize_fx`) with the x86 backend: convolutions and the
linear head in int8 (oneDNN / FBGEMM kernels that use AVX512-VNNI where the CPU has it),
activations quantized per tensor with ranges observed on calibration images. The soft mask's
sigmoid, the bilinear upsampling and the `(1 + M) * T` combination run on quantized tensors too.
It is in torch itself, so it needs no new dependency.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from .inference import MicroBatched, fold_batchnorm

MIN_CALIBRATION = 2


class QuantizationError(ValueError):
    """The model or the platform cannot be quantized; the message says what to use instead."""


def quantized_engines() -> list[str]:
    return list(torch.backends.quantized.supported_engines)


def int8_supported() -> bool:
    return "x86" in quantized_engines()


def quantize_int8(model: nn.Module, calibration: torch.Tensor, batch_size: int = 64,
                  micro_batch: int | None = 64) -> nn.Module:
    """An int8 copy of `model` for CPU inference, calibrated on `calibration` (N, C, H, W)
    normalised float images (N >= 2, e.g. a few hundred training images). BatchNorm is folded
    first; the original model is left untouched. Returns an eval-mode module that takes and
    returns float tensors, run in slices of `micro_batch` images (None: whole batches)."""
    if not int8_supported():
        raise QuantizationError(
            "int8 needs PyTorch's x86 quantization backend, which this platform lacks "
            f"(has: {', '.join(quantized_engines()) or 'none'}); "
            "use fp32 or bf16 instead")
    if calibration.ndim != 4 or len(calibration) < MIN_CALIBRATION:
        raise QuantizationError(f"int8 calibration needs at least {MIN_CALIBRATION} images, "
                                f"got {len(calibration) if calibration.ndim == 4 else 0}")
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    float_model = fold_batchnorm(copy.deepcopy(model).float().cpu()).eval()
    calibration = calibration.float().cpu().contiguous()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FX mode's notices about its own future
            prepared = prepare_fx(float_model, get_default_qconfig_mapping("x86"),
                                  example_inputs=(calibration[:1],))
            with torch.inference_mode():
                for part in calibration.split(batch_size):
                    prepared(part)
            quantized = convert_fx(prepared)
    except (RuntimeError, NotImplementedError, TypeError, AssertionError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise QuantizationError(f"this model cannot be quantized to int8 ({first}); "
                                "use fp32 or bf16 instead") from None
    for p in quantized.parameters():
        p.requires_grad_(False)
    quantized.eval()
    return MicroBatched(quantized, micro_batch).eval() if micro_batch else quantized
