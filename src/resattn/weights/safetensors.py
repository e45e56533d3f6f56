"""Weights files in the safetensors format (https://huggingface.co/docs/safetensors), through
Hugging Face's `safetensors` package: no pickle, memory-mapped reads, malformed headers and
overlapping or out-of-range offsets refused by the reference implementation. What this wrapper
adds is resattn's: a file written whole or not at all, and an unreadable or damaged file as a
one-line UserError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from ..files import replacing


def _package() -> Any:
    try:
        import safetensors.torch
    except ImportError:  # a dependency; only an incomplete install lacks it
        raise UserError("reading and writing weights needs the safetensors package: "
                        "pip install safetensors") from None
    return safetensors


def save_file(tensors: dict[str, torch.Tensor], path: str | Path,
              metadata: dict[str, str] | None = None) -> Path:
    """Write `tensors` and string `metadata` atomically to `path`."""
    package = _package()
    path = Path(path)
    data = package.torch.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                              metadata={str(k): str(v) for k, v in (metadata or {}).items()})
    with replacing(path, what="the weights") as tmp:
        tmp.write_bytes(data)
    return path


def load_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file; a damaged file is a one-line UserError."""
    package = _package()
    path = Path(path)
    try:
        with package.safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or exc})") from None
    except package.SafetensorError as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path} is not a valid safetensors file ({why})") from None
    return tensors, dict(metadata)
