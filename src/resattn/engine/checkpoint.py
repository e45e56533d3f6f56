"""Checkpoints: plain containers only (so `torch.load(weights_only=True)` reads them), written
atomically (temporary file, fsync, rename), with a SHA-256 of their whole content inside,
checked on load: a file with flipped bytes is refused, not silently used."""

from __future__ import annotations

import hashlib
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from ..files import replacing

FORMAT = "resattn-checkpoint"
VERSION = 1


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)  # legacy: ('MT19937', keys, pos, has_gauss, gauss)
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss),
                         float(cached)))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def payload_sha256(state: Any) -> str:
    """SHA-256 of a checkpoint's content, walked in a fixed order: every tensor's dtype, shape
    and bytes, every other value's repr. The same content gives the same digest after a
    save / load round trip."""
    digest = hashlib.sha256()

    def walk(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            digest.update(f"D{len(value)}".encode())
            for key in sorted(value, key=repr):
                digest.update(repr(key).encode())
                walk(value[key])
        elif isinstance(value, (list, tuple)):
            digest.update(f"{type(value).__name__}{len(value)}".encode())
            for item in value:
                walk(item)
        else:
            digest.update(repr(value).encode())

    walk(state)
    return digest.hexdigest()


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Written whole or not at all (`files.replacing`): a crash or a full disk at any moment
    leaves either the old checkpoint or the new one, never a torn file."""
    # what load_checkpoint returned may be saved again: its format marks are set anew
    content = {k: v for k, v in state.items() if k not in ("format", "version")}
    # torch.save's writer raises RuntimeError when the disk is full
    with replacing(path, what="the checkpoint", advice="free some space or choose another "
                   "output folder, then resume", errors=(OSError, RuntimeError)) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **content,
                    "payload_sha256": payload_sha256(content)}, tmp)
    return Path(path)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run directory (its last.pt)."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found; pass a .pt file or a run directory")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = resolve_checkpoint(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile,
            ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} is not a readable checkpoint (corrupt or truncated: "
                        f"{first[:120]}); use another one, e.g. best.pt or last.pt") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path} is not a resattn checkpoint")
    if state.get("version") != VERSION:
        raise UserError(f"{path} has checkpoint version {state.get('version')}; this resattn "
                        f"reads version {VERSION}")
    stored = state.pop("payload_sha256", None)
    content = {k: v for k, v in state.items() if k not in ("format", "version")}
    if stored is not None and stored != payload_sha256(content):
        raise UserError(f"{path} is corrupt: its content does not match the checksum stored "
                        "in it; use another checkpoint, e.g. best.pt or last.pt")
    return state
