"""Soft masks overlaid on the input as heat maps (paper Fig. 1 style)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.figure import Figure

from ..errors import UserError


def mask_maps(masks: dict[str, torch.Tensor], size: tuple[int, int],
              channels: list[int] | None = None) -> dict[str, np.ndarray]:
    """{name: (C, h, w) mask} -> {label: (H, W) map}: the mean over channels, or one map per
    chosen channel, upsampled bilinearly to the input size."""
    out = {}
    for name, m in masks.items():
        m = m.float()
        if channels is None:
            picks = {name: m.mean(0, keepdim=True)}
        else:
            bad = [c for c in channels if not 0 <= c < m.shape[0]]
            if bad:
                raise UserError(f"channel {bad[0]} does not exist in {name}, which has "
                                 f"{m.shape[0]} channels")
            picks = {f"{name} ch{c}": m[c:c + 1] for c in channels}
        for label, one in picks.items():
            up = F.interpolate(one[None], size=size, mode="bilinear", align_corners=False)
            out[label] = up[0, 0].cpu().numpy()
    return out


def _overlay(ax, image: np.ndarray, heat: np.ndarray | None, title: str) -> None:
    ax.imshow(image, interpolation="nearest")
    if heat is not None:
        ax.imshow(heat, cmap="jet", alpha=0.5, interpolation="bilinear",
                  vmin=float(heat.min()), vmax=float(heat.max()) + 1e-12)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def mask_figure(image: np.ndarray, maps: dict[str, np.ndarray], title: str,
                columns: int = 6) -> Figure:
    """The input, then one overlay per map (labelled, with the map's value range)."""
    panels = 1 + len(maps)
    cols = min(columns, panels)
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(2.2 * cols, 2.4 * rows + 0.4), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    _overlay(axes[0], image, None, "input")
    for ax, (label, heat) in zip(axes[1:], maps.items()):
        _overlay(ax, image, heat, f"{label}\n[{heat.min():.2f}, {heat.max():.2f}]")
    for ax in axes[panels:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def mask_grid_figure(images: list[np.ndarray], maps: list[dict[str, np.ndarray]],
                     titles: list[str]) -> Figure:
    """One row per image: the input and its mean masks (TensorBoard during training)."""
    cols = 1 + max(len(m) for m in maps)
    fig = Figure(figsize=(1.8 * cols, 1.9 * len(images)), dpi=80)
    axes = fig.subplots(len(images), cols, squeeze=False)
    for row, (image, m, title) in enumerate(zip(images, maps, titles)):
        _overlay(axes[row, 0], image, None, title)
        for ax, (label, heat) in zip(axes[row, 1:], m.items()):
            _overlay(ax, image, heat, label if row == 0 else "")
        for ax in axes[row, 1 + len(m):]:
            ax.axis("off")
    fig.tight_layout()
    return fig


def overlay_array(image: np.ndarray, heat: np.ndarray | None, size: int = 224) -> np.ndarray:
    """The overlay `visualize` draws, as an RGB uint8 array of `size` x `size` for the web:
    the input (nearest), and the map stretched over its own range through the jet colour map
    at half opacity (bilinear)."""
    img = torch.from_numpy(np.ascontiguousarray(image)).float()
    if img.max() > 1.0:
        img = img / 255.0
    img = F.interpolate(img.permute(2, 0, 1)[None], size=(size, size), mode="nearest")[0]
    out = img.permute(1, 2, 0).numpy()
    if heat is not None:
        h = torch.from_numpy(np.ascontiguousarray(heat)).float()[None, None]
        h = F.interpolate(h, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
        scaled = ((h - h.min()) / (h.max() - h.min() + 1e-12)).numpy()
        colour = colormaps["jet"](scaled)[..., :3]
        out = 0.5 * out + 0.5 * colour
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
