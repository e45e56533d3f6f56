"""Parameter and FLOP counts. Build the model under `torch.device("meta")` to count for free."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_size: int, in_chans: int = 3) -> int:
    """Forward multiply-accumulates for one image, the unit the paper calls FLOPs (its Table 2
    gives 6.2G for ImageNet Attention-56). Convolutions and linear layers are counted.

    Runs one forward pass on the model's device; on the meta device it costs nothing.
    """
    device = next(model.parameters()).device
    x = torch.zeros(1, in_chans, input_size, input_size, device=device)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2  # FlopCounterMode counts 2 FLOPs per multiply-add
