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


SCALES = ("fixed", "stretch")
CMAP = "jet"


def _limits(heat: np.ndarray, scale: str) -> tuple[float, float]:
    """The colour range of one map: always [0, 1] (a soft mask's range, so pictures of
    different models and images compare), or the map's own [min, max] (`stretch`)."""
    if scale not in SCALES:
        raise UserError(f"scale={scale!r} is not valid; choose fixed or stretch")
    if scale == "fixed":
        return 0.0, 1.0
    return float(heat.min()), float(heat.max()) + 1e-12


def _overlay(ax, image: np.ndarray, heat: np.ndarray | None, title: str,
             scale: str = "fixed") -> None:
    ax.imshow(image, interpolation="nearest")
    if heat is not None:
        vmin, vmax = _limits(heat, scale)
        ax.imshow(heat, cmap=CMAP, alpha=0.5, interpolation="bilinear", vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def _colour_bar(fig: Figure, axes, scale: str, label: str = "mask value (fixed scale)") -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), CMAP), ax=axes, fraction=0.025,
                       pad=0.02, alpha=0.5)
    if scale == "fixed":
        bar.set_label(label, fontsize=8)
    else:
        bar.set_ticks([0, 1], labels=["min", "max"])
        bar.set_label("each panel stretched to its own range", fontsize=8)
    bar.ax.tick_params(labelsize=7)


def mask_figure(image: np.ndarray, maps: dict[str, np.ndarray], title: str,
                columns: int = 6, scale: str = "fixed",
                original: np.ndarray | None = None) -> Figure:
    """The input, then one overlay per map (labelled with the map's value range), and a colour
    bar. `scale`: "fixed" colours every map on [0, 1], so that pictures compare; "stretch"
    stretches each to its own range (and says so). `original`: the image before the model's
    resize and crop, shown first when it differs from the model's view."""
    _limits(np.zeros(1), scale)  # a bad scale fails before drawing
    inputs = [] if original is None else [(original, f"original {original.shape[1]}x"
                                                     f"{original.shape[0]}")]
    inputs.append((image, "model's view" if original is not None else "input"))
    panels = len(inputs) + len(maps)
    cols = min(columns, panels)
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(2.2 * cols + 0.8, 2.4 * rows + 0.4), dpi=100, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (picture, label) in zip(axes, inputs):
        _overlay(ax, picture, None, label)
    for ax, (label, heat) in zip(axes[len(inputs):], maps.items()):
        _overlay(ax, image, heat, f"{label}\n[{heat.min():.2f}, {heat.max():.2f}]", scale)
    for ax in axes[panels:]:
        ax.axis("off")
    _colour_bar(fig, axes, scale)
    fig.suptitle(title, fontsize=10)
    return fig


def mask_grid_figure(images: list[np.ndarray], maps: list[dict[str, np.ndarray]],
                     titles: list[str], label: str = "mask value (fixed scale)") -> Figure:
    """One row per image: the input and its maps (mean masks in TensorBoard during training;
    saliency maps of every method for `resattn explain`) on the fixed [0, 1] scale, with a
    colour bar that says what the value is (`label`)."""
    cols = 1 + max(len(m) for m in maps)
    fig = Figure(figsize=(1.8 * cols + 0.7, 1.9 * len(images)), dpi=80, layout="constrained")
    axes = fig.subplots(len(images), cols, squeeze=False)
    for row, (image, m, title) in enumerate(zip(images, maps, titles)):
        _overlay(axes[row, 0], image, None, title)
        for ax, (name, heat) in zip(axes[row, 1:], m.items()):
            _overlay(ax, image, heat, name if row == 0 else "")
        for ax in axes[row, 1 + len(m):]:
            ax.axis("off")
    _colour_bar(fig, axes, "fixed", label)
    return fig


def overlay_array(image: np.ndarray, heat: np.ndarray | None, size: int = 224,
                  scale: str = "fixed") -> np.ndarray:
    """The overlay `visualize` draws, as an RGB uint8 array of `size` x `size` for the web:
    the input (nearest), and the map through the jet colour map at half opacity (bilinear), on
    the fixed [0, 1] scale or stretched over its own range."""
    img = torch.from_numpy(np.ascontiguousarray(image)).float()
    if img.max() > 1.0:
        img = img / 255.0
    img = F.interpolate(img.permute(2, 0, 1)[None], size=(size, size), mode="nearest")[0]
    out = img.permute(1, 2, 0).numpy()
    if heat is not None:
        vmin, vmax = _limits(heat, scale)
        h = torch.from_numpy(np.ascontiguousarray(heat)).float()[None, None]
        h = F.interpolate(h, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
        scaled = ((h - vmin) / (vmax - vmin)).clamp(0, 1).numpy()
        colour = colormaps[CMAP](scaled)[..., :3]
        out = 0.5 * out + 0.5 * colour
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
