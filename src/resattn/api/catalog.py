"""What resattn ships: the registered models and the published weights, as rows
(`resattn models`, `resattn models --pretrained`)."""

from __future__ import annotations

from ..engine.logger import format_duration
from ..models import get_spec, list_models
from ..models.stats import model_stats
from ..weights import get_weights, list_weights

__all__ = ["list_models", "list_weights", "model_rows", "weight_rows"]


def model_rows(num_classes: int | None = None, recount: bool = False) -> list[dict]:
    """One row per registered model: parameters and forward FLOPs (from the shipped table, or
    counted anew with `recount`), input size, classes, published tags, description."""
    rows = []
    for name in list_models():
        spec = get_spec(name)
        stats = model_stats(name, num_classes, recount=recount)
        rows.append({"name": name, "params": stats["params"], "flops": stats["flops"],
                     "input_size": spec.input_size, "num_classes": stats["num_classes"],
                     "pretrained": list_models(f"{name}.*", pretrained=True),
                     "description": spec.description})
    return rows


def weight_rows() -> list[dict]:
    """One row per published tag: model, dataset, test top-1 (plain and flip TTA), dtype, how and
    when it was trained, SHA-256."""
    rows = []
    for tag in list_weights():
        e = get_weights(tag)
        rows.append({"tag": tag, "model": e["model"], "dataset": e["dataset"],
                     "top1": e["metrics"]["top1"], "top1_tta": e["metrics"]["top1_tta"],
                     "test_images": e["metrics"]["test_images"], "dtype": e["dtype"],
                     "trained": f"{format_duration(e['training']['train_time_s'])} on "
                                f"{e['training']['hardware'].split(' (')[0]}, "
                                f"{e['training']['date']}", "sha256": e["sha256"]})
    return rows
