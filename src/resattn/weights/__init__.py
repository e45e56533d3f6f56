"""Published weights as data: `registry.json` lists each tag (`attention56.cifar10`) with its
file, SHA-256, dataset, classes, normalisation, geometry, measured test accuracy, and how it was
trained (command, config, hardware, time, resattn version). The files are safetensors shipped
in this package and checked against their hash on every load."""

from __future__ import annotations

import fnmatch
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidOption, UserError
from ..files import sha256_of, write_text
from .safetensors import load_file, save_file

REGISTRY = "registry.json"


@cache
def _registry() -> dict[str, dict[str, Any]]:
    with resources.files(__name__).joinpath(REGISTRY).open() as f:
        return json.load(f)


def list_weights(pattern: str | None = None) -> list[str]:
    """Tags of the published weights, optionally filtered with shell wildcards."""
    tags = list(_registry())
    return tags if pattern is None else [t for t in tags if fnmatch.fnmatchcase(t, pattern)]


def is_tag(name: str) -> bool:
    return str(name) in _registry()


def get_weights(tag: str) -> dict[str, Any]:
    """The registry entry of `tag` (a copy)."""
    if tag not in _registry():
        raise InvalidOption("weights", tag, "published weights: " + (
            ", ".join(_registry()) or "none"))
    return json.loads(json.dumps(_registry()[tag]))


def default_tag(model: str) -> str | None:
    """The weights `create_model(model, pretrained=True)` loads: the first tag of that model."""
    return next((t for t, e in _registry().items() if e["model"] == model), None)


def weights_file(tag: str) -> Path:
    return Path(str(resources.files(__name__).joinpath(get_weights(tag)["file"])))


def load_state(tag: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict, registry entry) of `tag`, after checking the file's SHA-256."""
    entry, path = get_weights(tag), weights_file(tag)
    if not path.is_file():
        raise UserError(f"the weights file of {tag} ({path.name}) is missing from this "
                        "installation; reinstall resattn")
    found = sha256_of(path)
    if found != entry["sha256"]:
        raise UserError(f"{path} does not match its SHA-256 in the registry ({found[:12]}... "
                        f"instead of {entry['sha256'][:12]}...); reinstall resattn")
    tensors, _ = load_file(path)
    return tensors, entry


def tensor_of(values: list[float], shape: list[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(shape)


def write_weights(state: dict[str, torch.Tensor], folder: Path, meta: dict[str, Any]
                  ) -> tuple[Path, str]:
    """model.safetensors (fp32) and config.json (`meta`, everything load_model needs) in
    `folder`; returns (weights file, its SHA-256)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = save_file({k: v.float() if v.is_floating_point() else v for k, v in state.items()},
                     folder / "model.safetensors",
                     {"format": "pt", "model": meta["model"], "library": "resattn"})
    digest = sha256_of(path)
    write_text(folder / "config.json", json.dumps({**meta, "sha256": digest}, indent=1) + "\n")
    return path, digest


__all__ = ["default_tag", "get_weights", "is_tag", "list_weights", "load_state",
           "weights_file", "write_weights"]
