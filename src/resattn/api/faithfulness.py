"""`faithfulness`: do a model's saliency maps (its attention masks, Grad-CAM, occlusion) point at
what its prediction depends on? Deletion and insertion areas per method on a seeded draw of a
data split, with bootstrap intervals and the paired difference to a random order; the report
prints as a table and saves as JSON, Markdown and two pictures (`resattn explain`)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import from_dict
from ..data.augment import normalize
from ..data.build import draw_images
from ..errors import InvalidOption, UserError
from ..files import write_text
from ..models import ResidualAttentionNet, inference_model
from ..runtime import resolve_device
from ..saliency import (
    BASELINES,
    CAPTUM_METHODS,
    METHODS,
    area,
    baseline_images,
    curves,
    mean_interval,
    pixel_order,
    saliency_maps,
)
from ..saliency.maps import captum_attr
from .build import load_data
from .inference import SPLITS, model_and_checkpoint

DEFAULT_METHODS = ("mask", "gradcam", "occlusion")
EXAMPLES = 4  # images drawn in saliency_maps.png


@dataclass
class Faithfulness:
    """Per-image deletion and insertion curves of every method, and what the report needs."""

    model: str
    dataset: str
    split: str
    steps: int
    baseline: str
    seed: int
    labels: torch.Tensor  # (N,) true classes of the images drawn
    predicted: torch.Tensor  # (N,) the classes explained (the model's prediction)
    deletion: dict[str, torch.Tensor] = field(default_factory=dict)  # method -> (N, steps + 1)
    insertion: dict[str, torch.Tensor] = field(default_factory=dict)
    examples: dict[str, Any] = field(default_factory=dict)  # images and maps for the picture
    seconds: float = 0.0

    @property
    def images(self) -> int:
        return len(self.labels)

    @property
    def top1(self) -> float:
        return float((self.predicted == self.labels).float().mean()) if self.images else 0.0

    def scores(self) -> list[dict[str, Any]]:
        """One row per method: deletion and insertion AUC as (mean, low, high) with 95%
        bootstrap intervals over the images, and (where random order was measured) the paired
        difference to it: negative for deletion, positive for insertion = better than random."""
        rows = []
        random_del = area(self.deletion["random"]) if "random" in self.deletion else None
        random_ins = area(self.insertion["random"]) if "random" in self.insertion else None
        for method in self.deletion:
            d, i = area(self.deletion[method]), area(self.insertion[method])
            row: dict[str, Any] = {"method": method,
                                   "deletion": mean_interval(d, seed=self.seed),
                                   "insertion": mean_interval(i, seed=self.seed)}
            if random_del is not None and random_ins is not None and method != "random":
                row["deletion_vs_random"] = mean_interval(d - random_del, seed=self.seed)
                row["insertion_vs_random"] = mean_interval(i - random_ins, seed=self.seed)
            rows.append(row)
        return rows

    def table(self) -> str:
        """The scores as a Markdown table (what `resattn explain` prints)."""
        head = ["method", "deletion AUC (lower better)", "insertion AUC (higher better)",
                "deletion - random", "insertion - random"]
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                          *table_rows(self.scores())])

    def header(self) -> str:
        return (f"{self.model} on {self.images} {self.dataset} {self.split} images (seed "
                f"{self.seed}, top-1 {self.top1:.1%}); {self.steps} steps, {self.baseline} "
                "baseline; mean and 95% bootstrap interval over the images")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "dataset": self.dataset, "split": self.split,
                "images": self.images, "top1": self.top1, "steps": self.steps,
                "baseline": self.baseline, "seed": self.seed, "seconds": self.seconds,
                "scores": self.scores(),
                "mean_curves": {kind: {m: c.mean(0).tolist() for m, c in by.items()}
                                for kind, by in (("deletion", self.deletion),
                                                 ("insertion", self.insertion))}}

    def figures(self) -> dict[str, Any]:
        """{"faithfulness_curves.png": the mean curves with bands, "saliency_maps.png": the
        first images with every method's map as a percentile rank (the metrics use only the
        order, so every method is shown on the same [0, 1] scale)}."""
        from ..viz import curves_figure, mask_grid_figure

        curves_ = {"deletion": {m: c.numpy() for m, c in self.deletion.items()},
                   "insertion": {m: c.numpy() for m, c in self.insertion.items()}}
        ex = self.examples
        maps = [{m: v[k].numpy() for m, v in ex["maps"].items()}
                for k in range(len(ex["images"]))]
        title = self.header().replace(" (seed", "\n(seed", 1)  # two lines: it must fit
        return {"faithfulness_curves.png": curves_figure(curves_, title),
                "saliency_maps.png": mask_grid_figure(
                    [im.numpy() for im in ex["images"]], maps, ex["titles"],
                    label="saliency rank (0 = least, 1 = most salient)")}

    def save(self, out: str | Path) -> list[Path]:
        """faithfulness.json, faithfulness.md and the two pictures in folder `out` (each
        written atomically); returns the paths written."""
        from ..viz import save_figure

        out = Path(out)
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} is a file; give a folder for the report")
        out.mkdir(parents=True, exist_ok=True)
        written = [write_text(out / "faithfulness.json", json.dumps(self.to_dict(), indent=1)),
                   write_text(out / "faithfulness.md", self.header() + "\n\n" + self.table()
                              + "\n")]
        written += [save_figure(fig, out / name) for name, fig in self.figures().items()]
        return written


def format_interval(value: Sequence[float] | None, sign: bool = False) -> str:
    """(mean, low, high) as "0.512 [0.403, 0.618]"; signed for differences."""
    if value is None:
        return ""
    fmt = "+.3f" if sign else ".3f"
    return f"{value[0]:{fmt}} [{value[1]:{fmt}}, {value[2]:{fmt}}]"


def table_rows(scores: list[dict[str, Any]], prefix: str = "") -> list[str]:
    """One Markdown row per method of `Faithfulness.scores()` (or its JSON), after `prefix`
    (cells of the caller's own, such as a suite's run name)."""
    keys = ("deletion", "insertion", "deletion_vs_random", "insertion_vs_random")
    return [f"| {prefix}{r['method']} | "
            + " | ".join(format_interval(r.get(k), k.endswith("random")) for k in keys) + " |"
            for r in scores]


def percentile_rank(maps: torch.Tensor) -> torch.Tensor:
    """(K, H, W) maps -> each pixel's rank within its map, 0 (least) to 1 (most salient)."""
    flat = maps.flatten(1)
    ranks = flat.argsort(1).argsort(1).float() / max(1, flat.shape[1] - 1)
    return ranks.view_as(maps)


