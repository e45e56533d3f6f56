"""The attention module: p units, then a trunk and a soft mask side by side, then p units."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InvalidOption
from .residual import residual_units
from .soft_mask import make_soft_mask

RESIDUAL_TYPES = ("arl", "nal", "none")


@dataclass(frozen=True)
class AttentionOptions:
    """How every attention module of a network is built (one value, passed to each module).

    p: units before and after the trunk/mask split; t: trunk units; r: units between adjacent
    pooling layers of the mask (the paper's hyper-parameters). attention: the mask's activation
    (`mixed` sigmoid, `channel` L2 norm over channels, `spatial` sigmoid of the channel mean);
    residual: how mask and trunk meet (see `AttentionModule`); mask: `encoder_decoder` (the
    paper's bottom-up top-down branch) or `local` (two residual units, no pooling);
    upsample_align_corners: Caffe's Interp, as the authors' prototxts; mask_head_bias: a bias
    on the mask head's last convolution (the prototxts have none).
    """

    p: int = 1
    t: int = 2
    r: int = 1
    attention: str = "mixed"
    residual: str = "arl"
    mask: str = "encoder_decoder"
    upsample_align_corners: bool = False
    mask_head_bias: bool = True


class AttentionModule(nn.Module):
    """H = (1 + M) * T with attention residual learning (`arl`), M * T naive (`nal`), or T alone
    (`none`: the trunk at the same depth, no mask branch built at all).

    Args:
        chs: channels in and out (the module keeps the shape of its input).
        levels: pooling levels of the encoder-decoder mask.
        options: p, t, r and the mask's kind (`AttentionOptions`).
    """

    def __init__(self, chs: int, levels: int, options: AttentionOptions = AttentionOptions()):
        super().__init__()
        o = options
        if o.residual not in RESIDUAL_TYPES:
            raise InvalidOption("residual", o.residual,
                                f"choose one of {', '.join(RESIDUAL_TYPES)}")
        self.residual = o.residual
        self.pre = residual_units(chs, chs, o.p)
        self.trunk = residual_units(chs, chs, o.t)
        self.soft_mask = (None if o.residual == "none"
                          else make_soft_mask(o.mask, chs, levels, o.r, o.attention,
                                              o.upsample_align_corners, o.mask_head_bias))
        self.post = residual_units(chs, chs, o.p)

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
