"""`resattn train`: the main job. Recipe < --config file < flags; a run directory per run."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..config import Config, from_dict, recipe_names, resolve, to_toml
from ..engine.checkpoint import load_checkpoint, resolve_checkpoint
from ..engine.distributed import barrier, broadcast_object, cleanup, init_distributed
from ..engine.logger import RunLogger, new_run_dir
from ..engine.trainer import Interrupted, fit
from ..errors import UserError
from ..models import list_models
from .common import build_model, load_data, model_info, resolve_amp, resolve_device, seed_everything
from .data import add_data_args

# flags that may differ from the checkpoint's configuration when resuming
RESUMABLE = {"epochs", "iterations", "time_budget", "device", "workers", "data_dir",
             "sync_bn", "lr_scaling",
             "eval_batch_size", "log_every", "compile", "download", "viz_every", "monitor_test"}


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="train a model",
                       description="Train a Residual Attention Network. Values come from the "
                                   "defaults, then --recipe, then --config, then these flags.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--recipe", default=None,
                   help=f"shipped recipe: {', '.join(recipe_names())}")
    p.add_argument("--config", default=None, help="your own TOML file (same keys as config.toml)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR|CKPT",
                   help="continue a run where it stopped")
    g = p.add_argument_group("model")
    g.add_argument("--model", default=None, help=f"one of: {', '.join(list_models())}")
    g.add_argument("--attention", choices=("mixed", "channel", "spatial"), default=None)
    g.add_argument("--residual", choices=("arl", "nal", "none"), default=None)
    g.add_argument("--mask", choices=("encoder_decoder", "local"), default=None)
    g.add_argument("--drop-rate", type=float, default=None)
    add_data_args(p)
    g = p.add_argument_group("data (more)")
    g.add_argument("--input-size", type=int, default=None, help="image folders only")
    g.add_argument("--workers", type=int, default=None, help="decoding processes (folders)")
    g = p.add_argument_group("augmentation")
    g.add_argument("--crop-padding", type=int, default=None, help="pixels; 0 = no crop")
    g.add_argument("--crop-mode", choices=("constant", "reflect"), default=None)
    g.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--rotation", type=float, default=None, help="max degrees")
    g.add_argument("--cutout", type=int, default=None, help="square side in pixels")
    g.add_argument("--mixup", type=float, default=None, help="Beta alpha; 0 = off")
    g.add_argument("--cutmix", type=float, default=None, help="Beta alpha; 0 = off")
    g.add_argument("--normalization", choices=("pixel", "channel"), default=None)
    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", default=None, help="sgd (Nesterov) | adam | adamw")
    g.add_argument("--lr", type=float, default=None)
    g.add_argument("--momentum", type=float, default=None)
    g.add_argument("--weight-decay", type=float, default=None)
    g.add_argument("--decay-norm-and-bias", action=argparse.BooleanOptionalAction, default=None,
                   help="apply weight decay to BN and bias parameters too")
    g.add_argument("--batch-size", type=int, default=None)
    g.add_argument("--label-smoothing", type=float, default=None)
    g.add_argument("--grad-clip", type=float, default=None, help="max gradient norm; 0 = off")
    g.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--ema-decay", type=float, default=None)
    g.add_argument("--sync-bn", action=argparse.BooleanOptionalAction, default=None,
                   help="torchrun: BatchNorm statistics over all processes")
    g.add_argument("--lr-scaling", choices=("none", "linear"), default=None,
                   help="torchrun: 'linear' multiplies --lr by the number of processes")
    g = p.add_argument_group("schedule")
    g.add_argument("--schedule", default=None, help="step | cosine | onecycle")
    g.add_argument("--epochs", type=int, default=None)
    g.add_argument("--iterations", type=int, default=None)
    g.add_argument("--warmup", type=float, default=None, help="epochs of linear warm-up")
    g.add_argument("--milestones", type=float, nargs="+", default=None)
    g.add_argument("--milestone-unit", choices=("epoch", "iter"), default=None)
    g.add_argument("--gamma", type=float, default=None)
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--device", default=None, help="auto | cuda | cpu | mps")
    g.add_argument("--amp", default=None,
                   help="auto | bf16 | fp16 | off (auto: bf16 on CUDA and bf16-capable CPUs)")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--out", default=None, help="parent of the run directory (default runs/)")
    g.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="stop cleanly when spent, then evaluate; the schedule is stretched to it")
    g.add_argument("--eval-batch-size", type=int, default=None)
    g.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--log-every", type=int, default=None)
    g.add_argument("--viz-every", type=int, default=None, metavar="N",
                   help="attention masks of 8 fixed validation images to TensorBoard every N "
                        "epochs")
    g.add_argument("--monitor-test", action=argparse.BooleanOptionalAction, default=None,
                   help="evaluate the test set after every epoch (off the training clock) and "
                        "log test_acc, for time-to-accuracy curves; never used to pick weights")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(command=name)


def overrides_from_args(args: argparse.Namespace) -> dict:
    skip = {"command", "recipe", "config", "resume", "no_progress"}
    return {k: v for k, v in vars(args).items() if k not in skip and v is not None}


def config_for_resume(ckpt: dict, overrides: dict) -> Config:
    saved = ckpt["config"]
    for key, value in overrides.items():
        if key in RESUMABLE:
            continue
        if saved.get(key) != value:
            raise UserError(f"--resume: the checkpoint's run has {key}={saved.get(key)!r}, not "
                            f"{value!r}; drop --{key.replace('_', '-')} or start a new run")
    values = {**saved, **{k: v for k, v in overrides.items() if k in RESUMABLE}}
    for one, other in (("epochs", "iterations"), ("iterations", "epochs")):
        if one in overrides and other not in overrides:
            values[other] = 0
    return from_dict(values)


def run(args: argparse.Namespace) -> int:
    overrides = overrides_from_args(args)
    if args.model is not None and args.model not in list_models():
        raise UserError(f"unknown model {args.model!r}; valid models: {', '.join(list_models())}")
    resume = None
    if args.resume:
        if args.recipe or args.config:
            raise UserError("--resume takes the run's own configuration; drop --recipe/--config")
        path = resolve_checkpoint(args.resume)
        resume = load_checkpoint(path)
        cfg = config_for_resume(resume, overrides)
        run_dir = path.parent
    else:
        cfg = resolve(args.recipe, args.config, overrides)
        run_dir = None
    try:
        train_config(cfg, run_dir, resume, progress=not args.no_progress)
    except Interrupted as exc:
        print(str(exc))
        return 130
    return 0


def train_config(cfg: Config, run_dir: Path | None = None, resume: dict | None = None,
                 progress: bool = True) -> tuple[dict, Path]:
    """Train one run as `cfg` says, in `run_dir` (a new one under cfg.out by default).
    Returns (summary, run directory). Raises Interrupted after saving on Ctrl-C."""
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
    model = build_model(cfg, data.num_classes)  # after seeding: the same seed, the same weights
    info = model_info(cfg, data.num_classes, data.input_size)
    if run_dir is None and dist_info.is_main:
        run_dir = new_run_dir(cfg.out, cfg.model, cfg.dataset)
    run_dir = Path(broadcast_object(str(run_dir) if run_dir is not None else None))
    if dist_info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    logger = RunLogger(run_dir, enabled=dist_info.is_main, progress=progress)
    if resume is None:
        logger.write_config(to_toml(cfg))
    logger.print(f"{cfg.model} on {cfg.dataset}: {info['params'] / 1e6:.2f}M params, "
                 f"{data.info['train_size']} train / {data.info['val_size']} val / "
                 f"{data.info['test_size']} test images, device {device}, amp {amp}, "
                 f"{dist_info.world_size} process(es), run {run_dir}")
    hook = mask_logger(cfg, data, logger, device) if cfg.viz_every else None
    try:
        summary = fit(cfg, model, data, device, amp, run_dir, logger, info, resume,
                      dist_info=dist_info, on_epoch_end=hook)
    finally:
        logger.close()
        cleanup()
    return summary, run_dir


def mask_logger(cfg: Config, data, logger: RunLogger, device):
    """A hook drawing the masks of 8 fixed validation images into TensorBoard every N epochs."""
    import torch

    loader = data.val or data.test
    if loader is None or logger.writer is None:
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
