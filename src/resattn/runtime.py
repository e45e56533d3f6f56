"""Where and in which precision to run: device and autocast choice, seeding."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from .config import CHOICES
from .errors import InvalidOption


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
        raise InvalidOption("device", name, "use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise InvalidOption("device", name, "use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidOption("device", name, "no CUDA device is available; use cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidOption("device", name, "MPS is not available; use cpu")
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
        raise InvalidOption("amp", amp, f"choose one of {', '.join(CHOICES['amp'])} (off = fp32)")
    if amp != "auto":
        if amp == "fp16" and device.type == "cpu":
            raise InvalidOption("amp", amp, "fp16 is for GPUs; use bf16 or off on the CPU")
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
