"""Parameter and FLOP counts. Build the model under `torch.device("meta")` to count for free."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

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


TABLE = "stats.json"  # parameters and MACs of every registered model, checked by a test


def live_stats(name: str, num_classes: int | None = None) -> dict[str, int]:
    """Build `name` on the meta device and count: parameters, forward MACs at its own input
    size, classes, and the classifier's input width (to adjust the counts to other classes)."""
    from .registry import create_model, get_spec

    with torch.device("meta"):  # no memory, no compute: shapes only
        model = create_model(name, num_classes=num_classes)
    return {"params": count_params(model), "flops": count_flops(model, get_spec(name).input_size),
            "num_classes": model.num_classes, "fc_in": model.get_classifier().in_features}


@cache
def _table() -> dict[str, dict[str, int]]:
    with resources.files("resattn.models").joinpath(TABLE).open() as f:
        return json.load(f)


def model_stats(name: str, num_classes: int | None = None, recount: bool = False
                ) -> dict[str, int]:
    """Parameters and forward MACs of a registered model, from the shipped table (instant) or,
    with `recount` or for a model the table lacks, counted live (seconds). Another number of
    classes changes only the classifier: (fc_in + 1) parameters and fc_in MACs per class."""
    row = None if recount else _table().get(name)
    if row is None:
        return live_stats(name, num_classes)
    extra = (num_classes if num_classes is not None else row["num_classes"]) - row["num_classes"]
    return {"params": row["params"] + extra * (row["fc_in"] + 1),
            "flops": row["flops"] + extra * row["fc_in"],
            "num_classes": row["num_classes"] + extra, "fc_in": row["fc_in"]}


def write_table(path: str | None = None) -> str:
    """Recount every registered model and write the shipped table (after changing the
    architecture table: `python -c "from resattn.models.stats import write_table; write_table()"`).
    """
    from .registry import list_models

    target = path or str(resources.files("resattn.models").joinpath(TABLE))
    with open(target, "w") as f:
        json.dump({name: live_stats(name) for name in list_models()}, f, indent=1)
        f.write("\n")
    return target

