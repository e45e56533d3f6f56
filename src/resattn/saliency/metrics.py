"""Deletion and insertion (Petsiuk et al., RISE, BMVC 2018): how faithful a saliency map is to
the model it explains. Deletion replaces the input's pixels with a baseline in the map's order,
most salient first, and follows the probability of the target class: a faithful map makes it
fall fast (small area under the curve). Insertion starts from the baseline and puts the pixels
back in the same order: a faithful map makes it rise fast (large area).

Written here rather than taken from a library: Captum has no deletion/insertion metric, and
Quantus's needs numpy round trips per step and a dozen dependencies; the metric itself is a
masked `torch.where` per step. All functions work on batches and on any device."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..errors import UserError

BASELINES = ("blur", "mean")


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A Gaussian blur of (N, C, H, W) images, each channel alone, reflected at the borders."""
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    out = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)  # along W
    return F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)  # along H


def baseline_images(x: torch.Tensor, kind: str) -> torch.Tensor:
    """What a removed pixel becomes, for normalised images `x`: the image blurred with a
    Gaussian of sigma = side / 16 pixels (2 px at 32, 14 px at 224), or the dataset mean (0
    after normalisation)."""
    if kind == "blur":
        return blur(x, sigma=x.shape[-1] / 16)
    if kind == "mean":
        return torch.zeros_like(x)
    raise UserError(f"baseline {kind!r} is not valid; choose {' or '.join(BASELINES)}")


def pixel_order(saliency: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(N, H, W) maps -> (N, H*W) pixel indices, most salient first; equal values (the flat
    regions of an upsampled or blocky map) in a random order, never in raster order, which
    would favour one side of the image."""
    flat = saliency.flatten(1).float()
    shuffle = torch.rand(flat.shape, generator=generator).argsort(1).to(flat.device)
    ranked = flat.gather(1, shuffle).argsort(dim=1, descending=True, stable=True)
    return shuffle.gather(1, ranked)


def steps_of(pixels: int, steps: int) -> list[int]:
    """How many pixels are changed at each of the steps + 1 points of a curve (0 ... all)."""
    return [round(k * pixels / steps) for k in range(steps + 1)]


@torch.no_grad()
def curves(prob: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
           base: torch.Tensor, order: torch.Tensor, steps: int,
           ends: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(deletion, insertion) curves, each (N, steps + 1): `prob(images)` (the target class's
    probability, (N,)) after k/steps of the pixels, in `order`, were replaced by `base`
    (deletion) or put back onto it (insertion). `ends`: prob(x) and prob(base), the same for
    every map, so computed once by the caller."""
    n, _, h, w = x.shape
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(h * w, device=order.device).expand(n, -1))
    rank = rank.view(n, 1, h, w)
    full, empty = ends
    deletion, insertion = [full], [empty]
    for count in steps_of(h * w, steps)[1:-1]:
        changed = rank < count  # (N, 1, H, W): the `count` most salient pixels
        both = torch.cat([torch.where(changed, base, x), torch.where(changed, x, base)])
        p = prob(both)
        deletion.append(p[:n])
        insertion.append(p[n:])
    deletion.append(empty)
    insertion.append(full)
    return torch.stack(deletion, 1), torch.stack(insertion, 1)


def area(curve: torch.Tensor) -> torch.Tensor:
    """The area under (N, steps + 1) curves over the fraction of pixels changed, 0 to 1
    (trapezoids): (N,)."""
    return torch.trapezoid(curve.float(), dx=1.0 / (curve.shape[1] - 1), dim=1)


def mean_interval(values: torch.Tensor, level: float = 0.95, resamples: int = 2000,
                  seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean of `values` and its percentile bootstrap interval (images
    resampled with replacement, seeded, so a report is reproducible)."""
    values = values.detach().double().cpu()
    if values.numel() < 2:
        m = float(values.mean()) if values.numel() else float("nan")
        return m, float("nan"), float("nan")
    g = torch.Generator().manual_seed(seed)
    means = values[torch.randint(len(values), (resamples, len(values)), generator=g)].mean(1)
    tail = (1 - level) / 2
    low, high = torch.quantile(means, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return float(values.mean()), float(low), float(high)
