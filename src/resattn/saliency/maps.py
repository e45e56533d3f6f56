"""Saliency maps, one (N, H, W) float map per image at the input's size; a larger value means
"matters more". Only the order of the values is used by the faithfulness metrics.

- `mask`: the mean over channels of every attention module's soft mask, upsampled to the input
  and averaged over modules; `mask.stage<i>`: the same over the modules of stage i only.
- `gradcam`: Grad-CAM (Selvaraju et al., 2017) of the target class on the last feature map
  (after the final BN-ReLU, before pooling), with Captum's `LayerGradCam`.
- `occlusion`: the drop of the target logit when a square window is replaced by the baseline
  (by default the one the faithfulness metrics remove pixels to), with Captum's `Occlusion`
  (window a quarter of the input side, stride an eighth).
- `random`: uniform noise, the order every method must beat.

Captum is imported only when Grad-CAM or occlusion is asked for."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError

if TYPE_CHECKING:
    from ..models import ResidualAttentionNet

METHODS = ("mask", "gradcam", "occlusion", "random")
CAPTUM_METHODS = ("gradcam", "occlusion")


def captum_attr():
    """Captum's `captum.attr`, or a one-line error saying how to install it."""
    try:
        import captum.attr
    except ImportError:
        raise UserError("Grad-CAM and occlusion use Captum, which is not installed: "
                        "pip install 'resattn[explain]' (or choose --methods mask random)"
                        ) from None
    return captum.attr


def mask_maps(model: ResidualAttentionNet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """{"mask": all modules, "mask.stage<i>": stage i's modules}, each (N, H, W) in [0, 1]."""
    _, masks = model.forward_with_masks(x)
    stages: dict[str, list[torch.Tensor]] = {}
    for name, m in masks.items():  # (N, C, h, w) -> (N, H, W)
        up = F.interpolate(m.float().mean(1, keepdim=True), size=x.shape[-2:],
                           mode="bilinear", align_corners=False)[:, 0]
        stages.setdefault("mask." + name.split(".")[0], []).append(up)
    if not stages:
        raise UserError("this model has no attention masks (residual=none); choose "
                        "--methods gradcam occlusion random")
    every = [m for ms in stages.values() for m in ms]
    return {"mask": torch.stack(every).mean(0),
            **{k: torch.stack(v).mean(0) for k, v in stages.items()}}


def gradcam(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    attr = captum_attr()
    layer = getattr(model, "norm", None)
    if layer is None:
        raise UserError("Grad-CAM needs a Residual Attention Network (its final `norm` layer)")
    with torch.enable_grad():
        cam = attr.LayerGradCam(model, layer).attribute(
            x.detach().clone().requires_grad_(True), target=target, relu_attributions=True)
    up = attr.LayerAttribution.interpolate(cam.detach(), tuple(x.shape[-2:]), "bilinear")
    return up[:, 0].float()


def occlusion(model: Callable, x: torch.Tensor, target: torch.Tensor,
              baseline: torch.Tensor | float = 0.0, per_eval: int = 64) -> torch.Tensor:
    attr = captum_attr()
    size = x.shape[-1]
    window, stride = max(1, size // 4), max(1, size // 8)
    out = attr.Occlusion(model).attribute(
        x, sliding_window_shapes=(x.shape[1], window, window),
        strides=(x.shape[1], stride, stride), baselines=baseline, target=target,
        perturbations_per_eval=per_eval)
    return out.sum(1).float()  # (N, C, H, W) -> (N, H, W)


def saliency_maps(model: ResidualAttentionNet, x: torch.Tensor, target: torch.Tensor,
                  methods: Sequence[str], generator: torch.Generator,
                  predict: Callable | None = None,
                  baseline: torch.Tensor | float = 0.0) -> dict[str, torch.Tensor]:
    """{method: (N, H, W) map} for the normalised images `x` (N, C, H, W) and the classes
    `target` (N,). `mask` gives one map for all modules and one per stage. `predict`: a faster
    copy of `model` for the many forward passes of occlusion (default: `model`); `baseline`:
    what occlusion puts in the window (images like `x`, or 0, the dataset mean)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserError(f"unknown saliency method {unknown[0]!r}; choose from "
                        f"{', '.join(METHODS)}")
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        if "mask" in methods:
            out.update(mask_maps(model, x))
        if "occlusion" in methods:
            out["occlusion"] = occlusion(predict or model, x, target, baseline)
        if "random" in methods:
            n, _, h, w = x.shape
            out["random"] = torch.rand(n, h, w, generator=generator).to(x.device)
    if "gradcam" in methods:
        out["gradcam"] = gradcam(model, x, target)
    return {m: out[m] for m in sorted(out, key=lambda k: (METHODS.index(k.split(".")[0]), k))}
