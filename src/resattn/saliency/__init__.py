"""Saliency maps of a classifier and how faithful they are.

`maps`: where a model looks, as one (N, H, W) map per image: the attention modules' soft masks
(all modules, and per stage), Grad-CAM and occlusion (through Captum, the optional `[explain]`
extra) and a random map, the baseline every method must beat. `metrics`: the deletion and
insertion curves of a map (Petsiuk et al., RISE, BMVC 2018), their areas and a bootstrap
interval of the mean. Both take a model and tensors; nothing here reads data or draws."""

from .maps import CAPTUM_METHODS, METHODS, saliency_maps
from .metrics import BASELINES, area, baseline_images, curves, mean_interval, pixel_order

__all__ = ["BASELINES", "CAPTUM_METHODS", "METHODS", "area", "baseline_images", "curves",
           "mean_interval", "pixel_order", "saliency_maps"]
