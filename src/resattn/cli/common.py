"""Flags shared by several subcommands."""

from __future__ import annotations

import argparse
import unicodedata

from ..api.inference import CALIBRATION_IMAGES
from ..weights import default_tag

# the published weights a command uses when given none (`predict IMAGE`, `serve`)
DEFAULT_MODEL = default_tag("attention56") or "attention56.cifar10"


def add_int8_args(p: argparse.ArgumentParser) -> None:
    """--int8 and its calibration flags, shared by predict, evaluate and export."""
    g = p.add_argument_group("int8 (CPU)")
    g.add_argument("--int8", action="store_true",
                   help="post-training static int8 quantization (x86 CPUs; fastest where bf16 "
                        "is not native), calibrated on training images of the run's dataset")
    g.add_argument("--calibration-images", type=int, default=CALIBRATION_IMAGES,
                   help=f"training images observed for the int8 activation ranges (default "
                        f"{CALIBRATION_IMAGES})")


def add_device_arg(p: argparse.ArgumentParser, default: str | None = "auto") -> None:
    p.add_argument("--device", default=default,
                   help="auto (a GPU when there is one, else the CPU), cpu, cuda, cuda:N or mps "
                        + ("(default: %(default)s)" if default else "(default: each run's own)"))


def add_amp_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--amp", default="auto",
                   help="autocast: auto (bf16 on CUDA and on CPUs with native bf16, else fp32), "
                        "bf16, fp16 or off (default: %(default)s)")


def add_weights_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", choices=("auto", "raw", "ema"), default="auto",
                   help="raw or EMA weights; auto: what the run chose on validation")


def add_progress_arg(p: argparse.ArgumentParser, what: str = "no progress bars",
                     parent_has_it: bool = False) -> None:
    """--no-progress (args.progress False): for logs and CI, where a bar's redraws are noise.
    `parent_has_it`: `p` is a sub-subcommand whose parent takes the flag too; it then sets no
    default, which would overwrite the parent's (`data --no-progress shard`)."""
    p.add_argument("--no-progress", dest="progress", action="store_false", help=what,
                   default=argparse.SUPPRESS if parent_has_it else True)


def shows_progress(args: argparse.Namespace) -> bool:
    """Bars unless --no-progress, or --json, whose one document is all a command prints."""
    return args.progress and not getattr(args, "json", False)


def add_source_arg(p: argparse.ArgumentParser) -> None:
    """The model a command works on: a run, a checkpoint, a weights folder or a published tag."""
    p.add_argument("checkpoint", metavar="MODEL",
                   help="a run directory, a .pt checkpoint, a weights folder "
                        "(model.safetensors + config.json) or a published tag such as "
                        "attention56.cifar10 (resattn models --pretrained)")


def one_line(value: object) -> str:
    """`value` as text that stays on its line: control characters (a newline or tab in a file
    name, an escape sequence) written as Python escapes (\\n, \\t, \\x1b); the rest as it is."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c).startswith("C") else c
                   for c in str(value))
