"""`resattn` command line: one module per subcommand, each with `add_parser` and `run`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from ..errors import InvalidOption, UserError

# every command: its module in this package and its line in `resattn --help`. A command's
# module (and torch, which most of them import) is loaded only when that command runs.
COMMANDS = {
    "train": "train a model",
    "evaluate": "evaluate a checkpoint",
    "predict": "classify images with a checkpoint",
    "visualize": "attention-mask pictures",
    "explain": "how faithful the masks, Grad-CAM and occlusion are (deletion/insertion)",
    "plot": "training curves of a run as a PNG",
    "export": "export to ONNX, TorchScript or safetensors",
    "experiment": "run an ablation suite of the paper",
    "bench": "benchmark a model's speed and memory",
    "models": "list the registered models",
    "data": "fetch, verify and summarise a dataset",
    "serve": "explore predictions and attention masks in the browser",
}


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


class Parser(argparse.ArgumentParser):
    """Usage mistakes print one line that points at --help, not the whole usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class Version(argparse.Action):
    """`--version`: what a bug report needs, read only when asked (it touches the devices)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the versions, the device and the default precision, and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_report())
        parser.exit()


def version_report() -> str:
    """'resattn 0.1.0 (torch 2.13.0+cpu, Python 3.12.3)', then one line per device with the
    precision `--amp auto` picks on it."""
    import platform

    import torch

    from .. import __version__
    from ..provenance import device_name
    from ..runtime import resolve_amp

    lines = [f"resattn {__version__} (torch {torch.__version__}, "
             f"Python {platform.python_version()})"]
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices += [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
    for device in devices:
        amp = resolve_amp("auto", device)
        lines.append(f"{device}: {device_name(device)}; default precision "
                     f"{'fp32' if amp == 'off' else amp}")
    return "\n".join(lines)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only`, that command's own flags and every other command
    as a name and its line of help, so that `resattn --help` (only="") and one command's run
    import nothing they do not use."""
    parser = Parser(
        prog="resattn", description="Residual Attention Networks: build, train, evaluate, explain.")
    parser.add_argument("--version", action=Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, text in COMMANDS.items():
        if only is None or only == name:
            command_module(name).add_parser(sub, name, text)
        else:
            sub.add_parser(name, help=text)
    return parser


def command_of(argv: Sequence[str]) -> str:
    """The command `argv` names (its first word, when that is one), else "" (--help, --version,
    a mistake: the top-level parser answers those)."""
    return argv[0] if argv and argv[0] in COMMANDS else ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status is returned (argparse's own exits raise SystemExit).

    The package's log lines go to the stderr of the moment, through a handler that lives as long
    as the command: a program that calls `main` keeps its own logging setup.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(command_of(argv)).parse_args(argv)
    log = logging.getLogger("resattn")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        return _run(args)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


def _run(args: argparse.Namespace) -> int:
    try:
        return command_module(args.command).run(args) or 0
    except UserError as exc:
        print(f"resattn {args.command}: error: {user_message(exc, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"resattn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # not the user's doing: keep the traceback for the report
        traceback.print_exc()
        print(f"resattn {args.command}: internal error; this is a bug, please report it with "
              "the command line, the traceback above and the output of resattn --version",
              file=sys.stderr)
        return 1


def user_message(exc: UserError, args: argparse.Namespace | None = None) -> str:
    """One line; an invalid option is named by its flag when it has one (a training option,
    or a flag of the command that ran)."""
    from ..config import FIELDS

    flags = vars(args) if args is not None else {}
    if isinstance(exc, InvalidOption) and (exc.key in FIELDS or exc.key in flags):
        return exc.as_flag()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