def check_options(images: int, methods: Sequence[str], steps: int, baseline: str,
                  batch_size: int) -> list[str]:
    """The methods to run (random order always among them), or a one-line error."""
    if images < 1:
        raise InvalidOption("images", images, "it must be >= 1")
    if steps < 2:
        raise InvalidOption("steps", steps, "it must be >= 2")
    if batch_size < 1:
        raise InvalidOption("batch_size", batch_size, "it must be >= 1")
    if baseline not in BASELINES:
        raise InvalidOption("baseline", baseline, f"choose {' or '.join(BASELINES)}")
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise InvalidOption("methods", bad[0] if bad else "", f"choose from {', '.join(METHODS)}")
    if any(m in CAPTUM_METHODS for m in methods):
        captum_attr()  # fails now, before any data is read, when Captum is missing
    return list(dict.fromkeys([*methods, "random"]))


class Runner:
    """The models (one for masks and gradients, a faster copy for the many forward passes) and
    the per-batch work: predict, draw the maps, measure the curves."""

    def __init__(self, model: ResidualAttentionNet, device: torch.device, methods: list[str],
                 steps: int, baseline: str, seed: int):
        self.net = inference_model(model.to(device), channels_last=False)
        self.fast = inference_model(model, channels_last=True,
                                    micro_batch=64 if device.type == "cpu" else None)
        self.methods, self.steps, self.baseline = methods, steps, baseline
        self.generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def prob(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = self.fast(x).float().softmax(1)
        return p.gather(1, target.repeat(len(x) // len(target))[:, None])[:, 0]

    def __call__(self, x: torch.Tensor, on_step) -> tuple[torch.Tensor, dict, dict, dict]:
        """(predicted classes, maps, deletion curves, insertion curves) of one batch."""
        with torch.no_grad():
            target = self.fast(x).argmax(1)
        base = baseline_images(x, self.baseline)
        maps = saliency_maps(self.net, x, target, self.methods, self.generator, self.fast, base)
        on_step()
        p = self.prob(torch.cat([x, base]), target)
        ends = (p[:len(x)], p[len(x):])
        deletion, insertion = {}, {}
        for method, m in maps.items():
            order = pixel_order(m, self.generator)
            deletion[method], insertion[method] = curves(
                lambda z: self.prob(z, target), x, base, order, self.steps, ends)
            on_step()
        return target, maps, deletion, insertion


def faithfulness(model_or_path: nn.Module | str | Path, split: str = "test", images: int = 500,
                 methods: Sequence[str] = DEFAULT_METHODS, *, data_dir: str | None = None,
                 weights: str = "auto", device: str = "auto", steps: int = 16,
                 baseline: str = "blur", batch_size: int = 50, seed: int = 0,
                 progress: bool = False) -> Faithfulness:
    """Deletion and insertion curves of each saliency method (`mask`, with one map per stage
    too; `gradcam`; `occlusion`; `random` is always added as the reference) for `images`
    images of the model's own dataset split (a seeded draw, normalised with the model's own
    statistics), explaining the class the model predicts. See `resattn.saliency`."""
    from tqdm import tqdm

    if split not in SPLITS:
        raise InvalidOption("split", split, "choose test or val")
    methods = check_options(images, methods, steps, baseline, batch_size)
    model, ckpt = model_and_checkpoint(model_or_path, weights)
    if not isinstance(model, ResidualAttentionNet):
        raise UserError(f"explain needs a Residual Attention Network, not a "
                        f"{type(model).__name__}")
    cfg = from_dict(ckpt["config"])
    if data_dir is not None:
        cfg.data_dir = data_dir
    data = load_data(cfg, torch.device("cpu"), progress=progress, splits=(split,),
                     stats=(ckpt["mean"], ckpt["std"]))
    loader = data.test if split == "test" else data.val
    if loader is None:
        raise UserError(f"this run has no {split} split (it was trained with val_size 0); "
                        "use the test split")
    pixels, labels = draw_images(loader, data.input_size, images, seed)
    device_ = resolve_device(device)
    runner = Runner(model, device_, methods, steps, baseline, seed)
    name = str(model_or_path) if not isinstance(model_or_path, nn.Module) else \
        str(getattr(model_or_path, "pretrained_cfg", {}).get("source", cfg.model))
    report = Faithfulness(name, cfg.dataset, split, steps, baseline, seed, labels,
                          torch.zeros_like(labels))
    start, batches = time.perf_counter(), pixels.split(batch_size)
    stages = {name.split(".")[0] for name, _ in runner.net.attention_modules()}
    # per batch: the maps, then the curves of each map (mask gives one map per stage too)
    maps_per_batch = 1 + len(methods) + (len(stages) if "mask" in methods else 0)
    with tqdm(total=len(batches) * maps_per_batch, desc="explain", unit="map",
              disable=not progress, dynamic_ncols=True, leave=False) as bar:
        for k, chunk in enumerate(batches):
            x = normalize(chunk.to(device_), ckpt["mean"].to(device_), ckpt["std"].to(device_))
            target, maps, deletion, insertion = runner(x, lambda: bar.update(1))
            report.predicted[k * batch_size:k * batch_size + len(chunk)] = target.cpu()
            for store, new in ((report.deletion, deletion), (report.insertion, insertion)):
                for m, c in new.items():
                    store[m] = torch.cat([store[m], c.cpu()]) if m in store else c.cpu()
            if k == 0:
                report.examples = examples(chunk, maps, target, labels, ckpt["classes"])
    report.seconds = time.perf_counter() - start
    return report


def examples(chunk: torch.Tensor, maps: dict[str, torch.Tensor], target: torch.Tensor,
             labels: torch.Tensor, classes: Sequence[str]) -> dict[str, Any]:
    k = min(EXAMPLES, len(chunk))
    return {"images": [im.permute(1, 2, 0) for im in chunk[:k]],
            "maps": {m: percentile_rank(v[:k].float().cpu()) for m, v in maps.items()},
            "titles": [f"true {classes[int(t)]}\npredicted {classes[int(p)]}"
                       for t, p in zip(labels[:k], target[:k])]}
