"""`explain` and `Explainer`: what a trained model predicts for an image and where each
attention module looks (its soft masks), as tensors and as the `resattn visualize` picture; the
browser explorer uses the same `Explainer`. One implementation of preprocessing (`preprocess`)
and of the mask hooks (`forward_with_masks`), shared with the rest of the library."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..data.augment import normalize
from ..data.images import load_rgb
from ..engine.predict import preprocess
from ..errors import UserError
from ..models import ResidualAttentionNet, inference_model
from ..runtime import resolve_device
from .build import load_model

ORIGINAL_SHOWN = 256  # longest side, in pixels, of the original image kept for the picture
GRADCAM_LABEL = "Grad-CAM / max"


@dataclass
class Explanation:
    image: np.ndarray  # (H, W, 3) uint8: the input as the network saw it (resized, cropped)
    top: list[tuple[str, float]]  # (class, probability), best first
    masks: dict[str, torch.Tensor]  # "stage<i>.module<j>" -> (C, h, w) soft mask in [0, 1]
    # the image as given (at most ORIGINAL_SHOWN pixels a side), when it is not the model's view
    original: np.ndarray | None = None
    # Grad-CAM of the predicted class on the last feature map, at the input size, divided by
    # its maximum (so in [0, 1]); None unless the Explainer was made with gradcam=True
    gradcam: np.ndarray | None = None

    def channels(self, module: str) -> int:
        return int(self.masks[module].shape[0])

    def figure(self, channels: list[int] | None = None, title: str | None = None,
               scale: str = "fixed"):
        """The `resattn visualize` picture (a matplotlib Figure): the original image when it is
        not the model's view, the model's view, then each module's soft mask (mean over
        channels, or the chosen `channels`) overlaid as a heat map, and Grad-CAM beside them
        when it was computed, with a colour bar.
        `scale`: "fixed" (every mask on [0, 1]: pictures compare) or "stretch" (each mask to
        its own range, labelled as such)."""
        from ..viz import mask_figure, mask_maps

        maps = mask_maps(self.masks, self.image.shape[:2], channels)
        if self.gradcam is not None:
            maps[GRADCAM_LABEL] = self.gradcam
        name, prob = self.top[0]
        return mask_figure(self.image, maps, title or f"predicted {name} ({prob:.1%})",
                           scale=scale, original=self.original)

    def save(self, path: str | Path, channels: list[int] | None = None,
             title: str | None = None, scale: str = "fixed") -> Path:
        """Write `figure()` as a PNG (atomically); returns the path written."""
        from ..viz import save_figure

        return save_figure(self.figure(channels, title, scale), path)


class Explainer:
    """Load `source` (a tag, run, checkpoint or weights folder) once; call it on PIL images."""

    def __init__(self, source: str | Path | nn.Module, device: str = "cpu", topk: int = 5,
                 weights: str = "auto", gradcam: bool = False):
        model = source if isinstance(source, nn.Module) else load_model(source, weights)
        if not isinstance(model, ResidualAttentionNet):
            raise UserError(f"explain needs a Residual Attention Network, not a "
                            f"{type(model).__name__}; build it with resattn.create_model or "
                            "resattn.load_model")
        meta = getattr(model, "pretrained_cfg", None)
        if not meta or meta.get("classes") is None:
            raise UserError("this model carries no classes (pretrained_cfg); load it with "
                            "resattn.load_model")
        self.name = str(meta.get("source", source))
        self.classes, self.size = list(meta["classes"]), int(meta["input_size"])
        self.crop_pct, self.mean, self.std = float(meta["crop_pct"]), meta["mean"], meta["std"]
        self.device = resolve_device(device)
        # a copy on the device: the caller's model stays where and as it was
        self.model = inference_model(model, channels_last=False).to(self.device)
        self.modules = [name for name, _ in self.model.attention_modules()]
        if not self.modules:
            raise UserError(f"{self.name} has no attention masks to show (residual=none)")
        self.topk = min(topk, len(self.classes))
        if gradcam:
            from ..saliency.maps import captum_attr

            captum_attr()  # a missing Captum fails here, before any image
        self.gradcam = gradcam

    def __call__(self, image: Image.Image) -> Explanation:
        image = image.convert("RGB")
        batch = preprocess([image], self.size, self.crop_pct)  # (1, 3, S, S)
        x = normalize(batch.to(self.device), self.mean.to(self.device), self.std.to(self.device))
        with torch.inference_mode():
            logits, masks = self.model.forward_with_masks(x)
        probs = logits.float().softmax(1)[0].cpu()
        top = probs.topk(self.topk)
        cam = None
        if self.gradcam:
            from ..saliency.maps import gradcam

            heat = gradcam(self.model, x, top.indices[:1].to(self.device))[0].cpu()
            cam = (heat / heat.max().clamp_min(1e-12)).numpy()
        original = None
        if image.size != (self.size, self.size):
            shown = image.copy()
            shown.thumbnail((ORIGINAL_SHOWN, ORIGINAL_SHOWN))
            original = np.asarray(shown)
        return Explanation(
            image=batch[0].permute(1, 2, 0).numpy(),
            top=[(self.classes[i], float(p)) for p, i in zip(top.values, top.indices)],
            masks={k: v[0].float().cpu() for k, v in masks.items()}, original=original,
            gradcam=cam)


def explain(model_or_source: str | Path | nn.Module, images: list, *, topk: int = 5,
            device: str = "cpu") -> list[Explanation]:
    """One `Explanation` per image (PIL images or paths): the top-k classes and every
    attention module's soft mask, with the model's own resize, crop and normalisation.
    `model_or_source`: a `load_model` model, a tag, a run, a checkpoint or a weights folder."""
    explainer = Explainer(model_or_source, device=device, topk=topk)
    return [explainer(img if isinstance(img, Image.Image) else load_rgb(img)) for img in images]
