"""Pre-activation bottleneck residual unit (He et al., 2016), the building block of every model."""

from __future__ import annotations

import torch
from torch import nn


def conv1x1(in_chs: int, out_chs: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, kernel_size=1, stride=stride, bias=bias)


def conv3x3(in_chs: int, out_chs: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, kernel_size=3, stride=stride, padding=1, bias=False)


class ResidualUnit(nn.Module):
    """BN-ReLU-1x1 conv-BN-ReLU-3x3 conv-BN-ReLU-1x1 conv, bottleneck width out_chs / 4.

    The shortcut is the identity unless the shape changes (channels or stride); only then is a
    1x1 projection created, so no unit carries parameters it never uses.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1):
        super().__init__()
        mid_chs = out_chs // 4
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.conv1 = conv1x1(in_chs, mid_chs)
        # bn2 and bn3 become Identity when inference_model folds them into the convs
        self.bn2: nn.Module = nn.BatchNorm2d(mid_chs)
        self.conv2 = conv3x3(mid_chs, mid_chs, stride)  # the stride sits in the 3x3 conv
        self.bn3: nn.Module = nn.BatchNorm2d(mid_chs)
        self.conv3 = conv1x1(mid_chs, out_chs)
        self.relu = nn.ReLU(inplace=True)
        needs_projection = stride != 1 or in_chs != out_chs
        self.shortcut = conv1x1(in_chs, out_chs, stride) if needs_projection else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, in, H, W) -> (N, out, H / stride, W / stride)
        out = self.relu(self.bn1(x))
        # the projection reads the pre-activated input, as in the pre-activation ResNet
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + shortcut


def residual_units(in_chs: int, out_chs: int, count: int, stride: int = 1) -> nn.Sequential:
    """`count` units; the first one changes channels and stride, the others keep the shape."""
    units = [ResidualUnit(in_chs if i == 0 else out_chs, out_chs, stride if i == 0 else 1)
             for i in range(count)]
    return nn.Sequential(*units)
