"""The attention module: p units, then a trunk and a soft mask side by side, then p units."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InvalidOption
from .residual import residual_units
from .soft_mask import make_soft_mask

RESIDUAL_TYPES = ("arl", "nal", "none")


class AttentionModule(nn.Module):
    """H = (1 + M) * T with attention residual learning (`arl`), M * T naive (`nal`), or T alone
    (`none`: the trunk at the same depth, no mask branch built at all).

    Args:
        chs: channels in and out (the module keeps the shape of its input).
        levels: pooling levels of the encoder-decoder mask.
        p: units before and after the trunk/mask split; t: trunk units;
        r: units between adjacent pooling layers of the mask.
    """

    def __init__(self, chs: int, levels: int, p: int = 1, t: int = 2, r: int = 1,
                 attention: str = "mixed", residual: str = "arl", mask: str = "encoder_decoder",
                 align_corners: bool = False, head_bias: bool = True):
        super().__init__()
        if residual not in RESIDUAL_TYPES:
            raise InvalidOption("residual", residual,
                                f"choose one of {', '.join(RESIDUAL_TYPES)}")
        self.residual = residual
        self.pre = residual_units(chs, chs, p)
        self.trunk = residual_units(chs, chs, t)
        self.soft_mask = (None if residual == "none"
                          else make_soft_mask(mask, chs, levels, r, attention, align_corners,
                                              head_bias))
        self.post = residual_units(chs, chs, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        trunk = self.trunk(x)
        if self.soft_mask is None:
            return self.post(trunk)
        mask = self.soft_mask(x)  # same shape as trunk
        if self.residual == "arl":
            out = (1 + mask) * trunk
        else:
            out = mask * trunk
        return self.post(out)
