"""`train`: one run from a Config (recipe < config file < keyword options), or a resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..config import (
    ARCHITECTURE,
    DEFAULTS,
    RESUMABLE,
    Config,
    from_dict,
    resolve,
    to_dict,
    to_toml,
)
from ..engine.checkpoint import load_checkpoint, resolve_checkpoint
from ..engine.distributed import barrier, broadcast_object, cleanup, init_distributed
from ..engine.logger import RunLogger, new_run_dir
from ..engine.trainer import Records, Trainer, place_model
from ..errors import InvalidOption, UserError
from ..models import ResidualAttentionNet
from ..runtime import resolve_amp, resolve_device, seed_everything
from .build import (
    build_model,
    check_model_options,
    load_data,
    load_source,
    model_from_checkpoint,
    model_info,
)
from .plan import make_plan, notes, optimization, settings


def train(config: Config | None = None, *, recipe: str | None = None,
          config_file: str | None = None, resume: str | Path | None = None,
          progress: bool = True, **options: Any) -> tuple[dict[str, Any], Path]:
    """Train one run, exactly as `resattn train` does.

    Args:
        config: a resolved Config; or build one from `recipe` ('paper', 'fast'),
            `config_file` (a TOML file) and `options` (any configuration key: model, data_dir,
            epochs, train_subset, ...), layered in that order as on the command line.
        resume: a run directory or checkpoint to continue bit-exactly; `options` may then
            change only what a resume allows (epochs, time_budget, device, ...).
    Returns (summary dict, run directory). Raises `Interrupted` after saving on Ctrl-C.
    """
    if resume is not None:
        if config is not None or recipe or config_file:
            raise UserError("a resume takes the run's own configuration; give no recipe, "
                            "config file or Config")
        path = resolve_checkpoint(resume)
        ckpt = load_checkpoint(path)
        return train_config(config_for_resume(ckpt, options), path.parent, ckpt, progress)
    if config is None:
        config = resolve(recipe, config_file, options)
    elif recipe or config_file or options:
        raise UserError("pass either a Config or recipe / config_file / options, not both")
    return train_config(config, progress=progress)


def config_for_resume(ckpt: dict, overrides: dict[str, Any]) -> Config:
    saved = ckpt.get("config")
    if not isinstance(saved, dict):
        raise UserError("the checkpoint holds no configuration; it is damaged or from another "
                        "program")
    for key, value in overrides.items():
        if key not in RESUMABLE and saved.get(key) != value:
            raise UserError(f"resume: the checkpoint's run has {key}={saved.get(key)!r}, not "
                            f"{value!r}; drop --{key.replace('_', '-')} or start a new run")
    values = {**saved, **{k: v for k, v in overrides.items() if k in RESUMABLE}}
    for one, other in (("epochs", "iterations"), ("iterations", "epochs")):
        if one in overrides and other not in overrides:
            values[other] = 0
    return from_dict(values)


def train_config(cfg: Config, run_dir: Path | None = None, resume: dict | None = None,
                 progress: bool = True) -> tuple[dict[str, Any], Path]:
    """Train one run as `cfg` says, in `run_dir` (a new one under cfg.out by default)."""
    check_model_options(cfg)  # a bad model or option fails before any data is read
    # --init: read and hashed once, checked before any data is read, loaded after seeding
    init_source = check_init(cfg) if cfg.init and resume is None else None
    out = Path(cfg.out).expanduser()
    if run_dir is None and out.exists() and not out.is_dir():
        raise UserError(f"the output folder {out} is a file; choose another one (--out)")
    device = resolve_device(cfg.device)
    dist_info = init_distributed(device.type)  # a no-op unless launched by torchrun
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
    amp = resolve_amp(cfg.amp, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
    seed_everything(cfg.seed)  # the same on every rank: identical initial weights
    if dist_info.enabled and not dist_info.is_main:
        barrier()  # rank 0 downloads and verifies first
    data = load_data(cfg, device, dist_info.rank, dist_info.world_size,
                     progress=progress and dist_info.is_main)
    if dist_info.enabled and dist_info.is_main:
        barrier()
    assert data.train is not None  # every split was built
    make_plan(cfg, len(data.train))  # too few images for one batch: fail before the run dir
    model = build_model(cfg, data.num_classes)  # after seeding: the same seed, the same weights
    model.set_grad_checkpointing(cfg.grad_checkpointing)
    started_from = init_model(model, cfg, init_source) if cfg.init else None
    info = model_info(cfg, data.num_classes, data.input_size)
    run_dir = make_run_dir(cfg, run_dir, dist_info.is_main)
    logger = RunLogger(run_dir, enabled=dist_info.is_main, progress=progress)
    if resume is None:
        logger.write_config(to_toml(cfg))
    logger.print(f"{cfg.model} on {cfg.dataset}: {info['params'] / 1e6:.2f}M params, "
                 f"{data.info['train_size']} train / {data.info['val_size']} val / "
                 f"{data.info['test_size']} test images, device {device}, amp {amp}, "
                 f"{dist_info.world_size} process(es), run {run_dir}")
    if started_from:
        logger.print(started_from)
    hook = mask_logger(cfg, data, logger) if cfg.viz_every else None
    try:
        placed = place_model(model, device, cfg.channels_last,
                             sync_bn(cfg, dist_info.enabled, device))
        optim = optimization(cfg, placed, len(data.train), dist_info.world_size)
        for line in notes(cfg, optim, data.input_size):
            logger.print(line)
        trainer = Trainer(placed, data, optim, settings(cfg, device, amp),
                          Records(run_dir, logger, to_dict(cfg), info), dist_info, hook)
        if resume is not None:
            trainer.restore(resume)
        summary = trainer.fit()
    finally:
        logger.close()
        cleanup()
    return summary, run_dir


def make_run_dir(cfg: Config, run_dir: Path | None, is_main: bool) -> Path:
    """The run's directory: `run_dir` (a resume), else a new one under cfg.out, named by rank
    0 and agreed by every rank; rank 0 makes it."""
    if run_dir is None and is_main:
        run_dir = new_run_dir(cfg.out, cfg.model, cfg.dataset)
    run_dir = Path(broadcast_object(str(run_dir) if run_dir is not None else None))
    if is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UserError(f"cannot make the run directory {run_dir}: a file is in the way; "
                            "choose another --out") from None
        except PermissionError:
            raise UserError(f"cannot write the run directory {run_dir} (permission denied); "
                            "choose another --out") from None
    return run_dir


def sync_bn(cfg: Config, distributed: bool, device: torch.device) -> bool:
    """Whether the BatchNorm layers become SyncBatchNorm: asked, under torchrun, on CUDA."""
    if not (cfg.sync_bn and distributed):
        return False
    if device.type != "cuda":
        raise InvalidOption("sync_bn", True, "SyncBatchNorm needs CUDA devices; turn it off on "
                            "the CPU")
    return True


def _init_source(cfg: Config) -> dict:
    if cfg.init is None:
        raise InvalidOption("init", None, "name the weights to start from")
    try:
        return load_source(cfg.init)
    except UserError as exc:
        raise UserError(f"--init {cfg.init}: {exc}") from None


def check_init(cfg: Config) -> dict[str, Any]:
    """The weights exist and fit the architecture: checked before any data is read. Returns
    them (the checkpoint-like dict `load_source` gives) for `init_model`."""
    source = _init_source(cfg)
    src = source["config"]
    theirs = {k: src.get(k, DEFAULTS[k]) for k in ARCHITECTURE}
    ours = {k: getattr(cfg, k) for k in ARCHITECTURE}
    if theirs != ours:
        differ = [k for k in ARCHITECTURE if theirs[k] != ours[k]]
        diff = ", ".join(f"{k}={theirs[k]!r}" for k in differ)
        raise UserError(f"--init {cfg.init} holds weights of another architecture ({diff}, "
                        f"not {', '.join(f'{k}={ours[k]!r}' for k in differ)}"
                        "); train that architecture or choose other weights")
    return source


def init_model(model: ResidualAttentionNet, cfg: Config, source: dict | None) -> str:
    """Fine-tuning: the weights of `source` (`check_init`'s, from `cfg.init`) into `model` (all
    of them, or the body only when the class counts differ: the classifier then stays freshly
    initialised), and the body frozen with `freeze_body`; None: a resume, whose checkpoint
    brings the weights. Returns one line saying what was loaded, replaced and frozen."""
    said = [f"resumed a run started from {cfg.init}"]
    if source is not None:
        src = source
        source_model, _ = model_from_checkpoint(src)
        state = source_model.state_dict()
        head = {f"{name}.{k}" for name, m in model.named_modules()
                if m is model.get_classifier() for k in m.state_dict()}
        theirs = len(src["classes"])
        if theirs != model.num_classes:
            state = {k: v for k, v in state.items() if k not in head}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or set(missing) - head:
            raise UserError(f"--init {cfg.init}: its weights do not fit {cfg.model}")
        said = [f"fine-tuning: loaded {cfg.init} ({len(state)} tensors, {theirs} classes)"]
        if theirs != model.num_classes:
            said.append(f"replaced its {theirs}-class head with a new {model.num_classes}-class "
                        "one (random init)")
    if cfg.freeze_body:
        trained = {id(p) for p in model.get_classifier().parameters()}
        for param in model.parameters():
            param.requires_grad_(id(param) in trained)
        said.append("the body is frozen: only the classifier trains")
    return "; ".join(said)


def mask_logger(cfg: Config, data, logger: RunLogger):
    """A hook drawing the masks of 8 fixed validation images into TensorBoard every N epochs."""
    loader = data.val or data.test
    if loader is None or not logger.tensorboard:
        return None
    images, labels = next(iter(loader))
    images, labels = images[:8], labels[:8]
    raw = (images * loader.transform.std + loader.transform.mean).clamp(0, 1)
    pictures = [(img.permute(1, 2, 0).float().cpu().numpy()) for img in raw]

    def hook(model, epoch: int, step: int) -> None:
        if epoch % cfg.viz_every:
            return
        from ..viz import mask_grid_figure, mask_maps

        was_training = model.training
        model.eval()
        with torch.no_grad():
            x = images.contiguous(memory_format=torch.channels_last) if cfg.channels_last \
                else images
            logits, masks = model.forward_with_masks(x)
        model.train(was_training)
        if not masks:
            return
        size = tuple(images.shape[-2:])
        maps = [mask_maps({k: v[i] for k, v in masks.items()}, size) for i in range(len(x))]
        pred = logits.argmax(1).tolist()
        titles = [f"{data.classes[p]} ({data.classes[t]})" for p, t in zip(pred, labels.tolist())]
        logger.writer.add_figure("attention_masks", mask_grid_figure(pictures, maps, titles), step)

    return hook
