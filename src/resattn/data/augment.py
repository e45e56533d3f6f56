"""Batched augmentation as pure tensor functions, on whatever device the batch lives.

Every random choice comes from an explicit `torch.Generator` on the batch's device, so the same
seed gives the same batch. Crop and flip work on uint8 or float; the others on float.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidOption


def _rand(n: int, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device)


def _randint(high: int, n: int, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randint(high, (n,), generator=g, device=device)


def random_crop(x: torch.Tensor, padding: int, g: torch.Generator,
                mode: str = "constant") -> torch.Tensor:
    """Pad every side by `padding` (zeros, or `reflect`), then crop back to (H, W) at a random
    offset per image. (N, C, H, W) -> (N, C, H, W)."""
    if padding == 0:
        return x
    n, c, h, w = x.shape
    if mode == "reflect":
        # reflect padding is not implemented for uint8: pad in float, exact for uint8 values
        padded = F.pad(x.float(), (padding,) * 4, mode="reflect").to(x.dtype)
    elif mode == "constant":
        padded = F.pad(x, (padding,) * 4)
    else:
        raise InvalidOption("crop_mode", mode, "choose constant or reflect")
    dy = _randint(2 * padding + 1, n, g, x.device)
    dx = _randint(2 * padding + 1, n, g, x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (N, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (N, 1, 1, W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def flip_lr(x: torch.Tensor, g: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability p."""
    flip = (_rand(len(x), g, x.device) < p)[:, None, None, None]
    return torch.where(flip, x.flip(3), x)


def rotate(x: torch.Tensor, max_degrees: float, g: torch.Generator) -> torch.Tensor:
    """Rotate each image by an angle drawn uniformly from [-max_degrees, max_degrees] about its
    centre (bilinear, zeros outside). Float input."""
    if max_degrees == 0:
        return x
    angle = (_rand(len(x), g, x.device) * 2 - 1) * math.radians(max_degrees)
    cos, sin = angle.cos(), angle.sin()
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1),
                         torch.stack([sin, cos, zero], 1)], 1)  # (N, 2, 3)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _boxes(n: int, h: int, w: int, box_h: torch.Tensor, box_w: torch.Tensor,
           g: torch.Generator, device: torch.device) -> torch.Tensor:
    """(N, 1, H, W) bool masks of boxes of the given sizes, centred uniformly in the image
    and clipped at its border."""
    cy = _rand(n, g, device) * h
    cx = _rand(n, g, device) * w
    y0 = (cy - box_h / 2).clamp(0, h)[:, None]
    y1 = (cy + box_h / 2).clamp(0, h)[:, None]
    x0 = (cx - box_w / 2).clamp(0, w)[:, None]
    x1 = (cx + box_w / 2).clamp(0, w)[:, None]
    ys = torch.arange(h, device=device)[None, :] + 0.5
    xs = torch.arange(w, device=device)[None, :] + 0.5
    inside_y = (ys >= y0) & (ys < y1)  # (N, H)
    inside_x = (xs >= x0) & (xs < x1)  # (N, W)
    return (inside_y[:, :, None] & inside_x[:, None, :])[:, None]


def cutout(x: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """Zero one size x size square per image (DeVries & Taylor, 2017)."""
    if size == 0:
        return x
    n, _, h, w = x.shape
    side = torch.full((n,), float(size), device=x.device)
    return x.masked_fill(_boxes(n, h, w, side, side, g, x.device), 0)


def _beta(alpha: float, g: torch.Generator) -> float:
    # torch's Beta sampler takes no generator: seed numpy's from the torch generator
    seed = int(torch.randint(2**62, (1,), generator=g, device=g.device).item())
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def one_hot(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    off = smoothing / num_classes
    return torch.full((len(labels), num_classes), off, device=labels.device).scatter_(
        1, labels[:, None], 1 - smoothing + off)


def mixup(x: torch.Tensor, targets: torch.Tensor, alpha: float,
          g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend the batch with a permutation of itself by lambda ~ Beta(alpha, alpha).
    targets: (N, K) probabilities, blended the same way."""
    lam = _beta(alpha, g)
    perm = torch.randperm(len(x), generator=g, device=x.device)
    return lam * x + (1 - lam) * x[perm], lam * targets + (1 - lam) * targets[perm]


def cutmix(x: torch.Tensor, targets: torch.Tensor, alpha: float,
           g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste a box from a permuted partner into each image; the targets mix by the box's actual
    area after clipping (Yun et al., 2019)."""
    n, _, h, w = x.shape
    lam = _beta(alpha, g)
    perm = torch.randperm(n, generator=g, device=x.device)
    cut = math.sqrt(1 - lam)
    side_h = torch.full((n,), cut * h, device=x.device)
    side_w = torch.full((n,), cut * w, device=x.device)
    box = _boxes(n, h, w, side_h, side_w, g, x.device)  # (N, 1, H, W)
    mixed = torch.where(box, x[perm], x)
    area = box.flatten(1).float().mean(1)[:, None]  # (N, 1) fraction pasted
    return mixed, (1 - area) * targets + area * targets[perm]


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float (x / 255 - mean) / std; mean and std broadcast as
    (C, H, W) for per-pixel or (C, 1, 1) for per-channel statistics."""
    return (x.float().div_(255) - mean) / std
