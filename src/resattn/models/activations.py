"""Attention activations of paper Sec. 3.3: they turn mask logits into the soft mask M."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidOption

ATTENTION_TYPES = ("mixed", "channel", "spatial")


class MixedAttention(nn.Module):
    """f1: a sigmoid for every channel and position, M in (0, 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


class ChannelAttention(nn.Module):
    """f2: L2 normalisation across channels at each position (removes spatial information)."""

    def __init__(self, eps: float = 1e-12):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, p=2.0, dim=1, eps=self.eps)  # (N, C, H, W), unit norm over C


class SpatialAttention(nn.Module):
    """f3: each channel's map standardised by its own mean and std, then a sigmoid."""

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        std = x.std(dim=(2, 3), keepdim=True, unbiased=False)
        return torch.sigmoid((x - mean) / (std + self.eps))


def make_activation(attention: str) -> nn.Module:
    if attention == "mixed":
        return MixedAttention()
    if attention == "channel":
        return ChannelAttention()
    if attention == "spatial":
        return SpatialAttention()
    raise InvalidOption("attention", attention, f"choose one of {', '.join(ATTENTION_TYPES)}")
