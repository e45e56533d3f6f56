"""Weights for sharing: a folder in the Hugging Face layout (model.safetensors, config.json and a
model card README.md) that `load_model` reads back; no network is needed or used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import UserError
from ..files import write_text
from ..weights import write_weights
from .build import (
    checkpoint_of,
    description_digest,
    load_source,
    model_from_checkpoint,
    weights_meta,
    weights_of,
)

EXPORT_FILES = ("model.safetensors", "config.json", "README.md")


def is_weights_folder(folder: Path) -> bool:
    """An earlier export of ours: its config.json is resattn's (model, classes, config, sha256)."""
    try:
        meta = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and {"model", "classes", "config", "sha256"} <= set(meta)


def check_export_target(out: Path, force: bool) -> None:
    """Never write over what is not ours: a folder that holds files and is not an earlier
    export, or a file without the `.sha256` beside it that our exports write, needs `force`."""
    if force or not out.exists():
        return
    if out.is_dir():
        present = sorted(p.name for p in out.iterdir())
        if present and not is_weights_folder(out):
            raise UserError(f"{out} holds files ({', '.join(present[:3])}"
                            f"{', ...' if len(present) > 3 else ''}) and is not an earlier "
                            "resattn export; choose a new or empty folder, or pass --force "
                            f"to write {', '.join(EXPORT_FILES)} into it (nothing else is "
                            "touched)")
    elif not Path(f"{out}.sha256").is_file():
        raise UserError(f"{out} exists and is not an earlier resattn export (no {out.name}.sha256 "
                        "beside it); choose another name, or pass --force to replace it")


def run_summary(source: str | Path) -> dict[str, Any] | None:
    """summary.json of the run a checkpoint belongs to, if it sits beside it."""
    path = Path(source).expanduser()
    folder = path if path.is_dir() else path.parent
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def save_pretrained(source: nn.Module | str | Path, folder: str | Path, weights: str = "auto",
                    force: bool = False) -> Path:
    """Write `source` (a run, checkpoint, weights folder, tag or `load_model` model) as
    model.safetensors (fp32), config.json and README.md into `folder`; returns the folder.
    A folder that holds other files and is not an earlier export is refused unless `force`
    (which still writes only those three files)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file; give a folder for the weights")
    check_export_target(folder, force)
    if isinstance(source, nn.Module):
        model, ckpt, summary = source, checkpoint_of(source), None
        which = getattr(source, "pretrained_cfg", {}).get("weights", "raw")
    else:
        ckpt = load_source(source)
        model, _ = model_from_checkpoint(ckpt, weights)
        summary = run_summary(source)
        which = weights_of(ckpt, weights)
    meta = weights_meta(ckpt)
    meta["weights"] = which  # which of the run's weights the file holds: raw or ema
    meta["config_sha256"] = description_digest(meta)
    if summary is not None:
        meta["metrics"] = {k: summary.get(k) for k in ("test_acc", "test_top5", "test_images",
                                                         "val_acc", "tta", "eval_weights")}
        meta["training"] = {k: summary.get(k) for k in ("epochs", "steps", "train_time_s",
                                                          "device", "amp", "world_size")}
        meta["environment"] = summary.get("environment")
    try:
        path, digest = write_weights(model.state_dict(), folder, meta)
        write_text(folder / "README.md", model_card({**meta, "sha256": digest}))
    except OSError as exc:
        raise UserError(f"cannot write {folder} ({exc.strerror or exc}); choose another place"
                        ) from None
    return folder


def model_card(meta: dict[str, Any]) -> str:
    """A model card from the run's own records: what it is, how it was trained and measured,
    how to use it, what it is not for."""
    cfg, metrics = meta["config"], meta.get("metrics") or {}
    training, env = meta.get("training") or {}, meta.get("environment") or {}

    def pct(value: Any) -> str:
        return f"{100 * value:.2f}%" if isinstance(value, (int, float)) else "not recorded"

    lines = [
        "---", "library_name: resattn", "tags: [image-classification, residual-attention-network]",
        f"datasets: [{cfg['dataset']}]", "---", "",
        f"# {meta['model']} on {cfg['dataset']}", "",
        "A Residual Attention Network (Wang et al., CVPR 2017, arXiv 1704.06904) trained with "
        "resattn.", "",
        "## Use", "", "```python", "import resattn",
        "model = resattn.load_model(\"path/to/this/folder\")  # model.pretrained_cfg: classes, "
        "mean, std, input size",
        "resattn.predict(model, [\"photo.jpg\"], topk=3)", "```", "",
        "or `resattn predict path/to/this/folder photo.jpg`.", "",
        "## Data and preprocessing", "",
        f"- classes ({meta['num_classes']}): {', '.join(meta['classes'][:20])}"
        f"{' ...' if meta['num_classes'] > 20 else ''}",
        f"- input: {meta['input_size']}x{meta['input_size']} RGB, crop_pct {meta['crop_pct']}, "
        f"{meta['normalization']} normalisation (mean/std in config.json)",
        f"- training images: {cfg['dataset']} training split, {cfg['val_size']} held out for "
        f"validation (split seed {cfg.get('split_seed', 0)})", "",
        "## Training", "",
        f"- recipe: {cfg['schedule']} schedule, {cfg['optimizer']} lr {cfg['lr']:g}, batch "
        f"{cfg['batch_size']}, weight decay {cfg['weight_decay']:g}, label smoothing "
        f"{cfg['label_smoothing']:g}, EMA {'on' if cfg['ema'] else 'off'}"
        + (f", time budget {cfg['time_budget']:g} s" if cfg.get("time_budget") else ""),
        f"- trained: {training.get('epochs', 'n/a')} epochs, "
        f"{training.get('train_time_s', 0) or 0:.0f} s on {env.get('device_name', 'n/a')} "
        f"(precision {training.get('amp', 'n/a')}), resattn {env.get('resattn', 'n/a')}, "
        f"torch {env.get('torch', 'n/a')}, {env.get('date', 'date not recorded')}",
        "- the full configuration is `config` in config.json", "",
        "## Evaluation", "",
        f"- test top-1 {pct(metrics.get('test_acc'))}, top-5 {pct(metrics.get('test_top5'))} on "
        f"{metrics.get('test_images', 'n/a')} test images"
        f"{' with flip TTA' if metrics.get('tta') else ''}; validation top-1 "
        f"{pct(metrics.get('val_acc'))}", "",
        "## Limits", "",
        f"- Trained on {cfg['dataset']} only: images unlike it (other classes, sizes, domains) "
        "get confident but meaningless answers. Fine-tune it on your own images with "
        "`resattn train --init`.",
        "- Not evaluated for robustness, calibration or fairness; not for decisions about "
        "people.", "",
        f"Weights: model.safetensors, fp32, SHA-256 {meta['sha256']}.", "",
    ]
    return "\n".join(lines)
