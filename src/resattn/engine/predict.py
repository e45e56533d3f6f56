"""Prediction on PIL images with a checkpoint's own geometry and normalisation."""

from __future__ import annotations

import torch
from PIL import Image
from torch import nn

from ..data.augment import normalize
from ..data.images import resize_center_crop, to_tensor
from .loop import autocast


def preprocess(images: list[Image.Image], size: int, crop_pct: float) -> torch.Tensor:
    """RGB images of any size -> (N, 3, size, size) uint8, as evaluation sees them."""
    return torch.stack([to_tensor(resize_center_crop(img, size, crop_pct)) for img in images])


@torch.inference_mode()
def predict_probs(model: nn.Module, batch: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                  device: torch.device, amp: str = "off", channels_last: bool = False
                  ) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> class probabilities (N, K) in float32."""
    x = normalize(batch.to(device), mean.to(device), std.to(device))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast(device, amp):
        logits = model(x)
    return logits.float().softmax(1).cpu()
