"""Soft mask branches: the paper's bottom-up top-down encoder-decoder and the local baseline."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidOption
from .activations import make_activation
from .residual import conv1x1, residual_units

MASK_TYPES = ("encoder_decoder", "local")


def upsample_to(x: torch.Tensor, like: torch.Tensor, align_corners: bool = False
                ) -> torch.Tensor:
    """Bilinear upsampling to the spatial size of `like`: never a hard-coded size.
    `align_corners=True` is Caffe's Interp layer, as in the authors' prototxts."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=align_corners)


def mask_head(chs: int, bias: bool = True) -> nn.Sequential:
    """BN-ReLU-1x1 conv-BN-ReLU-1x1 conv: the logits the attention activation reads. The
    authors' prototxts have no bias on the last conv (`bias=False`)."""
    return nn.Sequential(
        nn.BatchNorm2d(chs), nn.ReLU(inplace=True), conv1x1(chs, chs),
        nn.BatchNorm2d(chs), nn.ReLU(inplace=True), conv1x1(chs, chs, bias=bias),
    )


class EncoderDecoderMask(nn.Module):
    """Bottom-up top-down mask (paper Fig. 2).

    Down: `levels` times a 3x3/2 max-pool followed by r units. Each level above the bottom also
    feeds a skip-connection unit. The bottom adds r more units. Up: at each level, bilinear
    upsampling to the size of the matching feature map, add the skip, r units. A last upsampling
    returns to the input size, then the head and the activation give M, shaped like the input.
    """

    def __init__(self, chs: int, levels: int, r: int, attention: str = "mixed",
                 align_corners: bool = False, head_bias: bool = True):
        super().__init__()
        self.align_corners = align_corners
        if levels < 1:
            raise InvalidOption("levels", levels, "an encoder-decoder mask needs >= 1")
        self.pools = nn.ModuleList(nn.MaxPool2d(3, stride=2, padding=1) for _ in range(levels))
        self.down = nn.ModuleList(residual_units(chs, chs, r) for _ in range(levels))
        self.skips = nn.ModuleList(residual_units(chs, chs, 1) for _ in range(levels - 1))
        self.bottom = residual_units(chs, chs, r)
        self.up = nn.ModuleList(residual_units(chs, chs, r) for _ in range(levels - 1))
        self.head = mask_head(chs, head_bias)
        self.act = make_activation(attention)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        skips = []
        for i, (pool, down) in enumerate(zip(self.pools, self.down)):
            h = down(pool(h))  # (N, C, H, W) -> (N, C, ~H/2, ~W/2)
            if i < len(self.skips):
                skips.append(self.skips[i](h))
        h = self.bottom(h)
        for up, skip in zip(self.up, reversed(skips)):
            h = up(upsample_to(h, skip, self.align_corners) + skip)
        return self.act(self.head(upsample_to(h, x, self.align_corners)))


class LocalMask(nn.Module):
    """Paper Table 4 baseline: three residual units at full resolution, no pooling."""

    def __init__(self, chs: int, attention: str = "mixed", units: int = 3,
                 head_bias: bool = True):
        super().__init__()
        self.body = residual_units(chs, chs, units)
        self.head = mask_head(chs, head_bias)
        self.act = make_activation(attention)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.head(self.body(x)))


def make_soft_mask(mask: str, chs: int, levels: int, r: int, attention: str,
                   align_corners: bool = False, head_bias: bool = True) -> nn.Module:
    if mask == "encoder_decoder":
        return EncoderDecoderMask(chs, levels, r, attention, align_corners, head_bias)
    if mask == "local":
        return LocalMask(chs, attention, head_bias=head_bias)
    raise InvalidOption("mask", mask, f"choose one of {', '.join(MASK_TYPES)}")
